package files

import (
	"context"
	"fmt"
	"sync"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
)

// fakeSource is a Source over in-memory worlds whose events, held range
// and leadership a test sets.
type fakeSource struct {
	mu      sync.Mutex
	worlds  map[string]*fakeWorld
	changed chan struct{} // closed and replaced on every change
}

type fakeWorld struct {
	events []*fsm.Event // events[i].Seq == i+1
	low    uint64       // lowest seq held; 1 unless pruned
	leads  bool
}

func newFakeSource() *fakeSource {
	return &fakeSource{worlds: make(map[string]*fakeWorld), changed: make(chan struct{})}
}

func (f *fakeSource) update(fn func()) {
	f.mu.Lock()
	fn()
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

func (f *fakeSource) world(id string) *fakeWorld {
	w := f.worlds[id]
	if w == nil {
		w = &fakeWorld{low: 1, leads: true}
		f.worlds[id] = w
	}
	return w
}

// add appends n events to world.
func (f *fakeSource) add(world string, n int) {
	f.update(func() {
		w := f.world(world)
		for range n {
			seq := uint64(len(w.events) + 1)
			w.events = append(w.events, &fsm.Event{World: world, Seq: seq, Index: 100 + seq, Time: 1e18 + int64(seq),
				Player: "p", ClientSeq: seq, Status: fsm.StatusApplied, Priority: fsm.PriorityCritical,
				Changes: []fsm.Change{{Entity: "e", Field: "n", Op: fsm.OpIncr, Value: fsm.Value{Kind: fsm.KindInt, Int: int64(seq)}, Version: seq}}})
		}
	})
}

func (f *fakeSource) events(world string) []*fsm.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*fsm.Event(nil), f.worlds[world].events...)
}

func (f *fakeSource) setLow(world string, low uint64) { f.update(func() { f.world(world).low = low }) }
func (f *fakeSource) setLeads(world string, l bool)   { f.update(func() { f.world(world).leads = l }) }

func (f *fakeSource) Worlds() []fsm.WorldInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fsm.WorldInfo
	for id, w := range f.worlds {
		out = append(out, fsm.WorldInfo{ID: id, Seq: uint64(len(w.events))})
	}
	return out
}

func (f *fakeSource) Subscribe(world string, from uint64) (Subscription, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.worlds[world]
	if w == nil {
		return nil, fmt.Errorf("%w: %s", fsm.ErrUnknownWorld, world)
	}
	if from < w.low {
		return nil, fmt.Errorf("%w: world %s seq %d", store.ErrArchiveGap, world, from)
	}
	return &fakeSub{f: f, world: world, next: from}, nil
}

func (f *fakeSource) Leads(world string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.worlds[world]
	return w != nil && w.leads
}

type fakeSub struct {
	f     *fakeSource
	world string
	next  uint64
}

func (s *fakeSub) Next(ctx context.Context) ([]*fsm.Event, error) {
	for {
		s.f.mu.Lock()
		w := s.f.worlds[s.world]
		if n := uint64(len(w.events)); s.next <= n {
			out := append([]*fsm.Event(nil), w.events[s.next-1:min(n, s.next-1+64)]...)
			s.next += uint64(len(out))
			s.f.mu.Unlock()
			return out, nil
		}
		ch := s.f.changed
		s.f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
