package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/admission/plugin/policy/generic"
	"k8s.io/apiserver/pkg/admission/plugin/policy/matching"
	"k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/cel/environment"
	"k8s.io/apiserver/pkg/warning"
	"k8s.io/client-go/kubernetes/scheme"
	listersv1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	apiservercel "k8s.io/apiserver/pkg/admission/plugin/cel"
)

// Options tune an Evaluator.
type Options struct {
	// KubernetesMinor is the minor version of the target API servers (33 for v1.33). CEL's environment
	// is built at that release's compatibility version, minor-1 (k8s.io/apiserver
	// environment.DefaultCompatibilityVersion: the binary version's MinCompatibilityVersion).
	KubernetesMinor int
	// User is the identity the objects are applied as (request.userInfo); DefaultUser when nil.
	User user.Info
}

// DefaultUser is kustomize-controller's service account in the flux-system namespace, as the Arc Flux
// extension runs it: Flux applies as this identity unless a Kustomization names spec.serviceAccountName.
func DefaultUser() user.Info {
	return &user.DefaultInfo{
		Name:   "system:serviceaccount:flux-system:kustomize-controller",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:flux-system", "system:authenticated"},
	}
}

// Decision is one binding's verdict on one object, in the API server's words.
type Decision struct {
	// Object indexes the objects given to Check.
	Object  int
	Policy  Policy
	Binding Binding
	// Action is Deny (the apply is refused), Warn (a warning is returned) or Audit (an audit annotation
	// is recorded).
	Action admissionregistrationv1.ValidationAction
	// Message is what the API server says: for Deny the refusal's message ("deployments.apps \"web\" is
	// forbidden: ValidatingAdmissionPolicy 'p' with binding 'b' denied request: ..."), for Warn the
	// warning, for Audit the audit annotation's message.
	Message string
	// Reason is the refusal's status reason (Invalid unless the validation names another).
	Reason metav1.StatusReason
}

// NoteKind says why a policy or binding is not (fully) evaluated.
type NoteKind string

// Notes.
const (
	// NoteUnbound: a policy no binding names; the API server enforces nothing for it either.
	NoteUnbound NoteKind = "unbound"
	// NoteNoPolicy: a binding names a policy the directory lacks; the API server ignores it too.
	NoteNoPolicy NoteKind = "no-policy"
	// NoteParams: a policy with spec.paramKind; params are not evaluated offline.
	NoteParams NoteKind = "params"
	// NoteCompile: a policy's CEL does not compile; the API server applies its failurePolicy.
	NoteCompile NoteKind = "compile"
)

// Note is a policy or binding that is not (fully) evaluated, or is broken.
type Note struct {
	Kind    NoteKind
	Origin  Origin
	Name    string
	Message string
}

type pair struct {
	hook    validating.PolicyHook
	policy  Policy
	binding Binding
}

// Evaluator decides objects against a Set.
type Evaluator struct {
	pairs   []pair
	notes   []Note
	user    user.Info
	objects admission.ObjectInterfaces
}

