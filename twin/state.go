package twin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// ErrRunning is wrapped when a twin of the same state directory is already running.
var ErrRunning = errors.New("twin already running")

// ErrNotRunning is wrapped when no twin answers on a state directory's control socket.
var ErrNotRunning = errors.New("no twin running")

// StateRoot is the folder holding one state directory per twin: $XDG_STATE_HOME/hybridtwin, else
// ~/.local/state/hybridtwin (the XDG Base Directory specification's default for $XDG_STATE_HOME).
func StateRoot() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "hybridtwin"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the state folder: %w; set XDG_STATE_HOME or pass a state directory", err)
	}
	return filepath.Join(home, ".local", "state", "hybridtwin"), nil
}

// DefaultStateDir is the state directory of the twin named name.
func DefaultStateDir(name string) (string, error) {
	root, err := StateRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, name), nil
}

// Info is what the state directory's twin.json records about a running twin, for `status` when the
// control socket is gone and for scripts.
type Info struct {
	Name string `json:"name"`
	// Spec is the twin spec's absolute path.
	Spec        string    `json:"spec"`
	PID         int       `json:"pid"`
	StartedAt   time.Time `json:"startedAt"`
	ReadyAfter  string    `json:"readyAfter"`
	Kubeconfig  string    `json:"kubeconfig"`
	Contexts    []string  `json:"contexts"`
	GiteaURL    string    `json:"giteaURL"`
	GiteaToken  string    `json:"giteaTokenFile"`
	Registry    string    `json:"registry"`
	ArcEndpoint string    `json:"arcEndpoint"`
	Socket      string    `json:"controlSocket"`
	TimeProfile string    `json:"timeProfile"`
}

// ReadInfo reads a state directory's twin.json.
func ReadInfo(stateDir string) (*Info, error) {
	data, err := os.ReadFile(filepath.Join(stateDir, InfoFile))
	if err != nil {
		return nil, err
	}
	var i Info
	if err := json.Unmarshal(data, &i); err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(stateDir, InfoFile), err)
	}
	return &i, nil
}

// Info describes the running twin.
func (t *Twin) Info() Info {
	return Info{Name: t.spec.Metadata.Name, Spec: t.specFile, PID: os.Getpid(), StartedAt: t.start,
		ReadyAfter: t.ready.Round(time.Millisecond).String(), Kubeconfig: t.kubeconfig, Contexts: t.clusterNames(),
		GiteaURL: t.git.URL(), GiteaToken: filepath.Join(t.stateDir, GiteaTokenFile), Registry: t.reg.Host(),
		ArcEndpoint: t.arcEP.URL, Socket: SocketPath(t.stateDir), TimeProfile: string(t.spec.Spec.TimeProfile)}
}

func (t *Twin) writeInfo() error {
	i := t.Info()
	if t.ready == 0 { // written at the end of Up, before Up records how long it took
		i.ReadyAfter = time.Since(t.start).Round(time.Millisecond).String()
	}
	data, err := json.MarshalIndent(i, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(t.stateDir, InfoFile), append(data, '\n'), 0o644)
}

// SocketPath is the control socket of the twin whose state directory is stateDir.
func SocketPath(stateDir string) string { return filepath.Join(stateDir, ControlSocket) }

// prepareState makes the state directory. A directory left by a twin that is no longer running (its
// socket does not answer) is cleared; one whose twin still answers is refused.
func (t *Twin) prepareState() error {
	dir := t.opts.StateDir
	if dir == "" {
		d, err := DefaultStateDir(t.spec.Metadata.Name)
		if err != nil {
			return err
		}
		dir = d
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if conn, err := net.DialTimeout("unix", SocketPath(abs), time.Second); err == nil {
		conn.Close()
		return fmt.Errorf("%w in %s; stop it with `hybridtwin down --state-dir %s` or use another --state-dir", ErrRunning, abs, abs)
	}
	// Only the parts a twin writes are cleared, so a detached up's log (opened by the parent) stays.
	for _, p := range []string{stateDirGitea, stateDirRegistry, stateDirClusters, stateDirEngines, KubeconfigFile, GiteaTokenFile, InfoFile, ControlSocket} {
		if err := os.RemoveAll(filepath.Join(abs, p)); err != nil {
			return fmt.Errorf("clear %s: %w", filepath.Join(abs, p), err)
		}
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return err
	}
	t.stateDir = abs
	return nil
}

// mergeKubeconfigs writes one kubeconfig with a context per cluster, named after the cluster, the first
// cluster's context current. The clusters' kubeconfigs embed their certificates, so the merged file
// stands alone.
func mergeKubeconfigs(names []string, pathOf func(string) string) (*clientcmdapi.Config, error) {
	out := clientcmdapi.NewConfig()
	for _, name := range names {
		cfg, err := clientcmd.LoadFromFile(pathOf(name))
		if err != nil {
			return nil, fmt.Errorf("read the kubeconfig of cluster %s: %w", name, err)
		}
		ctxName := cfg.CurrentContext
		c, ok := cfg.Contexts[ctxName]
		if !ok {
			return nil, fmt.Errorf("kubeconfig %s of cluster %s has no current context", pathOf(name), name)
		}
		cl, ok1 := cfg.Clusters[c.Cluster]
		ai, ok2 := cfg.AuthInfos[c.AuthInfo]
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("kubeconfig %s of cluster %s: context %s names a missing cluster or user", pathOf(name), name, ctxName)
		}
		user := name + "-admin"
		out.Clusters[name] = cl
		out.AuthInfos[user] = ai
		out.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: user}
		if out.CurrentContext == "" {
			out.CurrentContext = name
		}
	}
	return out, nil
}

// writeKubeconfigFile writes a kubeconfig readable by its owner only (it holds admin credentials).
func writeKubeconfigFile(cfg *clientcmdapi.Config, path string) error {
	return clientcmd.WriteToFile(*cfg, path)
}

func bytesReplace(data, from, to []byte) []byte { return bytes.ReplaceAll(data, from, to) }
