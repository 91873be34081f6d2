// Package arcsdk points the official Azure SDK for Go at the Arc fake (fakes/arc): a credential the fake
// accepts, client options for its endpoint, a long-running-operation poll loop finer than the SDK's one
// second minimum, connecting a cluster the way `az connectedk8s connect` does, and fluxConfigurations
// PUT/GET at api-version 2025-04-01 (the OCIRepository source, which the generated v2 client's 2023-05-01
// models lack) over the SDK's ARM pipeline and poller. The twin and every test that drives the fake
// through the SDK use it, so they all reach the fake the same way.
//
// Unlike fakes/arc itself, which imports only the standard library, this package imports the Azure SDK:
// it is the client side.
package arcsdk

import (
	"context"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/hybridkubernetes/armhybridkubernetes"

	"github.com/hybridtwin/hybridtwin/fakes/arc"
)

// Credential is a bearer token the fake accepts: it checks that one is present, as ARM does, not what
// it says.
type Credential struct{}

// GetToken implements azcore.TokenCredential.
func (Credential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "hybridtwin", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

var _ azcore.TokenCredential = Credential{}

// ClientOptions send an ARM client's requests to the fake's endpoint over TLS, trusting its certificate,
// with retries off (the fake does not throttle; a retry would only hide a wrong answer).
func ClientOptions(ep *arc.Endpoint) *arm.ClientOptions {
	return &arm.ClientOptions{ClientOptions: policy.ClientOptions{
		Cloud: cloud.Configuration{
			ActiveDirectoryAuthorityHost: "https://login.invalid/",
			Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
				cloud.ResourceManager: {Endpoint: ep.URL, Audience: "https://management.core.windows.net/"},
			},
		},
		Transport: ep.Client(),
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}}
}

// Poll drives a long-running operation to its result, polling every `every`. The SDK's PollUntilDone
// refuses intervals under one second outside tests, while the fake completes operations in milliseconds.
func Poll[T any](ctx context.Context, p *runtime.Poller[T], every time.Duration) (T, error) {
	var zero T
	for !p.Done() {
		if _, err := p.Poll(ctx); err != nil {
			return zero, err
		}
		if p.Done() {
			break
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return zero, ctx.Err()
		case <-t.C:
		}
	}
	return p.Result(ctx)
}

// ConnectCluster registers a Kubernetes cluster as Microsoft.Kubernetes/connectedClusters, as
// `az connectedk8s connect` does for an AKS hybrid cluster on Azure Stack HCI, and waits until its
// provisioning succeeded.
func ConnectCluster(ctx context.Context, ep *arc.Endpoint, subscription, resourceGroup, name, location string, every time.Duration) (armhybridkubernetes.ConnectedCluster, error) {
	c, err := armhybridkubernetes.NewConnectedClusterClient(subscription, Credential{}, ClientOptions(ep))
	if err != nil {
		return armhybridkubernetes.ConnectedCluster{}, fmt.Errorf("connect cluster %s: %w", name, err)
	}
	p, err := c.BeginCreate(ctx, resourceGroup, name, armhybridkubernetes.ConnectedCluster{
		Location: to.Ptr(location),
		Identity: &armhybridkubernetes.ConnectedClusterIdentity{Type: to.Ptr(armhybridkubernetes.ResourceIdentityTypeSystemAssigned)},
		Properties: &armhybridkubernetes.ConnectedClusterProperties{AgentPublicKeyCertificate: to.Ptr(""),
			Distribution: to.Ptr("aks_hybrid"), Infrastructure: to.Ptr("azure_stack_hci")},
	}, nil)
	if err != nil {
		return armhybridkubernetes.ConnectedCluster{}, fmt.Errorf("connect cluster %s in resource group %s: %w", name, resourceGroup, err)
	}
	res, err := Poll(ctx, p, every)
	if err != nil {
		return armhybridkubernetes.ConnectedCluster{}, fmt.Errorf("wait for cluster %s to connect: %w", name, err)
	}
	return res.ConnectedCluster, nil
}
