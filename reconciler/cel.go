package reconciler

import (
	"context"
	"fmt"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling/engine"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/runtime/cel"
	celtypes "github.com/google/cel-go/common/types"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
)

// terminalErrorMessage prefixes a configuration error that no retry fixes (kustomize-controller
// TerminalErrorMessage); the object is Stalled with reason InvalidCELExpression until its spec changes.
const terminalErrorMessage = "Reconciliation failed terminally due to configuration error"

// evalReadyExpr evaluates a dependsOn entry's readyExpr with self (the dependent) and dep (the
// dependency), as kustomize-controller and helm-controller do with Flux's CEL library
// (fluxcd/pkg/runtime/cel): compiled, boolean, both objects as maps.
func evalReadyExpr(ctx context.Context, expr, depName string, self, dep runtime.Object) (bool, error) {
	e, err := cel.NewExpression(expr, cel.WithCompile(), cel.WithOutputType(celtypes.BoolType), cel.WithStructVariables("self", "dep"))
	if err != nil {
		return false, fmt.Errorf("failed to evaluate dependency %s: %w", depName, err)
	}
	selfMap, err := runtime.DefaultUnstructuredConverter.ToUnstructured(self)
	if err != nil {
		return false, err
	}
	depMap, err := runtime.DefaultUnstructuredConverter.ToUnstructured(dep)
	if err != nil {
		return false, err
	}
	return e.EvaluateBoolean(ctx, map[string]any{"self": selfMap, "dep": depMap})
}

// healthReaders are the custom status readers of spec.healthCheckExprs (Flux's CEL status reader), nil
// without any; an invalid expression is the error.
func healthReaders(obj *kustomizev1.Kustomization) ([]func(meta.RESTMapper) engine.StatusReader, error) {
	if len(obj.Spec.HealthCheckExprs) == 0 {
		return nil, nil
	}
	r, err := cel.NewStatusReader(obj.Spec.HealthCheckExprs)
	if err != nil {
		return nil, err
	}
	return []func(meta.RESTMapper) engine.StatusReader{r}, nil
}
