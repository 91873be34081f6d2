package workq

import (
	"sync"
	"time"
)

// Queue is safe for concurrent use.
type Queue[K comparable] struct {
	mu         sync.Mutex
	cond       *sync.Cond
	items      []K
	queued     map[K]bool
	processing map[K]bool
	dirty      map[K]bool // added again while processing
	timers     map[*time.Timer]bool
	shut       bool
}

// New returns an empty queue.
func New[K comparable]() *Queue[K] {
	q := &Queue[K]{queued: map[K]bool{}, processing: map[K]bool{}, dirty: map[K]bool{}, timers: map[*time.Timer]bool{}}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Add queues k unless it is already queued; if k is being processed it is queued again after Done.
func (q *Queue[K]) Add(k K) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shut {
		return
	}
	if q.processing[k] {
		q.dirty[k] = true
		return
	}
	if q.queued[k] {
		return
	}
	q.queued[k] = true
	q.items = append(q.items, k)
	q.cond.Signal()
}

// AddAfter adds k after d of real time (retries; intervals use the reconciler's scheduler). A pending
// AddAfter counts as outstanding work for Idle.
func (q *Queue[K]) AddAfter(k K, d time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shut {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		q.mu.Lock()
		delete(q.timers, t)
		q.mu.Unlock()
		q.Add(k)
	})
	q.timers[t] = true
}

// Get blocks until a key is available and marks it processing; ok is false after ShutDown.
func (q *Queue[K]) Get() (k K, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && !q.shut {
		q.cond.Wait()
	}
	if q.shut {
		return k, false
	}
	k = q.items[0]
	var zero K
	q.items[0] = zero
	q.items = q.items[1:]
	delete(q.queued, k)
	q.processing[k] = true
	return k, true
}

// Done marks k processed, requeueing it if it was added meanwhile.
func (q *Queue[K]) Done(k K) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.processing, k)
	if q.dirty[k] {
		delete(q.dirty, k)
		if !q.shut && !q.queued[k] {
			q.queued[k] = true
			q.items = append(q.items, k)
			q.cond.Signal()
		}
	}
}

// Len is the number of queued (not processing) keys.
func (q *Queue[K]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// Idle reports that nothing is queued, processing or waiting in AddAfter.
func (q *Queue[K]) Idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) == 0 && len(q.processing) == 0 && len(q.timers) == 0
}

// ShutDown wakes all Get callers with ok=false and drops pending work.
func (q *Queue[K]) ShutDown() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.shut = true
	for t := range q.timers {
		t.Stop()
	}
	q.timers = map[*time.Timer]bool{}
	q.cond.Broadcast()
}
