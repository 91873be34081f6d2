package embedded

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/hybridtwin/hybridtwin/twin/cluster"
	"github.com/hybridtwin/hybridtwin/twin/internal/procgroup"
)

// sharedEtcdName is the shared store's etcd member name and its directory under the provider's state.
const sharedEtcdName = "shared-etcd"

// sharedStore is the one etcd the provider's light clusters share (cluster.TierLight): started with the
// first light cluster, stopped when the last one is deleted. Each cluster's API server keeps its objects
// under cluster.EtcdPrefix(name); Delete removes that prefix, so a cluster of the same name later starts
// empty.
type sharedStore struct {
	proc  *procgroup.Supervised
	ports ports // EtcdClient and EtcdPeer only
	dir   string
	users int
}

func (s *sharedStore) url() string { return url(s.ports.EtcdClient) }

// procOrNil is the store's process; nil for no store.
func (s *sharedStore) procOrNil() *procgroup.Supervised {
	if s == nil {
		return nil
	}
	return s.proc
}

// process is the store as a cluster lists it among its processes.
func (s *sharedStore) process() cluster.Process {
	return cluster.Process{Component: cluster.Etcd, PID: s.proc.PID(), Restarts: s.proc.Restarts(),
		Ports: []int{s.ports.EtcdClient, s.ports.EtcdPeer}, Log: s.proc.LogPath(), Shared: true}
}

// acquireStore returns the shared store, starting it if no light cluster runs, and counts one more user.
// The store takes the restart back-off of the cluster that starts it (its time profile).
func (p *Provider) acquireStore(ctx context.Context, root string, bins Binaries, prof cluster.TimeProfile) (*sharedStore, error) {
	p.storeMu.Lock()
	defer p.storeMu.Unlock()
	if p.store != nil {
		p.store.users++
		return p.store, nil
	}
	pt, err := p.ports.Take(2)
	if err != nil {
		return nil, fmt.Errorf("shared etcd: %w: %v", cluster.ErrStart, err)
	}
	s := &sharedStore{ports: ports{EtcdClient: pt[0], EtcdPeer: pt[1]}, dir: filepath.Join(root, sharedEtcdName)}
	l := layout{Dir: s.dir}
	fail := func(err error) (*sharedStore, error) {
		if s.proc != nil {
			s.proc.Stop(p.opts.StopGrace)
		}
		p.ports.Release(pt)
		_ = os.RemoveAll(s.dir)
		return nil, fmt.Errorf("shared etcd of the light clusters: %w", err)
	}
	if err := os.RemoveAll(s.dir); err != nil {
		return fail(err)
	}
	for _, d := range []string{l.etcdData(), l.logs()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fail(err)
		}
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	env = append(env, p.env()[cluster.Etcd]...)
	s.proc, err = procgroup.Supervise(procgroup.Spec{
		Name:    string(cluster.Etcd),
		Path:    bins.Etcd,
		Args:    componentArgs(cluster.Etcd, cluster.Spec{Name: sharedEtcdName}, prof, l, s.ports, store{}),
		Env:     env,
		Dir:     s.dir,
		LogPath: l.log(cluster.Etcd),
	}, prof.RestartBackoff(), func(r procgroup.Restart) {
		if r.Err != nil {
			p.log.Warn("shared etcd restart failed", "restarts", r.Restarts, "err", r.Err)
			return
		}
		p.log.Info("shared etcd restarted after a crash", "restarts", r.Restarts, "pid", r.PID, "exited", r.Exited)
		if p.opts.OnRestart != nil {
			r.Name = sharedEtcdName + "/" + string(cluster.Etcd)
			p.opts.OnRestart(r)
		}
	})
	if err != nil {
		return fail(err)
	}
	startCtx, cancel := context.WithTimeout(ctx, p.opts.StartTimeout)
	defer cancel()
	probe := &instance{log: p.log}
	if err := probe.waitHealthy(startCtx, cluster.PhaseEtcd, []*procgroup.Supervised{s.proc}, http.DefaultClient, s.url()+"/health", `"health":"true"`); err != nil {
		return fail(err)
	}
	s.users = 1
	p.store = s
	p.log.Info("shared etcd ready", "pid", s.proc.PID(), "client", s.url())
	return s, nil
}

// releaseStore counts one user less and stops the store after the last.
func (p *Provider) releaseStore() {
	p.storeMu.Lock()
	defer p.storeMu.Unlock()
	s := p.store
	if s == nil {
		return
	}
	s.users--
	if s.users > 0 {
		return
	}
	p.store = nil
	s.proc.Stop(p.opts.StopGrace)
	p.ports.Release(s.ports.all())
	if !p.opts.KeepState {
		_ = os.RemoveAll(s.dir)
	}
	p.log.Info("shared etcd stopped")
}

// etcdRequestTimeout bounds one request to the shared store; on loopback it answers in milliseconds.
const etcdRequestTimeout = 10 * time.Second

// deletePrefix removes every key under prefix+"/" through etcd's JSON gateway (etcd v3.5 API reference:
// POST /v3/kv/deleterange, keys base64; range_end is the prefix with its last byte plus one, the v3
// "prefix" convention), and returns how many keys it deleted.
func deletePrefix(ctx context.Context, etcdURL, prefix string) (int64, error) {
	key := []byte(prefix + "/")
	end := append([]byte(nil), key...)
	end[len(end)-1]++
	body, _ := json.Marshal(map[string]string{
		"key":       base64.StdEncoding.EncodeToString(key),
		"range_end": base64.StdEncoding.EncodeToString(end),
	})
	ctx, cancel := context.WithTimeout(ctx, etcdRequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, etcdURL+"/v3/kv/deleterange", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("delete %s* from the shared etcd: %w", key, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("delete %s* from the shared etcd: %s: %s", key, resp.Status, truncate(string(b), 300))
	}
	var out struct {
		Deleted int64 `json:"deleted,string"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return 0, fmt.Errorf("delete %s* from the shared etcd: answer %q: %w", key, truncate(string(b), 300), err)
	}
	return out.Deleted, nil
}