// NewEvaluator compiles the set's policies with Kubernetes' CEL environment of the target release and
// pairs them with their bindings.
func NewEvaluator(set *Set, opts Options) (*Evaluator, error) {
	if opts.KubernetesMinor < 30 {
		return nil, fmt.Errorf("%w: Kubernetes v1.%d: ValidatingAdmissionPolicy v1 needs v1.30 or later", ErrInput, opts.KubernetesMinor)
	}
	env := environment.MustBaseEnvSet(version.MajorMinor(1, uint(opts.KubernetesMinor-1)))
	e := &Evaluator{user: opts.User, objects: admission.NewObjectInterfacesFromScheme(scheme.Scheme)}
	if e.user == nil {
		e.user = DefaultUser()
	}
	bound := map[string]bool{}
	byName := map[string]Policy{}
	compiled := map[string]validating.Validator{}
	for _, p := range set.Policies {
		byName[p.Name] = p
		if p.Spec.ParamKind != nil {
			e.notes = append(e.notes, Note{Kind: NoteParams, Origin: p.Origin, Name: p.Name,
				Message: fmt.Sprintf("ValidatingAdmissionPolicy %q has spec.paramKind %s/%s: params are not evaluated offline, so the policy is not checked", p.Name, p.Spec.ParamKind.APIVersion, p.Spec.ParamKind.Kind)})
			continue
		}
		v, problems := compile(p.ValidatingAdmissionPolicy, env)
		if err := v.CompileError(); err != nil {
			problems = append(problems, err.Error())
		}
		if len(problems) > 0 {
			e.notes = append(e.notes, Note{Kind: NoteCompile, Origin: p.Origin, Name: p.Name,
				Message: fmt.Sprintf("ValidatingAdmissionPolicy %q does not compile (its failurePolicy %s decides every object it matches): %s", p.Name, *p.Spec.FailurePolicy, strings.Join(problems, "; "))})
		}
		compiled[p.Name] = v
	}
	for _, b := range set.Bindings {
		p, ok := byName[b.Spec.PolicyName]
		if !ok {
			e.notes = append(e.notes, Note{Kind: NoteNoPolicy, Origin: b.Origin, Name: b.Name,
				Message: fmt.Sprintf("ValidatingAdmissionPolicyBinding %q names policy %q, which is not in %s: the API server ignores such a binding", b.Name, b.Spec.PolicyName, set.Dir)})
			continue
		}
		bound[p.Name] = true
		v, ok := compiled[p.Name]
		if !ok {
			continue // params: noted above
		}
		e.pairs = append(e.pairs, pair{policy: p, binding: b, hook: validating.PolicyHook{
			Policy: p.ValidatingAdmissionPolicy, Bindings: []*admissionregistrationv1.ValidatingAdmissionPolicyBinding{b.ValidatingAdmissionPolicyBinding},
			Evaluator: v,
		}})
	}
	for _, p := range set.Policies {
		if !bound[p.Name] {
			e.notes = append(e.notes, Note{Kind: NoteUnbound, Origin: p.Origin, Name: p.Name,
				Message: fmt.Sprintf("ValidatingAdmissionPolicy %q has no binding: it enforces nothing until a ValidatingAdmissionPolicyBinding names it", p.Name)})
		}
	}
	return e, nil
}

// Notes are the policies and bindings not (fully) evaluated, in the set's order.
func (e *Evaluator) Notes() []Note { return e.notes }

