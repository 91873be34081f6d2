// Package build turns an artifact directory and a Flux Kustomization into the Kubernetes objects to
// apply, the way kustomize-controller does: Flux's own generator writes a kustomization.yaml for a path
// that has none (fluxcd/pkg/kustomize), the Kustomization's targetNamespace, namePrefix/Suffix, patches,
// images and components are folded in, the real kustomize API builds it, and postBuild variable
// substitution runs with values from spec.postBuild.substitute and substituteFrom ConfigMaps/Secrets.
//
// Builds read the shared artifact directory through a copy-on-write filesystem, so no Kustomization
// copies the tree. Every object remembers the file it came from, so errors name the file.
// It imports kustomize and fluxcd/pkg, never the rest of the project.
package build
