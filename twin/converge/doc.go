// Package converge is the converge stage of `hybridtwin validate --converge`: it runs a GitOps layout on a
// twin and measures it. NewTwin starts the twin a spec describes with the layout in place of the
// repositories and artifacts its GitOps configurations sync, and takes it down afterwards (Ctrl-C
// included); Running pushes the layout to a twin started with `hybridtwin up`, as a new commit on each
// branch and a new artifact under each tag its configurations sync. Both then wait, with
// reconciler/layout.WaitConverge, until every Kustomization is Ready at the pushed revision, and return the
// time to Ready of each and every failure as data (layout.ConvergeResult and HT013 findings).
//
// A configuration it cannot put the layout under (a Git tag, semver or commit; an oci url, semver or
// digest) is refused by name before anything starts.
//
// It imports the twin (twin, twin/gitserver, twin/registry), fakes/arc (the Arc default sync interval),
// internal/fluxartifact and reconciler/layout; cmd/hybridtwin imports it. It must not import cmd/,
// scenarios/ or bench/, and writes nothing but its progress lines.
package converge
