// Package drift watches the objects the reconciler applied -- one dynamic informer per kind, selecting
// on the owner label every applied object carries -- and reports each change or deletion the moment
// the API server's watch delivers it. The informers' caches double as the apply engine's view of the
// live objects, so an unchanged object needs no request to be confirmed unchanged.
//
// Deciding whether a change is drift, and correcting it, is the controller's job; this package only
// watches. It imports client-go, never the rest of the project.
package drift
