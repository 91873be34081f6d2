// Package twin is the front of a running twin: Up starts one from a Twin spec, and *Twin's methods
// operate it (cluster and host operations, status, Down); the control socket (control.go) serves the
// same to `hybridtwin` commands of other processes. The work happens in rooms of its own:
//
//   - twin/spec: the spec and cluster files (parse, defaults, validation);
//   - twin/internal/estate: the running estate and its bring-up pipeline (one list of shared steps,
//     one list of per-cluster steps that Up and the cluster operations both run, one undo path);
//   - twin/engine: the engine room (the twin's reconciler, real Flux; listed in twin/engine/engines);
//   - twin/hostops: host operations as one table, the bridge from hardware events to node state;
//   - twin/arcconfig: the one mapping from a spec's GitOps configuration to ARM's fluxConfiguration;
//   - twin/api: the words of the API (step names, the one error type, reports, status, run profile);
//   - twin/cluster, twin/gitserver, twin/registry, twin/arcagent, twin/flux: the components.
//
// It may import hardware/, fakes/, reconciler/ and its own subpackages; never scenarios/ or bench/.
package twin
