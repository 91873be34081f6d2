// Package alerts runs local webhook receivers shaped like the places a platform team's GitOps alerts go:
// a Slack incoming webhook, a Microsoft Teams incoming webhook (Adaptive Card via Workflows, or the
// retired Office 365 connector's MessageCard) and a generic JSON webhook (Flux's "generic" and
// "generic-hmac" providers). Each receiver checks that what arrives has the shape the real service
// accepts -- answering 400 like the service would when it does not -- and records every delivery so
// scenarios can assert what a person would have been told.
//
// The package imports only the standard library.
package alerts
