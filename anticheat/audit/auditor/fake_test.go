package auditor

import (
	"context"
	"errors"
	"fmt"
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
	changed chan struct{}
	subErr  error // Subscribe fails with it
	subs    int   // Subscribe calls
}

func newSource() *source {
	return &source{events: make(map[string][]*fsm.Event), first: make(map[string]uint64), changed: make(chan struct{})}
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
			World: world, Seq: seq, Index: seq, Time: int64(seq), Player: fmt.Sprintf("%s%d", prefix, seq%3), ClientSeq: seq,
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
		out = append(out, fsm.WorldInfo{ID: w, Seq: uint64(len(evs))})
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
	return &sub{s: s, world: world, next: from}, nil
}

type sub struct {
	s     *source
	world string
	next  uint64
}

func (u *sub) Next(ctx context.Context) ([]*fsm.Event, error) {
	for {
		u.s.mu.Lock()
		evs, first := u.s.events[u.world], max(u.s.first[u.world], 1)
		ch := u.s.changed
		u.s.mu.Unlock()
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

// stores keeps one MemStore per world, failing worlds named in fail.
type stores struct {
	mu   sync.Mutex
	m    map[string]*flaky
	fail map[string]error
}

func newStores() *stores { return &stores{m: make(map[string]*flaky), fail: make(map[string]error)} }

func (s *stores) open(world string) (audit.HashStore, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail[world]; err != nil {
		return nil, err
	}
	if s.m[world] == nil {
		s.m[world] = &flaky{}
	}
	return s.m[world], nil
}

// flaky is a MemStore whose reads or appends can be made to fail.
type flaky struct {
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
