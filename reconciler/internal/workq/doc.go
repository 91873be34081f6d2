// Package workq is the reconciler's work queue: a de-duplicating FIFO where a key is never handed to two
// workers at once (a key added while it is being processed is handed out again once Done), like
// client-go's workqueue, plus an exact Idle check (nothing queued and nothing being processed), which
// client-go's queue cannot give because "taken but not yet marked busy" is invisible from outside.
// It imports only the standard library.
package workq
