// Package notify forwards the reconciler's events to chat and webhook endpoints with the semantics of
// Flux's notification-controller: Providers (slack, msteams, generic, generic-hmac) and Alerts that select
// events by severity, source objects and message filters, and a rate limit that sends an identical event
// once per interval -- so a Kustomization that keeps failing produces one alert, not one per retry.
//
// Events are Flux's own type (github.com/fluxcd/pkg/apis/event/v1beta1.Event). Time is injected.
// The package must not import twin/ or scenarios/.
package notify
