// Package admission evaluates Kubernetes ValidatingAdmissionPolicies offline: it reads the policies and
// their bindings from a directory (Load) and decides, for objects a GitOps layout builds, what a
// kube-apiserver with those policies installed would say when the objects are applied (Evaluator). The
// decision is made by Kubernetes' own admission libraries (k8s.io/apiserver's ValidatingAdmissionPolicy
// dispatcher, its resource/namespace/object matcher and its CEL compiler), not by a policy language of
// ours, so a refusal carries the API server's own message.
//
// What offline evaluation cannot see, and a real API server does: objects are evaluated as a CREATE
// (no oldObject; a server-side apply to an existing object is an UPDATE), without the API server's
// defaulting (a policy testing a defaulted field such as a Deployment's spec.replicas sees it unset),
// without params (a policy with paramKind is reported, not evaluated), and with an authorizer that has
// no opinion (a policy reading `authorizer` sees every check denied).
//
// It imports k8s.io libraries only, nothing of the project.
package admission
