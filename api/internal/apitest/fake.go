package apitest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
)

// Fake is an in-memory Backend with knobs that make each call fail,
// block or panic. Actions follow the idempotency rule (same player and seq:
// the same event when the ops are equal, seq_reused otherwise) and incr/set
// ops change entities, which is enough for the edge's behaviour.
type Fake struct {
	LeaderFlag atomic.Bool
	ReadyFlag  atomic.Bool

	Mu         sync.Mutex
	LeaderID   string
	LeaderAddr string
	WorldMap   map[string]*FakeWorld
	Nodes      []fsm.NodeInfo
	Removed    []string
	Transfers  int
	Acts       int
	Forwarded  int // requests seen with edge.HeaderForwarded (set by the test server)
	Inflight   int
	MaxInfl    int
	LastAction *fsm.Action
	LastRead   store.Consistency

	// Held are worlds a group of the node holds fenced, not listed
	// (edge.HeldWorlds).
	Held map[string]fsm.WorldInfo

	// Knobs: a non-nil error is returned by the matching call.
	ActErr, CreateErr, EntityErr, HashErr, SubErr error
	JoinErr, RemoveErr, TransferErr, SnapErr      error
	RulesErr                                      error
	ActHook                                       func(ctx context.Context, a *fsm.Action) (*fsm.Event, bool, error)
	EntityHook                                    func(ctx context.Context) error
	PanicWorlds                                   bool
	SnapIndex                                     uint64
	StatusVal                                     store.Status
	SessErr                                       error
	SessionMap                                    map[string]fsm.SessionInfo
	BanMap                                        map[string]string  // world/player → reason
	SessHook                                      func() error       // runs first in Session and SessionAcks, unlocked
	AckBatches                                    [][]fsm.SessionAck // every SessionAcks call
	Deleted                                       []uint64           // every DeleteWorld call's incarnation
}

type FakeWorld struct {
	Rules    fsm.Rules
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

var _ edge.Backend = (*Fake)(nil)

func NewFake() *Fake {
	f := &Fake{WorldMap: make(map[string]*FakeWorld), LeaderID: "self", SnapIndex: 42,
		StatusVal: store.Status{ID: "self", State: "leader", Leader: "self", AppliedIndex: 7, CommitIndex: 7}}
	f.LeaderFlag.Store(true)
	f.ReadyFlag.Store(true)
	return f
}

func (f *Fake) SetLeader(id, addr string) {
	f.Mu.Lock()
	f.LeaderID, f.LeaderAddr = id, addr
	f.Mu.Unlock()
}

func (f *Fake) Act(ctx context.Context, a *fsm.Action) (*fsm.Event, bool, error) {
	f.Mu.Lock()
	f.Acts++
	f.LastAction = a
	f.Inflight++
	f.MaxInfl = max(f.MaxInfl, f.Inflight)
	hook, actErr := f.ActHook, f.ActErr
	f.Mu.Unlock()
	defer func() {
		f.Mu.Lock()
		f.Inflight--
		f.Mu.Unlock()
	}()
	if hook != nil {
		return hook(ctx, a)
	}
	if actErr != nil {
		return nil, false, actErr
	}
	f.Mu.Lock()
	defer f.Mu.Unlock()
	w := f.WorldMap[a.World]
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

func (f *Fake) CreateWorld(ctx context.Context, id string, rules fsm.Rules) error {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	if f.CreateErr != nil {
		return f.CreateErr
	}
	if f.WorldMap[id] != nil {
		return fmt.Errorf("%w: %s", fsm.ErrWorldExists, id)
	}
	f.WorldMap[id] = &FakeWorld{Rules: rules, rulesVer: 1, entities: make(map[string]map[string]fsm.Value),
		versions: make(map[string]map[string]uint64), seen: make(map[string]fakeRecord)}
	return nil
}

func (f *Fake) UpdateRules(ctx context.Context, world string, rules fsm.Rules, expect uint64) (uint64, error) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	if f.RulesErr != nil {
		return 0, f.RulesErr
	}
	w := f.WorldMap[world]
	if w == nil {
		return 0, fmt.Errorf("%w: %s", fsm.ErrUnknownWorld, world)
	}
	if expect != 0 && expect != w.rulesVer {
		return 0, fmt.Errorf("%w: version %d", fsm.ErrRulesConflict, w.rulesVer)
	}
	w.Rules = rules
	w.rulesVer++
	return w.rulesVer, nil
}

// HeldWorld returns a world of Held (edge.HeldWorlds).
func (f *Fake) HeldWorld(id string) (fsm.WorldInfo, bool) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	w, ok := f.Held[id]
	return w, ok
}

