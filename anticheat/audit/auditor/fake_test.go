package auditor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/fsm"
	"golang.org/x/mod/sumdb/tlog"
)

// source is a node's feed in memory: worlds and their events, from seq
// first on (earlier ones pruned).
type source struct {
	mu      sync.Mutex
	events  map[string][]*fsm.Event
	first   map[string]uint64 // the oldest seq held; 0 means 1
	incs    map[string]uint64 // each world's incarnation
	gens    map[string]int    // each world's deletes: a subscription of an older one ends
	salted  map[string]bool   // worlds whose audit leaves are salted
	changed chan struct{}
	subErr  error // Subscribe fails with it
	subs    int   // Subscribe calls
}

func newSource() *source {
	return &source{events: make(map[string][]*fsm.Event), first: make(map[string]uint64), changed: make(chan struct{}),
		incs: make(map[string]uint64), gens: make(map[string]int), salted: make(map[string]bool)}
}

// recreate deletes world and creates it again as incarnation inc (none: only
// deleted), with no events.
func (s *source) recreate(world string, inc ...uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.events, world)
	delete(s.first, world)
	s.gens[world]++
	if len(inc) > 0 {
		s.events[world], s.incs[world] = []*fsm.Event{}, inc[0]
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// endFeeds ends world's open subscriptions (fsm.ErrUnknownWorld), as a
// group's drop of a world that moved away ends its feed there, and keeps
// its events.
func (s *source) endFeeds(world string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gens[world]++
	close(s.changed)
	s.changed = make(chan struct{})
}

// relist lists world as incarnation inc from now on, its events kept.
func (s *source) relist(world string, inc uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.incs[world] = inc
	s.gens[world]++
	close(s.changed)
	s.changed = make(chan struct{})
}

// add commits n events to world (creating it).
func (s *source) add(world string, n int) { s.addAs(world, n, "p") }

// addAs commits n events to world by players named with prefix.
func (s *source) addAs(world string, n int, prefix string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		seq := uint64(len(s.events[world])) + 1
		s.events[world] = append(s.events[world], &fsm.Event{
			World: world, Seq: seq, Index: s.incs[world] + seq, Time: int64(s.incs[world] + seq), Player: fmt.Sprintf("%s%d", prefix, seq%3), ClientSeq: seq,
			Priority: fsm.PriorityCritical, Status: fsm.StatusApplied,
			Changes: []fsm.Change{{Entity: "e", Field: "hp", Op: fsm.OpSet, Value: fsm.Int(int64(seq)), Version: seq}},
		})
	}
	if n == 0 && s.events[world] == nil {
		s.events[world] = []*fsm.Event{}
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *source) Worlds() []fsm.WorldInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []fsm.WorldInfo
	for w, evs := range s.events {
		out = append(out, fsm.WorldInfo{ID: w, Seq: uint64(len(evs)), Incarnation: s.incs[w], Salted: s.salted[w]})
	}
	return out
}

var errGap = errors.New("test: gap")

func (s *source) Subscribe(world string, from uint64) (fanout.Subscription, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs++
	if s.subErr != nil {
		return nil, s.subErr
	}
	if from < max(s.first[world], 1) {
		return nil, fmt.Errorf("%w: seq %d", errGap, from)
	}
	return &sub{s: s, world: world, next: from, gen: s.gens[world]}, nil
}

type sub struct {
	s     *source
	world string
	next  uint64
	gen   int
}

func (u *sub) Next(ctx context.Context) ([]*fsm.Event, error) {
	for {
		u.s.mu.Lock()
		evs, first := u.s.events[u.world], max(u.s.first[u.world], 1)
		ch, gen := u.s.changed, u.s.gens[u.world]
		u.s.mu.Unlock()
		if gen != u.gen {
			return nil, fmt.Errorf("%w: %s was deleted", fsm.ErrUnknownWorld, u.world)
		}
		if u.next < first {
			return nil, fmt.Errorf("%w: seq %d", errGap, u.next)
		}
		if u.next <= uint64(len(evs)) {
			out := evs[u.next-1 : min(uint64(len(evs)), u.next+1)] // two at a time: batches join reads
			u.next += uint64(len(out))
			return out, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// stores keeps one MemStore per world incarnation (named world, or
// world#inc from incarnation 1 on), failing those named in fail, and
// tombstones.
type stores struct {
	mu      sync.Mutex
	m       map[string]*flaky
	fail    map[string]error
	tombs   map[string]string
	listErr error // Incarnations fails with it
	tombErr error // Tombstone fails with it
	putErr  error // PutTombstone fails with it
	listAll error // Worlds fails with it
	leaves  map[string]byte
	leafErr error // LeafVersion and PutLeafVersion fail with it
}

func newStores() *stores {
	return &stores{m: make(map[string]*flaky), fail: make(map[string]error), tombs: make(map[string]string), leaves: make(map[string]byte)}
}

func name(world string, inc uint64) string {
	if inc == 0 {
		return world
	}
	return fmt.Sprintf("%s#%d", world, inc)
}

func (s *stores) Open(world string, inc uint64) (audit.HashStore, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := name(world, inc)
	if err := s.fail[n]; err != nil {
		return nil, err
	}
	if s.m[n] == nil {
		s.m[n] = &flaky{world: world, inc: inc}
	}
	return s.m[n], nil
}

func (s *stores) Incarnations(world string) ([]uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listErr != nil {
		return nil, s.listErr
	}
	var out []uint64
	for _, f := range s.m {
		if f.world == world {
			out = append(out, f.inc)
		}
	}
	return out, nil
}

func (s *stores) Tombstone(world string, inc uint64) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tombs[name(world, inc)], s.tombErr
}

func (s *stores) PutTombstone(world string, inc uint64, text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.putErr != nil {
		return s.putErr
	}
	s.tombs[name(world, inc)] = text
	return nil
}

func (s *stores) Worlds() ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, f := range s.m {
		if !slices.Contains(out, f.world) {
			out = append(out, f.world)
		}
	}
	return out, s.listAll
}

func (s *stores) LeafVersion(world string, inc uint64) (byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leaves[name(world, inc)], s.leafErr
}

func (s *stores) PutLeafVersion(world string, inc uint64, v byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.leafErr != nil {
		return s.leafErr
	}
	s.leaves[name(world, inc)] = v
	return nil
}

func (s *stores) set(f func(s *stores)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *stores) tomb(world string, inc uint64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tombs[name(world, inc)]
}

// flaky is a MemStore whose reads or appends can be made to fail.
type flaky struct {
	world string
	inc   uint64
	audit.MemStore
	mu                sync.Mutex
	readErr, writeErr error
}

func (f *flaky) set(read, write error) {
	f.mu.Lock()
	f.readErr, f.writeErr = read, write
	f.mu.Unlock()
}

func (f *flaky) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	f.mu.Lock()
	err := f.readErr
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return f.MemStore.ReadHashes(idx)
}

func (f *flaky) AppendHashes(start int64, hs []tlog.Hash) error {
	f.mu.Lock()
	err := f.writeErr
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return f.MemStore.AppendHashes(start, hs)
}
