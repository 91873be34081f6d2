package gitserver

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"code.gitea.io/sdk/gitea"
)

// User is a Gitea user made by CreateUser, with an API token.
type User struct {
	Name  string
	token string
}

// Token is the user's API token, also its password for Git over HTTP (as a Flux GitRepository secret
// would hold it). Never log it.
func (u *User) Token() string { return u.token }

// CreateUser creates a user (the client must act as the admin) and an API token for it. The password is
// random and used once, to make the token (Gitea makes tokens only for a password sign-in); both are
// redacted from every error and log line of this client's server.
func (c *Client) CreateUser(ctx context.Context, name string) (*User, error) {
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("gitserver: user name %q: %w; use 1-100 of [A-Za-z0-9_.-]", name, ErrInvalidOptions)
	}
	password := randomString(32)
	c.red.add(password)
	no := false
	err := c.call(ctx, "create user "+name, func(g *gitea.Client) (*gitea.Response, error) {
		_, resp, err := g.AdminCreateUser(gitea.CreateUserOption{
			Username: name, Email: name + "@hybridtwin.example", Password: password, MustChangePassword: &no,
		})
		return resp, err
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := c.bound(ctx)
	defer cancel()
	g, err := c.api(ctx, gitea.SetBasicAuth(name, password))
	if err != nil {
		return nil, err
	}
	t, resp, err := g.CreateAccessToken(gitea.CreateAccessTokenOption{
		Name: "twin-" + strings.ToLower(randomString(8)), Scopes: []gitea.AccessTokenScope{gitea.AccessTokenScopeAll},
	})
	if err := c.wrap("create a token for user "+name, resp, err); err != nil {
		return nil, err
	}
	token := t.Token
	c.red.add(token)
	return &User{Name: name, token: token}, nil
}

// EnsurePersonaTeams creates, in org, one team per persona and access level (TeamName), if missing.
func (c *Client) EnsurePersonaTeams(ctx context.Context, org string) error {
	existing, err := c.teams(ctx, org)
	if err != nil {
		return err
	}
	for _, p := range Personas() {
		for _, a := range []Access{ReadAccess, WriteAccess} {
			name := TeamName(p, a)
			if _, ok := existing[name]; ok {
				continue
			}
			err := c.call(ctx, fmt.Sprintf("create team %s in %s", name, org), func(g *gitea.Client) (*gitea.Response, error) {
				_, resp, err := g.CreateTeam(org, gitea.CreateTeamOption{
					Name:        name,
					Description: fmt.Sprintf("%s: %s access to the repositories of their configuration layers", p, a),
					Permission:  gitea.AccessMode(a),
					UnitsMap:    teamUnits(a),
				})
				return resp, err
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// teams maps team names to ids in org.
func (c *Client) teams(ctx context.Context, org string) (map[string]int64, error) {
	out := map[string]int64{}
	for page := 1; ; page++ {
		var got []*gitea.Team
		err := c.call(ctx, "list teams of "+org, func(g *gitea.Client) (*gitea.Response, error) {
			t, resp, err := g.ListOrgTeams(org, gitea.ListTeamsOptions{ListOptions: gitea.ListOptions{Page: page, PageSize: 50}})
			got = t
			return resp, err
		})
		if err != nil {
			return nil, err
		}
		for _, t := range got {
			out[t.Name] = t.ID
		}
		if len(got) < 50 {
			return out, nil
		}
	}
}

func (c *Client) teamID(ctx context.Context, org, name string) (int64, error) {
	teams, err := c.teams(ctx, org)
	if err != nil {
		return 0, err
	}
	id, ok := teams[name]
	if !ok {
		return 0, fmt.Errorf("gitserver: team %s in %s: %w; call EnsurePersonaTeams first", name, org, ErrNotFound)
	}
	return id, nil
}

// AssignPersona makes u a member of every team of persona p in org, so u gets p's access to each
// repository granted with GrantLayers.
func (c *Client) AssignPersona(ctx context.Context, org string, u *User, p Persona) error {
	if err := p.validate(); err != nil {
		return err
	}
	for _, a := range []Access{ReadAccess, WriteAccess} {
		id, err := c.teamID(ctx, org, TeamName(p, a))
		if err != nil {
			return err
		}
		err = c.call(ctx, fmt.Sprintf("add %s to team %s", u.Name, TeamName(p, a)), func(g *gitea.Client) (*gitea.Response, error) {
			return g.AddTeamMember(id, u.Name)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// GrantLayers gives every persona the access AccessTo says for a repository holding layers, by adding the
// repository to the matching persona team (and to no other team of that persona).
func (c *Client) GrantLayers(ctx context.Context, repo Repo, layers []Layer) error {
	if err := validateLayers(layers); err != nil {
		return err
	}
	teams, err := c.teams(ctx, repo.Owner)
	if err != nil {
		return err
	}
	for _, p := range Personas() {
		a := AccessTo(p, layers)
		for _, level := range []Access{ReadAccess, WriteAccess} {
			id, ok := teams[TeamName(p, level)]
			if !ok {
				return fmt.Errorf("gitserver: team %s in %s: %w; call EnsurePersonaTeams first", TeamName(p, level), repo.Owner, ErrNotFound)
			}
			what := fmt.Sprintf("give team %s access to %s", TeamName(p, level), repo)
			err := c.call(ctx, what, func(g *gitea.Client) (*gitea.Response, error) {
				if level == a {
					return g.AddTeamRepository(id, repo.Owner, repo.Name)
				}
				return g.RemoveTeamRepository(id, repo.Owner, repo.Name)
			})
			if err != nil && !(level != a && errors.Is(err, ErrNotFound)) {
				return err
			}
		}
	}
	return nil
}
