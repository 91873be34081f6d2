package proc

import (
	"net"
	"strconv"
	"testing"
)

func TestPortsAreDistinctAndFree(t *testing.T) {
	p := NewPorts()
	a, err := p.Take(20)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Take(20)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, port := range append(a, b...) {
		if seen[port] {
			t.Fatalf("port %d handed out twice", port)
		}
		seen[port] = true
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			t.Fatalf("port %d is not free: %v", port, err)
		}
		_ = l.Close()
	}
	p.Release(a)
	if len(p.taken) != len(b) {
		t.Fatalf("after release %d ports are taken, want %d", len(p.taken), len(b))
	}
}