// compile builds a policy's validator from the k8s.io/apiserver pieces the ValidatingAdmissionPolicy
// plugin compiles with (validating/plugin.go compilePolicy, unexported): a composited compiler with the
// policy's variables stored, its match conditions, validations, audit annotations and message
// expressions, all as stored expressions (the API server compiles policies read from etcd with every
// library of its release). problems are the expressions that do not compile, by field.
func compile(p *admissionregistrationv1.ValidatingAdmissionPolicy, env *environment.EnvSet) (v validating.Validator, problems []string) {
	hasParams := p.Spec.ParamKind != nil
	vars := apiservercel.OptionalVariableDeclarations{HasParams: hasParams, HasAuthorizer: true}
	msgVars := apiservercel.OptionalVariableDeclarations{HasParams: hasParams}
	c, err := apiservercel.NewCompositedCompiler(env)
	if err != nil {
		return validating.NewValidator(nil, nil, nil, nil, p.Spec.FailurePolicy, err), nil
	}
	check := func(field string, acc apiservercel.ExpressionAccessor, decls apiservercel.OptionalVariableDeclarations) {
		if r := c.CompileCELExpression(acc, decls, environment.StoredExpressions); r.Error != nil {
			problems = append(problems, fmt.Sprintf("%s: %s", field, r.Error.Detail))
		}
	}
	for i, v := range p.Spec.Variables {
		if r := c.CompileAndStoreVariable(&validating.Variable{Name: v.Name, Expression: v.Expression}, vars, environment.StoredExpressions); r.Error != nil {
			problems = append(problems, fmt.Sprintf("spec.variables[%d] (%s): %s", i, v.Name, r.Error.Detail))
		}
	}

	var matcher matchconditions.Matcher
	if n := len(p.Spec.MatchConditions); n > 0 {
		acc := make([]apiservercel.ExpressionAccessor, n)
		for i := range p.Spec.MatchConditions {
			acc[i] = (*matchconditions.MatchCondition)(&p.Spec.MatchConditions[i])
			check(fmt.Sprintf("spec.matchConditions[%d]", i), acc[i], vars)
		}
		matcher = matchconditions.NewMatcher(c.CompileCondition(acc, vars, environment.StoredExpressions), p.Spec.FailurePolicy, "policy", "validate", p.Name)
	}
	validations := make([]apiservercel.ExpressionAccessor, len(p.Spec.Validations))
	messages := make([]apiservercel.ExpressionAccessor, len(p.Spec.Validations))
	for i, v := range p.Spec.Validations {
		validations[i] = &validating.ValidationCondition{Expression: v.Expression, Message: v.Message, Reason: v.Reason}
		check(fmt.Sprintf("spec.validations[%d].expression", i), validations[i], vars)
		if v.MessageExpression != "" {
			messages[i] = &validating.MessageExpressionCondition{MessageExpression: v.MessageExpression}
			check(fmt.Sprintf("spec.validations[%d].messageExpression", i), messages[i], msgVars)
		}
	}
	audits := make([]apiservercel.ExpressionAccessor, len(p.Spec.AuditAnnotations))
	for i, a := range p.Spec.AuditAnnotations {
		audits[i] = &validating.AuditAnnotationCondition{Key: a.Key, ValueExpression: a.ValueExpression}
		check(fmt.Sprintf("spec.auditAnnotations[%d].valueExpression", i), audits[i], vars)
	}
	return validating.NewValidator(
		c.CompileCondition(validations, vars, environment.StoredExpressions),
		matcher,
		c.CompileCondition(audits, vars, environment.StoredExpressions),
		c.CompileCondition(messages, msgVars, environment.StoredExpressions),
		p.Spec.FailurePolicy, nil), problems
}

