package api

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
)

// fakeBackend is an in-memory Backend with knobs that make each call fail,
// block or panic. Actions follow the idempotency rule (same player and seq:
// the same event when the ops are equal, seq_reused otherwise) and incr/set
// ops change entities, which is enough for the edge's behaviour.
type fakeBackend struct {
	leader atomic.Bool
	ready  atomic.Bool

	mu         sync.Mutex
	leaderID   string
	leaderAddr string
	worlds     map[string]*fakeWorld
	nodes      []fsm.NodeInfo
	removed    []string
	transfers  int
	acts       int
	forwarded  int // requests seen with edge.HeaderForwarded (set by the test server)
	inflight   int
	maxInfl    int
	lastAction *fsm.Action
	lastRead   store.Consistency

	// Knobs: a non-nil error is returned by the matching call.
	actErr, createErr, entityErr, hashErr, subErr error
	joinErr, removeErr, transferErr, snapErr      error
	rulesErr                                      error
	actHook                                       func(ctx context.Context, a *fsm.Action) (*fsm.Event, bool, error)
	entityHook                                    func(ctx context.Context) error
	panicWorlds                                   bool
	snapIndex                                     uint64
	status                                        store.Status
	sessErr                                       error
	sessions                                      map[string]fsm.SessionInfo
	bans                                          map[string]string  // world/player → reason
	sessHook                                      func() error       // runs first in Session and SessionAcks, unlocked
	ackBatches                                    [][]fsm.SessionAck // every SessionAcks call
}

type fakeWorld struct {
	rules    fsm.Rules
	rulesVer uint64
	seq      uint64
	entities map[string]map[string]fsm.Value
	versions map[string]map[string]uint64
	seen     map[string]fakeRecord // player/seq → record
}

type fakeRecord struct {
	payload string
	ev      *fsm.Event
}

var _ edge.Backend = (*fakeBackend)(nil)

func newFake() *fakeBackend {
	f := &fakeBackend{worlds: make(map[string]*fakeWorld), leaderID: "self", snapIndex: 42,
		status: store.Status{ID: "self", State: "leader", Leader: "self", AppliedIndex: 7, CommitIndex: 7}}
	f.leader.Store(true)
	f.ready.Store(true)
	return f
}

func (f *fakeBackend) setLeader(id, addr string) {
	f.mu.Lock()
	f.leaderID, f.leaderAddr = id, addr
	f.mu.Unlock()
}

func (f *fakeBackend) Act(ctx context.Context, a *fsm.Action) (*fsm.Event, bool, error) {
	f.mu.Lock()
	f.acts++
	f.lastAction = a
	f.inflight++
	f.maxInfl = max(f.maxInfl, f.inflight)
	hook, actErr := f.actHook, f.actErr
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight--
		f.mu.Unlock()
	}()
	if hook != nil {
		return hook(ctx, a)
	}
	if actErr != nil {
		return nil, false, actErr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.worlds[a.World]
	if w == nil {
		return nil, false, fmt.Errorf("%w: %s", fsm.ErrUnknownWorld, a.World)
	}
	key := fmt.Sprintf("%s/%d", a.Player, a.Seq)
	payload := fmt.Sprintf("%+v", a.Ops)
	if r, ok := w.seen[key]; ok {
		if r.payload != payload {
			return nil, false, fmt.Errorf("%w: player %s seq %d", fsm.ErrSeqReused, a.Player, a.Seq)
		}
		return r.ev, true, nil
	}
	w.seq++
	ev := &fsm.Event{World: a.World, Seq: w.seq, Index: w.seq + 10, Time: 1, Player: a.Player,
		ClientSeq: a.Seq, Priority: a.Priority, Status: fsm.StatusApplied}
	for _, o := range a.Ops {
		if w.entities[o.Entity] == nil {
			w.entities[o.Entity] = make(map[string]fsm.Value)
			w.versions[o.Entity] = make(map[string]uint64)
		}
		v := o.Value
		if o.Kind == fsm.OpIncr {
			v = fsm.Int(w.entities[o.Entity][o.Field].Int + o.By)
		}
		w.entities[o.Entity][o.Field] = v
		w.versions[o.Entity][o.Field] = w.seq
		ev.Changes = append(ev.Changes, fsm.Change{Entity: o.Entity, Field: o.Field, Op: o.Kind, Value: v, Version: w.seq})
	}
	w.seen[key] = fakeRecord{payload: payload, ev: ev}
	return ev, false, nil
}