func (f *Fake) Worlds() []fsm.WorldInfo {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	if f.PanicWorlds {
		panic("fake: worlds exploded")
	}
	var out []fsm.WorldInfo
	for id, w := range f.WorldMap {
		out = append(out, fsm.WorldInfo{ID: id, Rules: w.Rules, Seq: w.seq, Entities: len(w.entities), Hash: 0xbeef, RulesVersion: w.rulesVer})
	}
	return out
}

func (f *Fake) World(id string) (fsm.WorldInfo, error) {
	for _, w := range f.Worlds() {
		if w.ID == id {
			return w, nil
		}
	}
	return fsm.WorldInfo{}, fmt.Errorf("%w: %s", fsm.ErrUnknownWorld, id)
}

// DeleteWorld removes a world and records the incarnation asked for (not
// checked: the fake's worlds have none).
func (f *Fake) DeleteWorld(ctx context.Context, world string, incarnation uint64) (fsm.WorldInfo, error) {
	wi, err := f.World(world)
	if err != nil {
		return wi, err
	}
	f.Mu.Lock()
	delete(f.WorldMap, world)
	f.Deleted = append(f.Deleted, incarnation)
	f.Mu.Unlock()
	return wi, nil
}

func (f *Fake) Entity(ctx context.Context, world, id string, c store.Consistency) (fsm.EntityView, error) {
	f.Mu.Lock()
	f.LastRead = c
	hook, err := f.EntityHook, f.EntityErr
	f.Mu.Unlock()
	if hook != nil {
		if err := hook(ctx); err != nil {
			return fsm.EntityView{}, err
		}
	}
	if err != nil {
		return fsm.EntityView{}, err
	}
	f.Mu.Lock()
	defer f.Mu.Unlock()
	w := f.WorldMap[world]
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

func (f *Fake) Hash(world string, seq uint64) (fsm.HashPoint, error) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	if f.HashErr != nil {
		return fsm.HashPoint{}, f.HashErr
	}
	if f.WorldMap[world] == nil {
		return fsm.HashPoint{}, fmt.Errorf("%w: %s", fsm.ErrUnknownWorld, world)
	}
	return fsm.HashPoint{Seq: max(seq, f.WorldMap[world].seq), Index: 9, Hash: 0xabc}, nil
}

func (f *Fake) Subscribe(world string, from uint64) (*store.Subscription, error) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	if f.SubErr != nil {
		return nil, f.SubErr
	}
	return nil, fmt.Errorf("%w: %s", fsm.ErrUnknownWorld, world)
}

func (f *Fake) Status() store.Status {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	return f.StatusVal
}

func (f *Fake) IsLeader() bool { return f.LeaderFlag.Load() }
func (f *Fake) Ready() bool    { return f.ReadyFlag.Load() }

func (f *Fake) Leader() (string, string) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	return f.LeaderID, f.LeaderAddr
}

func (f *Fake) Join(ctx context.Context, n fsm.NodeInfo) error {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	if f.JoinErr != nil {
		return f.JoinErr
	}
	f.Nodes = append(f.Nodes, n)
	return nil
}

func (f *Fake) Remove(ctx context.Context, id string) error {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	if f.RemoveErr != nil {
		return f.RemoveErr
	}
	f.Removed = append(f.Removed, id)
	return nil
}

func (f *Fake) TransferLeadership(ctx context.Context) error {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	f.Transfers++
	return f.TransferErr
}

func (f *Fake) Snapshot(ctx context.Context) (uint64, error) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	return f.SnapIndex, f.SnapErr
}