// Check decides every object as a CREATE by server-side apply, and returns the decisions in object
// order, then policy and binding order. The objects are one cluster's: their Namespaces give the
// namespace labels namespaceSelectors match (a namespace no object declares is taken as the API server
// creates it, with only its kubernetes.io/metadata.name label), and their CRDs name the resources of
// custom kinds.
func (e *Evaluator) Check(ctx context.Context, objects []*unstructured.Unstructured) ([]Decision, error) {
	nsIndex := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	res := newResources(objects)
	declared := map[string]bool{}
	for _, u := range objects {
		if u.GetAPIVersion() == "v1" && u.GetKind() == "Namespace" {
			ns := &corev1.Namespace{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, ns); err != nil {
				return nil, fmt.Errorf("read Namespace %s: %w", u.GetName(), err)
			}
			ns.Labels = withNameLabel(ns.Labels, ns.Name)
			if err := nsIndex.Add(ns); err != nil {
				return nil, err
			}
			declared[ns.Name] = true
		}
	}
	for _, u := range objects {
		if n := u.GetNamespace(); n != "" && !declared[n] {
			declared[n] = true
			if err := nsIndex.Add(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n, Labels: withNameLabel(nil, n)}}); err != nil {
				return nil, err
			}
		}
	}
	m := generic.NewPolicyMatcher(matching.NewMatcher(listersv1.NewNamespaceLister(nsIndex), nil))
	d := validating.NewDispatcher(offlineAuthorizer{}, m)

	var out []Decision
	for i, u := range objects {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		obj, err := normalize(u)
		if err != nil {
			return nil, err
		}
		gvk := u.GroupVersionKind()
		gvr, namespaced := res.of(gvk)
		ns := ""
		if namespaced {
			ns = u.GetNamespace()
		}
		for _, p := range e.pairs {
			attrs := &recordingAttributes{Attributes: admission.NewAttributesRecord(obj, nil, gvk, ns, u.GetName(), gvr, "",
				admission.Create, &metav1.CreateOptions{FieldManager: "kustomize-controller"}, false, e.user)}
			warns := &warnings{}
			err := d.Dispatch(warning.WithWarningRecorder(ctx, warns), attrs, e.objects, []validating.PolicyHook{p.hook})
			base := Decision{Object: i, Policy: p.policy, Binding: p.binding}
			if err != nil {
				var se *apierrors.StatusError
				if !errors.As(err, &se) || se.ErrStatus.Details == nil {
					return nil, fmt.Errorf("evaluate ValidatingAdmissionPolicy %q with binding %q on %s %s/%s: %w", p.policy.Name, p.binding.Name, gvk.Kind, u.GetNamespace(), u.GetName(), err)
				}
				dd := base
				dd.Action, dd.Message, dd.Reason = admissionregistrationv1.Deny, se.Error(), se.ErrStatus.Reason
				out = append(out, dd)
			}
			for _, w := range warns.list {
				dd := base
				dd.Action, dd.Message = admissionregistrationv1.Warn, w
				out = append(out, dd)
			}
			for _, msg := range attrs.failures() {
				dd := base
				dd.Action, dd.Message = admissionregistrationv1.Audit, msg
				out = append(out, dd)
			}
		}
	}
	return out, nil
}

// withNameLabel adds the label the API server sets on every Namespace (kubernetes.io/metadata.name,
// Kubernetes v1.22+ NamespaceDefaultLabelName), which namespaceSelectors commonly match.
func withNameLabel(l map[string]string, name string) map[string]string {
	out := map[string]string{}
	for k, v := range l {
		out[k] = v
	}
	out[corev1.LabelMetadataName] = name
	return out
}

