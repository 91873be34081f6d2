package core

import (
	"container/heap"
	"time"
)

// Scheduler keeps one due time per key and hands keys out when they are due. It is a plain data
// structure: the caller passes "now" and owns the timer, so a fake clock drives it in tests.
// Ties are broken by insertion order, so the same calls yield the same order.
type Scheduler[K comparable] struct {
	items map[K]*entry[K]
	h     entryHeap[K]
	seq   uint64
}

type entry[K comparable] struct {
	key   K
	at    time.Time
	seq   uint64
	index int
}

// NewScheduler returns an empty scheduler.
func NewScheduler[K comparable]() *Scheduler[K] {
	return &Scheduler[K]{items: map[K]*entry[K]{}}
}

// Set makes key due at at, replacing any earlier or later due time.
func (s *Scheduler[K]) Set(key K, at time.Time) {
	s.seq++
	if e, ok := s.items[key]; ok {
		e.at, e.seq = at, s.seq
		heap.Fix(&s.h, e.index)
		return
	}
	e := &entry[K]{key: key, at: at, seq: s.seq}
	s.items[key] = e
	heap.Push(&s.h, e)
}

// Cancel forgets key.
func (s *Scheduler[K]) Cancel(key K) {
	if e, ok := s.items[key]; ok {
		heap.Remove(&s.h, e.index)
		delete(s.items, key)
	}
}

// When returns key's due time.
func (s *Scheduler[K]) When(key K) (time.Time, bool) {
	if e, ok := s.items[key]; ok {
		return e.at, true
	}
	return time.Time{}, false
}

// Next returns the earliest due time.
func (s *Scheduler[K]) Next() (time.Time, bool) {
	if len(s.h) == 0 {
		return time.Time{}, false
	}
	return s.h[0].at, true
}

// Due removes and returns every key due at or before now, earliest first.
func (s *Scheduler[K]) Due(now time.Time) []K {
	var out []K
	for len(s.h) > 0 && !s.h[0].at.After(now) {
		e := heap.Pop(&s.h).(*entry[K])
		delete(s.items, e.key)
		out = append(out, e.key)
	}
	return out
}

// Len is the number of scheduled keys.
func (s *Scheduler[K]) Len() int { return len(s.h) }

type entryHeap[K comparable] []*entry[K]

func (h entryHeap[K]) Len() int { return len(h) }
func (h entryHeap[K]) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h entryHeap[K]) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *entryHeap[K]) Push(x any) {
	e := x.(*entry[K])
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *entryHeap[K]) Pop() any {
	old := *h
	n := len(old)
	e := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	e.index = -1
	return e
}
