package workq

import (
	"sync"
	"testing"
	"time"

	"github.com/onsi/gomega"
)

func TestDedupAndNoConcurrentProcessing(t *testing.T) {
	q := New[string]()
	q.Add("a")
	q.Add("a")
	q.Add("b")
	if q.Len() != 2 {
		t.Fatalf("len %d, want 2", q.Len())
	}
	k, ok := q.Get()
	if !ok || k != "a" {
		t.Fatalf("got %q %v", k, ok)
	}
	q.Add("a") // while processing: queued again after Done, not handed out now
	if k2, _ := q.Get(); k2 != "b" {
		t.Fatalf("got %q, want b", k2)
	}
	if q.Idle() {
		t.Fatal("processing keys are not idle")
	}
	q.Done("b")
	q.Done("a")
	if k3, _ := q.Get(); k3 != "a" {
		t.Fatalf("got %q, want a again", k3)
	}
	q.Done("a")
	if !q.Idle() {
		t.Fatal("want idle")
	}
}

func TestAddAfterAndShutDown(t *testing.T) {
	g := gomega.NewWithT(t)
	q := New[int]()
	q.AddAfter(7, time.Millisecond)
	g.Expect(q.Idle()).To(gomega.BeFalse(), "a pending AddAfter is outstanding work")
	k, ok := q.Get()
	g.Expect(ok).To(gomega.BeTrue())
	g.Expect(k).To(gomega.Equal(7))
	q.Done(k)
	g.Eventually(q.Idle).WithTimeout(10 * time.Second).WithPolling(time.Millisecond).Should(gomega.BeTrue())

	var wg sync.WaitGroup
	var gotOK bool
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, gotOK = q.Get()
	}()
	q.ShutDown()
	wg.Wait()
	g.Expect(gotOK).To(gomega.BeFalse(), "Get after ShutDown")
}
