package s3server_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	. "github.com/onsi/gomega"

	"github.com/hybridtwin/hybridtwin/internal/testenv"
	"github.com/hybridtwin/hybridtwin/twin/internal/procgroup"
	"github.com/hybridtwin/hybridtwin/twin/s3server"
)

// TestPublishAndStop: the server binds loopback only, refuses other credentials, publishes a folder as a
// bucket (and a second Publish removes what the folder lost), and Stop leaves no process behind.
func TestPublishAndStop(t *testing.T) {
	testenv.RequireBucketServer(t)
	g := NewWithT(t)
	ctx := context.Background()
	srv, err := s3server.Start(ctx, s3server.Options{Dir: t.TempDir()})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(srv.Stop)

	host, _, err := net.SplitHostPort(srv.Endpoint())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(host).To(Equal("127.0.0.1"))
	g.Expect(srv.AccessKey()).To(HaveLen(20))
	g.Expect(srv.SecretKey()).To(HaveLen(40))

	// Another server has other credentials.
	other, err := s3server.Start(ctx, s3server.Options{Dir: t.TempDir()})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(other.SecretKey()).NotTo(Equal(srv.SecretKey()))
	other.Stop()

	dir := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		g.Expect(os.MkdirAll(filepath.Dir(p), 0o755)).To(Succeed())
		g.Expect(os.WriteFile(p, []byte(content), 0o644)).To(Succeed())
	}
	write("apps/a.yaml", "a: 1\n")
	write("apps/b.yaml", "b: 1\n")
	write(".git/HEAD", "ref: refs/heads/main\n")
	p, err := srv.Publish(ctx, "apps", dir, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(p).To(Equal(s3server.Published{Bucket: "apps", Objects: 2}))
	g.Expect(srv.Keys(ctx, "apps")).To(Equal([]string{"apps/a.yaml", "apps/b.yaml"}))

	g.Expect(os.Remove(filepath.Join(dir, "apps", "a.yaml"))).To(Succeed())
	p, err = srv.Publish(ctx, "apps", dir, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(p).To(Equal(s3server.Published{Bucket: "apps", Objects: 1, Removed: 1}))
	g.Expect(srv.Keys(ctx, "apps")).To(Equal([]string{"apps/b.yaml"}))
	g.Expect(srv.Buckets(ctx)).To(Equal([]string{"apps"}))

	// A client with a wrong secret is refused.
	bad, err := minio.New(srv.Endpoint(), &minio.Options{Creds: credentials.NewStaticV4(srv.AccessKey(), "wrong", "")})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = bad.ListBuckets(ctx)
	g.Expect(err).To(HaveOccurred())

	_, err = srv.Publish(ctx, "Bad_Name", dir, nil)
	g.Expect(errors.Is(err, s3server.ErrInvalidOptions)).To(BeTrue(), "%v", err)

	pid := srv.PID()
	srv.Stop()
	g.Expect(procgroup.Alive(pid)).To(BeFalse())
	g.Expect(procgroup.GroupMembers(pid)).To(BeEmpty())
}

// TestKilledServerIsRestarted: `kill -9` of versitygw: it is restarted after the back-off on the same port
// with the same credentials, and the published objects are still served.
func TestKilledServerIsRestarted(t *testing.T) {
	testenv.RequireBucketServer(t)
	g := NewWithT(t)
	ctx := context.Background()
	var heard atomic.Int32
	srv, err := s3server.Start(ctx, s3server.Options{Dir: t.TempDir(),
		Restart:   procgroup.Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Reset: time.Minute},
		OnRestart: func(procgroup.Restart) { heard.Add(1) }})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(srv.Stop)
	dir := t.TempDir()
	g.Expect(os.MkdirAll(filepath.Join(dir, "apps"), 0o755)).To(Succeed())
	g.Expect(os.WriteFile(filepath.Join(dir, "apps", "a.yaml"), []byte("a: 1\n"), 0o644)).To(Succeed())
	_, err = srv.Publish(ctx, "apps", dir, nil)
	g.Expect(err).NotTo(HaveOccurred())

	pid, endpoint := srv.PID(), srv.Endpoint()
	g.Expect(syscall.Kill(pid, syscall.SIGKILL)).To(Succeed())
	g.Eventually(srv.Restarts).WithTimeout(30 * time.Second).WithPolling(20 * time.Millisecond).Should(Equal(1))
	g.Expect(srv.PID()).NotTo(Equal(pid))
	g.Expect(srv.Endpoint()).To(Equal(endpoint))
	g.Eventually(func() ([]string, error) { return srv.Keys(ctx, "apps") }).WithTimeout(30*time.Second).WithPolling(50*time.Millisecond).
		Should(Equal([]string{"apps/a.yaml"}), "the same data and root credentials after the restart")
	g.Expect(heard.Load()).To(Equal(int32(1)))
}

// TestStartRefusesBadOptions: no directory, a binary that is not there.
func TestStartRefusesBadOptions(t *testing.T) {
	g := NewWithT(t)
	_, err := s3server.Start(context.Background(), s3server.Options{})
	g.Expect(errors.Is(err, s3server.ErrInvalidOptions)).To(BeTrue(), "%v", err)
	_, err = s3server.Start(context.Background(), s3server.Options{Dir: t.TempDir(), Binary: filepath.Join(t.TempDir(), "none")})
	g.Expect(errors.Is(err, s3server.ErrInvalidOptions)).To(BeTrue(), "%v", err)
}