func (f *fakeBackend) CreateWorld(ctx context.Context, id string, rules fsm.Rules) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.createErr != nil {
		return f.createErr
	}
	if f.worlds[id] != nil {
		return fmt.Errorf("%w: %s", fsm.ErrWorldExists, id)
	}
	f.worlds[id] = &fakeWorld{rules: rules, rulesVer: 1, entities: make(map[string]map[string]fsm.Value),
		versions: make(map[string]map[string]uint64), seen: make(map[string]fakeRecord)}
	return nil
}

func (f *fakeBackend) UpdateRules(ctx context.Context, world string, rules fsm.Rules, expect uint64) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rulesErr != nil {
		return 0, f.rulesErr
	}
	w := f.worlds[world]
	if w == nil {
		return 0, fmt.Errorf("%w: %s", fsm.ErrUnknownWorld, world)
	}
	if expect != 0 && expect != w.rulesVer {
		return 0, fmt.Errorf("%w: version %d", fsm.ErrRulesConflict, w.rulesVer)
	}
	w.rules = rules
	w.rulesVer++
	return w.rulesVer, nil
}

func (f *fakeBackend) Worlds() []fsm.WorldInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panicWorlds {
		panic("fake: worlds exploded")
	}
	var out []fsm.WorldInfo
	for id, w := range f.worlds {
		out = append(out, fsm.WorldInfo{ID: id, Rules: w.rules, Seq: w.seq, Entities: len(w.entities), Hash: 0xbeef, RulesVersion: w.rulesVer})
	}
	return out
}

func (f *fakeBackend) Entity(ctx context.Context, world, id string, c store.Consistency) (fsm.EntityView, error) {
	f.mu.Lock()
	f.lastRead = c
	hook, err := f.entityHook, f.entityErr
	f.mu.Unlock()
	if hook != nil {
		if err := hook(ctx); err != nil {
			return fsm.EntityView{}, err
		}
	}
	if err != nil {
		return fsm.EntityView{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.worlds[world]
	if w == nil {
		return fsm.EntityView{}, fmt.Errorf("%w: %s", fsm.ErrUnknownWorld, world)
	}
	e := w.entities[id]
	if e == nil {
		return fsm.EntityView{}, fmt.Errorf("%w: entity %s", fsm.ErrNotFound, id)
	}
	v := fsm.EntityView{ID: id, Seq: w.seq}
	for name, val := range e {
		ver := w.versions[id][name]
		v.Fields = append(v.Fields, fsm.FieldView{Name: name, Policy: fsm.PolicyAuthoritative, Value: val, Version: ver})
		v.Version = max(v.Version, ver)
	}
	return v, nil
}

func (f *fakeBackend) Hash(world string, seq uint64) (fsm.HashPoint, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.hashErr != nil {
		return fsm.HashPoint{}, f.hashErr
	}
	if f.worlds[world] == nil {
		return fsm.HashPoint{}, fmt.Errorf("%w: %s", fsm.ErrUnknownWorld, world)
	}
	return fsm.HashPoint{Seq: max(seq, f.worlds[world].seq), Index: 9, Hash: 0xabc}, nil
}

func (f *fakeBackend) Subscribe(world string, from uint64) (*store.Subscription, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subErr != nil {
		return nil, f.subErr
	}
	return nil, fmt.Errorf("%w: %s", fsm.ErrUnknownWorld, world)
}

func (f *fakeBackend) Status() store.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status
}

func (f *fakeBackend) IsLeader() bool { return f.leader.Load() }
func (f *fakeBackend) Ready() bool    { return f.ready.Load() }

func (f *fakeBackend) Leader() (string, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leaderID, f.leaderAddr
}

func (f *fakeBackend) Join(ctx context.Context, n fsm.NodeInfo) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.joinErr != nil {
		return f.joinErr
	}
	f.nodes = append(f.nodes, n)
	return nil
}

func (f *fakeBackend) Remove(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.removeErr != nil {
		return f.removeErr
	}
	f.removed = append(f.removed, id)
	return nil
}

func (f *fakeBackend) TransferLeadership(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.transfers++
	return f.transferErr
}

func (f *fakeBackend) Snapshot(ctx context.Context) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snapIndex, f.snapErr
}

// set runs fn under the fake's lock, for tests to turn knobs.
func (f *fakeBackend) set(fn func(f *fakeBackend)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}
