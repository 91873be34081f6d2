package s3server_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"

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

// TestStartRefusesBadOptions: no directory, a binary that is not there.
func TestStartRefusesBadOptions(t *testing.T) {
	g := NewWithT(t)
	_, err := s3server.Start(context.Background(), s3server.Options{})
	g.Expect(errors.Is(err, s3server.ErrInvalidOptions)).To(BeTrue(), "%v", err)
	_, err = s3server.Start(context.Background(), s3server.Options{Dir: t.TempDir(), Binary: filepath.Join(t.TempDir(), "none")})
	g.Expect(errors.Is(err, s3server.ErrInvalidOptions)).To(BeTrue(), "%v", err)
}
