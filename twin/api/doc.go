// Package api holds the words of the twin's API, in process and on its control socket: the bring-up
// pipeline's step names and its one error type, cluster operation reports, the status snapshot, what
// twin.json records, the state directory's file names, and the run profile (the composition's timings).
// Package twin re-exports them; it and the control socket's client speak them.
package api
