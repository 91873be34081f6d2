package proc

import (
	"fmt"
	"net"
	"sync"
)

// Ports hands out free TCP ports on 127.0.0.1. The operating system picks each one (bind to port 0);
// Ports remembers what it handed out until Release, so two clusters starting at once in this process
// never get the same port even if the system offers it twice. Another process may still take a port
// between Take and the component binding it; a component that then fails to bind fails its start,
// which the caller may retry with fresh ports.
type Ports struct {
	mu    sync.Mutex
	taken map[int]bool
}

// NewPorts returns an empty port allocator.
func NewPorts() *Ports { return &Ports{taken: map[int]bool{}} }

// Take returns n distinct free ports.
func (p *Ports) Take(n int) ([]int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []int
	var held []net.Listener
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	for attempts := 0; len(out) < n; attempts++ {
		if attempts > 10*n+100 {
			p.release(out)
			return nil, fmt.Errorf("find %d free ports on 127.0.0.1: gave up after %d attempts", n, attempts)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			p.release(out)
			return nil, fmt.Errorf("find a free port on 127.0.0.1: %w", err)
		}
		// Hold every listener until all n are found, so the system cannot hand out one port twice.
		held = append(held, l)
		port := l.Addr().(*net.TCPAddr).Port
		if p.taken[port] {
			continue
		}
		p.taken[port] = true
		out = append(out, port)
	}
	return out, nil
}

// Release makes ports available again.
func (p *Ports) Release(ports []int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.release(ports)
}

func (p *Ports) release(ports []int) {
	for _, port := range ports {
		delete(p.taken, port)
	}
}