// Set runs fn under the fake's lock, for tests to turn knobs.
func (f *Fake) Set(fn func(f *Fake)) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	fn(f)
}

// Session implements Backend for the fake: opens succeed (acked at the
// world's seq), other commands need an open session.
func (f *Fake) Session(ctx context.Context, kind fsm.CmdKind, c *fsm.SessionCmd) (fsm.SessionInfo, error) {
	f.Mu.Lock()
	hook := f.SessHook
	f.Mu.Unlock()
	if hook != nil {
		if err := hook(); err != nil {
			return fsm.SessionInfo{}, err
		}
	}
	f.Mu.Lock()
	defer f.Mu.Unlock()
	if f.SessErr != nil {
		return fsm.SessionInfo{}, f.SessErr
	}
	w := f.WorldMap[c.World]
	if w == nil {
		return fsm.SessionInfo{}, fmt.Errorf("%w: %s", fsm.ErrUnknownWorld, c.World)
	}
	if f.SessionMap == nil {
		f.SessionMap = make(map[string]fsm.SessionInfo)
	}
	s, ok := f.SessionMap[c.ID]
	switch {
	case kind == fsm.CmdSessionImport:
		return fsm.SessionInfo{World: c.World, Player: c.Player}, nil
	case kind == fsm.CmdSessionOpen:
		s = fsm.SessionInfo{World: c.World, ID: c.ID, Player: c.Player, Acked: w.seq}
	case !ok:
		return fsm.SessionInfo{}, fmt.Errorf("%w: %s", fsm.ErrSessionUnknown, c.ID)
	case kind == fsm.CmdSessionAck:
		s.Acked = max(s.Acked, c.Seq)
	case kind == fsm.CmdSessionClose:
		delete(f.SessionMap, c.ID)
		return s, nil
	}
	f.SessionMap[c.ID] = s
	return s, nil
}

func (f *Fake) SessionInfo(world, id string) (fsm.SessionInfo, error) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	s, ok := f.SessionMap[id]
	if !ok || s.World != world {
		return fsm.SessionInfo{}, fmt.Errorf("%w: %s", fsm.ErrSessionUnknown, id)
	}
	return s, nil
}

func (f *Fake) Sessions(world string) ([]fsm.SessionInfo, error) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	if f.WorldMap[world] == nil {
		return nil, fmt.Errorf("%w: %s", fsm.ErrUnknownWorld, world)
	}
	var out []fsm.SessionInfo
	for _, s := range f.SessionMap {
		if s.World == world {
			out = append(out, s)
		}
	}
	return out, nil
}

func (f *Fake) Banned(world, player string) (string, bool) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	r, ok := f.BanMap[world+"/"+player]
	return r, ok
}

func (f *Fake) Bans(world string) ([]fsm.Ban, error) {
	return nil, fmt.Errorf("%w: %s", fsm.ErrUnknownWorld, world)
}

func (f *Fake) PlayerData(world string) (map[string]map[string]fsm.Value, error) {
	return nil, fmt.Errorf("%w: %s", fsm.ErrUnknownWorld, world)
}

// SessionAcks implements Backend for the fake: like Session's ack, for
// each listed session that is open; every call is recorded in ackBatches.
func (f *Fake) SessionAcks(ctx context.Context, acks []fsm.SessionAck) (int, error) {
	f.Mu.Lock()
	hook := f.SessHook
	f.Mu.Unlock()
	if hook != nil {
		if err := hook(); err != nil {
			return 0, err
		}
	}
	f.Mu.Lock()
	defer f.Mu.Unlock()
	f.AckBatches = append(f.AckBatches, append([]fsm.SessionAck(nil), acks...))
	if f.SessErr != nil {
		return 0, f.SessErr
	}
	n := 0
	for _, a := range acks {
		s, ok := f.SessionMap[a.ID]
		if !ok || s.World != a.World {
			continue
		}
		s.Acked = max(s.Acked, a.Seq)
		f.SessionMap[a.ID] = s
		n++
	}
	return n, nil
}
