package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onsi/gomega"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/hybridtwin/hybridtwin/twin/cluster"
	"github.com/hybridtwin/hybridtwin/twin/cluster/embedded"
	"github.com/hybridtwin/hybridtwin/twin/internal/procgroup"
)

// Polling settings for Eventually. The bounds are generous (a loaded 2-core CI runner) and say nothing
// about speed: speed is measured in bench/clusterstart.
const (
	poll     = 200 * time.Millisecond
	settle   = 3 * time.Minute // a pod or node reaching a state
	eviction = 4 * time.Minute // fast profile: 10 s grace + 10 s toleration, plus the pod GC's 20 s period
)

// examplePath is the spec the shared clusters come from.
var examplePath = filepath.Join("..", "..", "..", "examples", "clusters", "two-clusters.yaml")

// shared is the pair of clusters the tests share: started on first use, stopped by TestMain.
var shared struct {
	once     sync.Once
	provider *embedded.Provider
	clusters []sharedCluster
	err      error
}

type sharedCluster struct {
	spec   cluster.Spec
	info   cluster.Info
	client kubernetes.Interface
}

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	code := m.Run()
	if shared.provider != nil {
		if err := shared.provider.Close(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "stop the shared clusters:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// sharedClusters starts the two example clusters in parallel on first use.
func sharedClusters(t *testing.T) (*embedded.Provider, []sharedCluster) {
	t.Helper()
	shared.once.Do(func() {
		specs, err := cluster.LoadFile(examplePath)
		if err != nil {
			shared.err = err
			return
		}
		shared.provider = embedded.New(embedded.Options{})
		suffix := randomSuffix()
		shared.clusters = make([]sharedCluster, len(specs))
		errs := make([]error, len(specs))
		var wg sync.WaitGroup
		for i, s := range specs {
			s.Name += "-" + suffix
			s.TimeProfile = cluster.ProfileFast // the example is on real time; tests cannot wait 350 s per eviction
			shared.clusters[i].spec = s
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				info, err := shared.provider.Create(context.Background(), shared.clusters[i].spec)
				if err != nil {
					errs[i] = err
					return
				}
				shared.clusters[i].info = info
				shared.clusters[i].client, errs[i] = clientFor(info.Kubeconfig)
			}(i)
		}
		wg.Wait()
		shared.err = errors.Join(errs...)
	})
	if shared.err != nil {
		t.Fatalf("start the shared clusters from %s: %v", examplePath, shared.err)
	}
	return shared.provider, shared.clusters
}

func clientFor(kubeconfig string) (kubernetes.Interface, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	rc.QPS, rc.Burst = 50, 100
	return kubernetes.NewForConfig(rc)
}

func randomSuffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// expectNothingLeft asserts that none of the processes is alive, none of their process groups has a
// member, and no port accepts a connection.
func expectNothingLeft(t *testing.T, procs []cluster.Process, ports []int) {
	t.Helper()
	g := gomega.NewWithT(t)
	if len(procs) == 0 {
		t.Fatal("no processes to check: the test would prove nothing")
	}
	for _, p := range procs {
		g.Eventually(func() bool { return procgroup.Alive(p.PID) }).WithTimeout(settle).WithPolling(poll).
			Should(gomega.BeFalse(), "%s (pid %d) is still running", p.Component, p.PID)
		g.Eventually(func() []int { return procgroup.GroupMembers(p.PID) }).WithTimeout(settle).WithPolling(poll).
			Should(gomega.BeEmpty(), "process group of %s (pid %d) still has members", p.Component, p.PID)
	}
	for _, port := range ports {
		g.Eventually(func() error { return dial(port) }).WithTimeout(settle).WithPolling(poll).
			Should(gomega.HaveOccurred(), "port %d still accepts connections", port)
	}
}

func dial(port int) error {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err == nil {
		_ = c.Close()
	}
	return err
}

func allPorts(info cluster.Info) []int {
	var out []int
	for _, p := range info.Processes {
		out = append(out, p.Ports...)
	}
	return out
}

// processesMentioning returns the pids of live processes whose command line mentions s (a cluster's
// unique state directory: every component's flags name it).
func processesMentioning(s string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), s) && procgroup.Alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}
