// Package procgroup runs the twin's child processes (the embedded clusters' etcd and control plane,
// twin/cluster/embedded; real Flux's controllers, twin/flux; Gitea, twin/gitserver; versitygw,
// twin/s3server): each in its own process group with a parent-death signal, its output in a log file,
// stopped by signalling its group (SIGTERM, then SIGKILL after a grace period), and an unexpected end
// reported with the last lines of its log. Supervise keeps a process running: restarted with the
// kubelet's back-off (KubeletBackoff) whenever it ends without Stop, each restart reported. It also reads
// /proc for a process group's live members, whether a pid is alive and its resident memory, which tests
// and benchmarks use to prove a stop left nothing behind.
//
// It owns process lifetimes only and knows nothing of Kubernetes or Flux; it imports only the standard
// library. It is internal to twin/ so that twin/cluster, twin/flux and twin/gitserver can use it (twin/flux may not
// import twin/cluster/internal).
package procgroup