// normalize round-trips a built-in kind through its Go type, as the API server holds it: quantities
// become strings ("cpu: 1" reads "1"), unknown fields drop. Custom kinds stay as written.
func normalize(u *unstructured.Unstructured) (runtime.Object, error) {
	typed, err := scheme.Scheme.New(u.GroupVersionKind())
	if err != nil {
		return u.DeepCopy(), nil
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, typed); err != nil {
		return nil, fmt.Errorf("%s %s/%s does not decode as %s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), u.GroupVersionKind(), err)
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(typed)
	if err != nil {
		return nil, err
	}
	out := &unstructured.Unstructured{Object: m}
	out.SetGroupVersionKind(u.GroupVersionKind())
	return out, nil
}

// resources maps kinds to their REST resource names: CRDs of the objects for custom kinds, else the
// lower-cased plural (exact for Kubernetes v1.33's built-in kinds but Endpoints).
type resources struct {
	crd map[schema.GroupKind]crdNames
}

type crdNames struct {
	plural     string
	namespaced bool
}

func newResources(objects []*unstructured.Unstructured) *resources {
	r := &resources{crd: map[schema.GroupKind]crdNames{}}
	for _, u := range objects {
		if u.GetKind() != "CustomResourceDefinition" {
			continue
		}
		g, _, _ := unstructured.NestedString(u.Object, "spec", "group")
		k, _, _ := unstructured.NestedString(u.Object, "spec", "names", "kind")
		p, _, _ := unstructured.NestedString(u.Object, "spec", "names", "plural")
		s, _, _ := unstructured.NestedString(u.Object, "spec", "scope")
		r.crd[schema.GroupKind{Group: g, Kind: k}] = crdNames{plural: p, namespaced: s != "Cluster"}
	}
	return r
}

func (r *resources) of(gvk schema.GroupVersionKind) (schema.GroupVersionResource, bool) {
	if c, ok := r.crd[gvk.GroupKind()]; ok {
		return gvk.GroupVersion().WithResource(c.plural), c.namespaced
	}
	gvr, _ := meta.UnsafeGuessKindToResource(gvk)
	if gvk.Group == "" && gvk.Kind == "Endpoints" {
		gvr.Resource = "endpoints"
	}
	return gvr, !clusterScoped[gvk.GroupKind()]
}

// clusterScoped are the cluster-scoped kinds policies commonly match (kubectl api-resources
// --namespaced=false of Kubernetes v1.33, the kinds a GitOps layout applies).
var clusterScoped = map[schema.GroupKind]bool{
	{Kind: "Namespace"}: true, {Kind: "Node"}: true, {Kind: "PersistentVolume"}: true,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}: true, {Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}: true,
	{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}: true, {Group: "storage.k8s.io", Kind: "StorageClass"}: true,
	{Group: "scheduling.k8s.io", Kind: "PriorityClass"}: true, {Group: "networking.k8s.io", Kind: "IngressClass"}: true,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicy"}:        true,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicyBinding"}: true,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingWebhookConfiguration"}:   true,
	{Group: "admissionregistration.k8s.io", Kind: "MutatingWebhookConfiguration"}:     true,
	{Group: "apiregistration.k8s.io", Kind: "APIService"}:                             true, {Group: "node.k8s.io", Kind: "RuntimeClass"}: true,
	{Group: "certificates.k8s.io", Kind: "CertificateSigningRequest"}: true,
	{Group: "flowcontrol.apiserver.k8s.io", Kind: "FlowSchema"}:       true, {Group: "flowcontrol.apiserver.k8s.io", Kind: "PriorityLevelConfiguration"}: true,
}

// offlineAuthorizer has no opinion: there is no cluster's RBAC to ask offline.
type offlineAuthorizer struct{}

func (offlineAuthorizer) Authorize(context.Context, authorizer.Attributes) (authorizer.Decision, string, error) {
	return authorizer.DecisionNoOpinion, "offline evaluation has no authorizer", nil
}

// warnings records the warnings the dispatcher adds for Warn bindings.
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) AddWarning(_, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

// recordingAttributes records the audit annotations the dispatcher adds for Audit bindings.
type recordingAttributes struct {
	admission.Attributes
	mu  sync.Mutex
	ann map[string]string
}

// validationFailureKey is the audit annotation a failed validation of an Audit binding records
// (k8s.io/apiserver validating/dispatcher.go publishValidationFailureAnnotation).
const validationFailureKey = "validation.policy.admission.k8s.io/validation_failure"

func (r *recordingAttributes) AddAnnotation(key, value string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ann == nil {
		r.ann = map[string]string{}
	}
	r.ann[key] = value
	return r.Attributes.AddAnnotation(key, value)
}

// failures are the messages of the validation_failure annotation.
func (r *recordingAttributes) failures() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.ann[validationFailureKey]
	if !ok {
		return nil
	}
	var vals []validating.ValidationFailureValue
	if err := json.Unmarshal([]byte(v), &vals); err != nil {
		return []string{v}
	}
	var out []string
	for _, f := range vals {
		out = append(out, fmt.Sprintf("ValidatingAdmissionPolicy '%s' with binding '%s' (audit): %s", f.Policy, f.Binding, f.Message))
	}
	sort.Strings(out)
	return out
}

// ObjectName names an object as findings do: Kind.group/namespace/name.
func ObjectName(u *unstructured.Unstructured) string {
	s := u.GetKind()
	if g := u.GroupVersionKind().Group; g != "" {
		s += "." + g
	}
	if u.GetNamespace() != "" {
		return s + "/" + u.GetNamespace() + "/" + u.GetName()
	}
	return s + "/" + u.GetName()
}
