package estate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/hybridtwin/hybridtwin/twin/api"
)

// Info describes the running twin.
func (e *Estate) Info() api.Info {
	return api.Info{Name: e.spec.Metadata.Name, Spec: e.specFile, PID: os.Getpid(), StartedAt: e.start,
		ReadyAfter: e.ready.Round(time.Millisecond).String(), Kubeconfig: e.kubeconfig, Contexts: e.clusterNames(),
		GiteaURL: e.git.URL(), GiteaToken: filepath.Join(e.stateDir, api.GiteaTokenFile), Registry: e.reg.Host(),
		ArcEndpoint: e.arcEP.URL, Socket: api.SocketPath(e.stateDir), TimeProfile: string(e.spec.Spec.TimeProfile)}
}

func (e *Estate) writeInfo() error {
	i := e.Info()
	if e.ready == 0 { // written at the end of Up, before Up records how long it took
		i.ReadyAfter = time.Since(e.start).Round(time.Millisecond).String()
	}
	data, err := json.MarshalIndent(i, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(e.stateDir, api.InfoFile), append(data, '\n'), 0o644)
}

// prepareState makes the state directory. A directory left by a twin that is no longer running (its
// socket does not answer) is cleared; one whose twin still answers is refused.
func (e *Estate) prepareState() error {
	dir := e.opts.StateDir
	if dir == "" {
		d, err := api.DefaultStateDir(e.spec.Metadata.Name)
		if err != nil {
			return err
		}
		dir = d
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if conn, err := net.DialTimeout("unix", api.SocketPath(abs), time.Second); err == nil {
		conn.Close()
		return fmt.Errorf("%w in %s; stop it with `hybridtwin down --state-dir %s` or use another --state-dir", api.ErrRunning, abs, abs)
	}
	// Only the parts a twin writes are cleared, so a detached up's log (opened by the parent) stays.
	for _, p := range []string{api.GiteaDir, api.RegistryDir, api.ClustersDir, api.EnginesDir, api.KubeconfigFile, api.GiteaTokenFile, api.InfoFile, api.ControlSocket} {
		if err := os.RemoveAll(filepath.Join(abs, p)); err != nil {
			return fmt.Errorf("clear %s: %w", filepath.Join(abs, p), err)
		}
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return err
	}
	e.stateDir = abs
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
