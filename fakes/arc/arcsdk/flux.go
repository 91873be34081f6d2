package arcsdk

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
)

// FluxAPIVersion is the Microsoft.KubernetesConfiguration api-version of PutFluxConfiguration and
// GetFluxConfiguration: 2025-04-01, the newest GA version, whose fluxConfigurations schema has the
// ociRepository source (azure-rest-api-specs .../fluxConfigurations/stable/2025-04-01/fluxconfiguration.json).
// The generated armkubernetesconfiguration/v2 v2.2.0 client in go.mod speaks 2023-05-01, whose models have
// no OCI source, so OCI configurations go through these two calls instead.
const FluxAPIVersion = "2025-04-01"

// clientModule and clientVersion name these calls in the SDK's telemetry header.
const (
	clientModule  = "github.com/hybridtwin/hybridtwin/fakes/arc/arcsdk"
	clientVersion = "v1.0.0"
)

// FluxConfigurationID is the ARM ID of a fluxConfiguration on a connected cluster.
func FluxConfigurationID(clusterID, name string) string {
	return clusterID + "/providers/Microsoft.KubernetesConfiguration/fluxConfigurations/" + name
}

// PutFluxConfiguration creates or updates a fluxConfiguration in the REST shape of FluxAPIVersion (fakes/arc's
// models) through the SDK's ARM pipeline -- bearer token, request IDs, ARM error bodies parsed into
// *azcore.ResponseError -- and the SDK's long-running-operation poller (Azure-AsyncOperation), polling every
// `every`; it returns the configuration once its provisioning has finished.
func PutFluxConfiguration(ctx context.Context, ep *arc.Endpoint, configID string, cfg arc.FluxConfiguration, every time.Duration) (arc.FluxConfiguration, error) {
	pl, resp, err := fluxCall(ctx, ep, http.MethodPut, configID, &cfg)
	if err != nil {
		return arc.FluxConfiguration{}, fmt.Errorf("put fluxConfiguration %s: %w", configID, err)
	}
	if !runtime.HasStatusCode(resp, http.StatusOK, http.StatusCreated) {
		return arc.FluxConfiguration{}, fmt.Errorf("put fluxConfiguration %s: %w", configID, runtime.NewResponseError(resp))
	}
	p, err := runtime.NewPoller(resp, pl, &runtime.NewPollerOptions[arc.FluxConfiguration]{FinalStateVia: runtime.FinalStateViaAzureAsyncOp})
	if err != nil {
		return arc.FluxConfiguration{}, fmt.Errorf("put fluxConfiguration %s: %w", configID, err)
	}
	out, err := Poll(ctx, p, every)
	if err != nil {
		return arc.FluxConfiguration{}, fmt.Errorf("wait for fluxConfiguration %s to provision: %w", configID, err)
	}
	return out, nil
}

// GetFluxConfiguration reads a fluxConfiguration in the REST shape of FluxAPIVersion.
func GetFluxConfiguration(ctx context.Context, ep *arc.Endpoint, configID string) (arc.FluxConfiguration, error) {
	_, resp, err := fluxCall(ctx, ep, http.MethodGet, configID, nil)
	if err != nil {
		return arc.FluxConfiguration{}, fmt.Errorf("get fluxConfiguration %s: %w", configID, err)
	}
	if !runtime.HasStatusCode(resp, http.StatusOK) {
		return arc.FluxConfiguration{}, fmt.Errorf("get fluxConfiguration %s: %w", configID, runtime.NewResponseError(resp))
	}
	var out arc.FluxConfiguration
	if err := runtime.UnmarshalAsJSON(resp, &out); err != nil {
		return arc.FluxConfiguration{}, fmt.Errorf("get fluxConfiguration %s: %w", configID, err)
	}
	return out, nil
}

func fluxCall(ctx context.Context, ep *arc.Endpoint, method, configID string, body any) (runtime.Pipeline, *http.Response, error) {
	c, err := arm.NewClient(clientModule, clientVersion, NewCredential(ep), ClientOptions(ep))
	if err != nil {
		return runtime.Pipeline{}, nil, err
	}
	req, err := runtime.NewRequest(ctx, method, runtime.JoinPaths(c.Endpoint(), configID))
	if err != nil {
		return runtime.Pipeline{}, nil, err
	}
	req.Raw().URL.RawQuery = url.Values{"api-version": {FluxAPIVersion}}.Encode()
	req.Raw().Header.Set("Accept", "application/json")
	if body != nil {
		if err := runtime.MarshalAsJSON(req, body); err != nil {
			return runtime.Pipeline{}, nil, err
		}
	}
	resp, err := c.Pipeline().Do(req)
	return c.Pipeline(), resp, err
}
