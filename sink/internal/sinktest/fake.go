// Package sinktest holds the in-memory feed the sinks' tests share: a
// feed.Source over worlds whose events, held range and leadership a test
// sets. Tests only.
package sinktest

import (
	"context"
	"fmt"
	"sync"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/gsd-dev/gsd/store"
)

// Source is a feed.Source over in-memory worlds whose events, held range
// and leadership a test sets. It numbers world creations and events from
// one log index, as a store does: a world's incarnation is the index of
// its creation, and its events come after it.
type Source struct {
	mu      sync.Mutex
	worlds  map[string]*World
	index   uint64        // the last log index given out
	changed chan struct{} // closed and replaced on every change
}

// World is one world of a Source; change it inside Update.
type World struct {
	Events []*fsm.Event // events[i].Seq == i+1
	Low    uint64       // lowest seq held; 1 unless pruned
	Leads  bool
	// Incarnation is the log index of the world's creation (0: a world
	// from before incarnations, as a store restored from an old snapshot
	// knows it).
	Incarnation uint64
	// Order, when set, is what the next Next returns instead (a feed out
	// of order).
	Order []*fsm.Event
}

// NewSource returns an empty Source.
func NewSource() *Source {
	return &Source{worlds: make(map[string]*World), changed: make(chan struct{})}
}

// Update runs fn under the source's lock and wakes its subscriptions.
func (f *Source) Update(fn func()) {
	f.mu.Lock()
	fn()
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// Edit returns world id, created (at the next log index, held from seq
// 1, led) if new; call it inside Update.
func (f *Source) Edit(id string) *World {
	w := f.worlds[id]
	if w == nil {
		f.index++
		w = &World{Low: 1, Leads: true, Incarnation: f.index}
		f.worlds[id] = w
	}
	return w
}

// Add appends n events to world (created if new); their leader times
// are time+seq.
func (f *Source) Add(world string, n int, time int64) {
	f.Update(func() { f.add(world, n, time) })
}

// AddPruned is Add and SetLow(world, low) at once: no subscriber sees
// the new events before the prune.
func (f *Source) AddPruned(world string, n int, time int64, low uint64) {
	f.Update(func() {
		f.add(world, n, time)
		f.Edit(world).Low = low
	})
}

func (f *Source) add(world string, n int, time int64) {
	w := f.Edit(world)
	for range n {
		seq := uint64(len(w.Events) + 1)
		f.index++
		w.Events = append(w.Events, &fsm.Event{World: world, Seq: seq, Index: f.index, Time: time + int64(seq),
			Player: "p", ClientSeq: seq, Status: fsm.StatusApplied, Priority: fsm.PriorityCritical,
			Changes: []fsm.Change{{Entity: "e", Field: "n", Op: fsm.OpIncr, Value: fsm.Value{Kind: fsm.KindInt, Int: int64(seq)}, Version: seq}}})
	}
}

// Recreate deletes world and creates it again (at the next log index)
// with n events whose times start after time: a new incarnation whose
// seqs start over at 1. Open subscriptions go on from their next seq, as
// a store that did not notice would.
func (f *Source) Recreate(world string, n int, time int64) {
	f.Update(func() {
		w := f.Edit(world)
		f.index++
		w.Events, w.Low, w.Incarnation = nil, 1, f.index
	})
	f.Add(world, n, time)
}

// Incarnation returns the incarnation the sinks name world by now
// (feed.Incarnation; 0 when unknown).
func (f *Source) Incarnation(world string) int64 {
	inc, _ := feed.Incarnation(f, world)
	return inc
}

// SetIncarnation sets world's creation index (0: from before
// incarnations).
func (f *Source) SetIncarnation(world string, inc uint64) {
	f.Update(func() { f.Edit(world).Incarnation = inc })
}

// Delete removes world: it is no longer listed, and its subscriptions
// fail with fsm.ErrUnknownWorld.
func (f *Source) Delete(world string) { f.Update(func() { delete(f.worlds, world) }) }

// SetLow prunes world below low; SetLeads sets whether this node leads it.
func (f *Source) SetLow(world string, low uint64) { f.Update(func() { f.Edit(world).Low = low }) }
func (f *Source) SetLeads(world string, l bool)   { f.Update(func() { f.Edit(world).Leads = l }) }

// Worlds, World, Subscribe, Event and Leads serve feed.Source.
func (f *Source) Worlds() []fsm.WorldInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fsm.WorldInfo
	for id, w := range f.worlds {
		out = append(out, w.info(id))
	}
	return out
}

func (f *Source) World(id string) (fsm.WorldInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.worlds[id]
	if w == nil {
		return fsm.WorldInfo{}, fmt.Errorf("%w: %s", fsm.ErrUnknownWorld, id)
	}
	return w.info(id), nil
}

func (w *World) info(id string) fsm.WorldInfo {
	return fsm.WorldInfo{ID: id, Seq: uint64(len(w.Events)), Incarnation: w.Incarnation}
}

func (f *Source) Subscribe(world string, from uint64) (feed.Subscription, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.worlds[world]
	if w == nil {
		return nil, fmt.Errorf("%w: %s", fsm.ErrUnknownWorld, world)
	}
	if from < w.Low {
		return nil, fmt.Errorf("%w: world %s seq %d", store.ErrArchiveGap, world, from)
	}
	return &sub{f: f, world: world, next: from}, nil
}

func (f *Source) Event(world string, seq uint64) (*fsm.Event, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.worlds[world]
	if w == nil || seq < w.Low || seq > uint64(len(w.Events)) {
		return nil, false
	}
	return w.Events[seq-1], true
}

func (f *Source) Leads(world string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.worlds[world]
	return w != nil && w.Leads
}

type sub struct {
	f     *Source
	world string
	next  uint64
}

func (s *sub) Next(ctx context.Context) ([]*fsm.Event, error) {
	for {
		s.f.mu.Lock()
		w := s.f.worlds[s.world]
		if w == nil {
			s.f.mu.Unlock()
			return nil, fmt.Errorf("%w: %s", fsm.ErrUnknownWorld, s.world)
		}
		if w.Order != nil {
			out := w.Order
			w.Order = nil
			s.f.mu.Unlock()
			return out, nil
		}
		if s.next < w.Low {
			s.f.mu.Unlock()
			return nil, fmt.Errorf("%w: world %s seq %d", store.ErrArchiveGap, s.world, s.next)
		}
		if n := uint64(len(w.Events)); s.next <= n {
			out := append([]*fsm.Event(nil), w.Events[s.next-1:min(n, s.next-1+256)]...)
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

// Events returns a copy of world's events.
func (f *Source) Events(world string) []*fsm.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	if w := f.worlds[world]; w != nil {
		return append([]*fsm.Event(nil), w.Events...)
	}
	return nil
}
