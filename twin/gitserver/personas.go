package gitserver

import (
	"fmt"
	"slices"
)

// Persona is one of the responsibilities the Arc CI/CD guidance names
// (../shared/seeds/003_f1b5a216b380a00b.txt, "Responsibilities").
type Persona string

const (
	// ClusterOperator sets up the cluster baseline: cluster-wide components and policies (namespaces,
	// service accounts, role bindings, ingress). Maintains the cluster-wide configuration.
	ClusterOperator Persona = "cluster-operator"
	// ApplicationOperator maintains the application repositories and configurations (Kustomizations,
	// environment variables, charts).
	ApplicationOperator Persona = "application-operator"
	// ApplicationDeveloper pushes source code, triggers builds and creates container images; in the
	// configuration repositories they read, and propose changes from a fork.
	ApplicationDeveloper Persona = "application-developer"
)

// Personas lists every persona, in a fixed order.
func Personas() []Persona {
	return []Persona{ClusterOperator, ApplicationOperator, ApplicationDeveloper}
}

// Layer is a layer of configuration a repository holds (the guidance's "Configuration layers").
type Layer string

const (
	// ClusterLayer is cluster-wide configuration and components: namespaces, RBAC, ingress controller.
	ClusterLayer Layer = "cluster"
	// AppLayer is application configuration: Deployment, Service, HPA, ConfigMap per application.
	AppLayer Layer = "app"
)

// Access is what a persona may do in a repository.
type Access string

const (
	// NoAccess: the repository is invisible.
	NoAccess Access = "none"
	// ReadAccess: clone and read; open pull requests from a fork; reviews do not count as approvals.
	ReadAccess Access = "read"
	// WriteAccess: push branches other than protected ones, open pull requests, approve (an approval counts
	// towards a protected branch's required approvals) and merge.
	WriteAccess Access = "write"
)

// rank orders accesses so the strongest over several layers wins.
func (a Access) rank() int { return map[Access]int{NoAccess: 0, ReadAccess: 1, WriteAccess: 2}[a] }

// layerAccess is the guidance's split of responsibilities as access per layer. Who writes a layer is who
// "maintains" it ("Cluster-wide configuration repository": defined by the Cluster Operator;
// "Application configuration repository": the Application Operators), and only they approve changes to it
// ("Branch policies ... enforce peer review or approvals"; "consider which users ... should have repository
// read access, PR creation access, and PR Approval access"). Each operator reads the other's layer, since a
// cluster's state spans both. Developers read the application configuration their images end up in and
// do not see the cluster-wide configuration.
var layerAccess = map[Persona]map[Layer]Access{
	ClusterOperator:      {ClusterLayer: WriteAccess, AppLayer: ReadAccess},
	ApplicationOperator:  {ClusterLayer: ReadAccess, AppLayer: WriteAccess},
	ApplicationDeveloper: {ClusterLayer: NoAccess, AppLayer: ReadAccess},
}

// AccessTo is what persona p may do in a repository holding layers: the strongest access over the layers.
func AccessTo(p Persona, layers []Layer) Access {
	best := NoAccess
	for _, l := range layers {
		if a := layerAccess[p][l]; a.rank() > best.rank() {
			best = a
		}
	}
	return best
}

// TeamName is the Gitea team that gives persona p access a, e.g. "cluster-operators-write". Gitea gives a
// team one access level over all its repositories, so a persona has one team per access level; its users
// belong to all of them, and each repository is added to the team of the access its layers call for.
func TeamName(p Persona, a Access) string { return string(p) + "s-" + string(a) }

// teamUnits are the repository units a team opens, at its access level.
func teamUnits(a Access) map[string]string {
	return map[string]string{"repo.code": string(a), "repo.pulls": string(a), "repo.issues": string(a)}
}

func (p Persona) validate() error {
	if !slices.Contains(Personas(), p) {
		return fmt.Errorf("gitserver: unknown persona %q: %w; use %s, %s or %s", p, ErrInvalidOptions, ClusterOperator, ApplicationOperator, ApplicationDeveloper)
	}
	return nil
}

func validateLayers(layers []Layer) error {
	if len(layers) == 0 {
		return fmt.Errorf("gitserver: no configuration layers given: %w; give %q, %q or both", ErrInvalidOptions, ClusterLayer, AppLayer)
	}
	for _, l := range layers {
		if l != ClusterLayer && l != AppLayer {
			return fmt.Errorf("gitserver: unknown configuration layer %q: %w; use %q or %q", l, ErrInvalidOptions, ClusterLayer, AppLayer)
		}
	}
	return nil
}

// Maintainers are the personas with write access to a repository holding layers: they approve and merge.
func Maintainers(layers []Layer) []Persona {
	var out []Persona
	for _, p := range Personas() {
		if AccessTo(p, layers) == WriteAccess {
			out = append(out, p)
		}
	}
	return out
}
