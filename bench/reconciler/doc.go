// Package reconciler benchmarks the twin's GitOps reconciler (reconciler/) against real components: a
// Kubernetes API server with etcd from the tool cache, Git over smart HTTP, and Gitea for the webhook
// path. It measures what issue 7 asks, in flux-benchmark's shape (one GitRepository, N Kustomizations of
// one ConfigMap each):
//
//   - BenchmarkScale: N = 100 / 500 / 1000 Kustomizations until all are Ready (Flux on 2 CPUs:
//     28 s / 2m2s / 4m16s), interleaved with the raw limit: the same objects server-side applied by a
//     bare client loop, sequential and with the reconciler's concurrency (goal: >= 70% of the latter),
//     and the CPU each side used per object. Also interleaved: the same N builds alone, without
//     applying (reconciler.Build), whose CPU bounds the ratio any reconciler of Flux's semantics can
//     reach on a machine whose cores it shares with the API server (buildCeilingRatio).
//   - BenchmarkDriftCorrection: from a `kubectl edit` to the object restored, p50/p99 (goal p99 < 1 s).
//   - BenchmarkPushToApplied: from a push to Gitea to the change applied, via Gitea's signed push
//     webhook (goal p50 < 2 s), and the reconciler's part of it: from the webhook's delivery to the
//     change applied.
//
// The process runs with the garbage-collector setting `hybridtwin up` gives the process that hosts the
// reconcilers (reconciler.SetProcessGC; GOGC/GOMEMLIMIT in the environment win), recorded in the notes.
//
// Results are written to bench/results/reconciler.json in the bench/result schema. TestGiteaWebhook is
// the end-to-end check of the webhook path with a real Gitea. The package may import everything
// (reconciler/, twin/gitserver, bench/result).
package reconciler
