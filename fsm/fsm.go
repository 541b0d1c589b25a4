package fsm

import (
	"fmt"
	"maps"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
	"github.com/gsd-dev/gsd/fsm/expr"
)

// Config configures an FSM. All replicas of a group must use equal values.
type Config struct {
	// Window is how many client seqs per player keep their results for
	// idempotent retries (at least 1,024; a multiple of 64).
	Window int
	// HashHistory is how many recent seqs per world keep their state hash.
	HashHistory int
	// Validators run in order on every action before it applies.
	Validators []Validator
}

// DefaultConfig returns the defaults: a 1,024-seq window and 4,096 hashes.
func DefaultConfig() Config {
	return Config{Window: 1024, HashHistory: 4096}
}

// Validate checks the config.
func (c Config) Validate() error {
	if c.Window < 1024 || c.Window%chunkSize != 0 {
		return fmt.Errorf("fsm config: Window must be >= 1024 and a multiple of %d, got %d", chunkSize, c.Window)
	}
	if c.HashHistory < 1 {
		return fmt.Errorf("fsm config: HashHistory must be >= 1, got %d", c.HashHistory)
	}
	return nil
}

// FSM is the state machine of one Raft group. See the package doc for its
// determinism and concurrency contract.
type FSM struct {
	cfg Config

	mu      sync.RWMutex // Apply and Restore write; reads read
	gen     uint64       // snapshot generation; shared objects are copied on write
	applied uint64       // Raft index of the last applied entry
	planBuf []planned    // scratch for plan, reused across actions
	slabs   []worldSlab  // the applying entry's events, per world (slab.go)
	scope   *expr.Scope  // scratch for declared actions' expressions
	worlds  map[string]*world
	nodes   map[string]NodeInfo
	reasons *reasonTable // the reason codes of retained results
	// marks are this replica's own hashes at recent checkpoints, per
	// world: beside the state, never in it (checkpoint.go).
	marks map[string][]mark
	// scratch is Apply's decode space, reused from entry to entry: the
	// actions of an entry live only while Apply applies them (nothing in
	// the state, an event or a validator may keep an *Action). scratchMu
	// is held from decoding to the end of applying.
	scratchMu sync.Mutex
	scratch   decodeScratch
	// view is every world's rules, published copy-on-write by Apply and
	// Restore, so Check plans without f.mu: under load many callers check
	// while Apply waits for the write lock, and an RWMutex then stalls
	// Apply behind readers the scheduler has parked (measured: the store
	// level went from 78k to 120k events/s without that contention).
	// Fair reads it too.
	view atomic.Pointer[map[string]ruleSet]
}

// New returns an empty FSM.
func New(cfg Config) (*FSM, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f := &FSM{cfg: cfg, gen: 1, worlds: make(map[string]*world), nodes: make(map[string]NodeInfo), scope: expr.NewScope(&expr.Input{}), reasons: newReasonTable(), marks: make(map[string][]mark)}
	f.publishView()
	return f, nil
}

// publishView republishes every world's rules for Check. Callers hold f.mu
// for writing (or own f exclusively).
func (f *FSM) publishView() {
	v := make(map[string]ruleSet, len(f.worlds))
	for id, w := range f.worlds {
		v[id] = w.ruleSet()
	}
	f.view.Store(&v)
}

// Apply decodes and applies one log entry. An entry that does not decode
// means replicas would diverge, so Apply panics (the contract of a Raft FSM:
// stop rather than silently differ). The message names the entry's index,
// what failed (an unknown command kind names the kind) and the versions
// this binary reads: an entry from a newer binary means the leader's
// version gate was bypassed, and the fix is to upgrade this node, never to
// skip the entry.
func (f *FSM) Apply(index uint64, data []byte) []Result {
	f.scratchMu.Lock()
	defer f.scratchMu.Unlock()
	b, err := decodeBatchInto(data, &f.scratch)
	if err != nil {
		panic(fmt.Sprintf("gsd/fsm: undecodable log entry at index %d: %v; this binary reads %s: upgrade it to a binary that reads the entry (the leader's version gate should have kept it from being written)", index, err, Supported()))
	}
	return f.apply(index, b)
}

// ApplyBatch applies an already decoded batch (benchmarks, tests and replay
// tools; the Raft path uses Apply).
func (f *FSM) ApplyBatch(index uint64, b *Batch) []Result {
	db := &decodedBatch{Batch: *b, spans: make([][]byte, len(b.Commands))}
	for i := range b.Commands {
		if b.Commands[i].Kind == CmdAction {
			db.spans[i] = EncodeAction(b.Commands[i].Action)
		}
	}
	return f.apply(index, db)
}

func (f *FSM) apply(index uint64, b *decodedBatch) []Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	results := make([]Result, len(b.Commands))
	f.prepareSlabs(b.Commands)
	for i := range b.Commands {
		c := &b.Commands[i]
		switch c.Kind {
		case CmdAction:
			r := &results[i]
			r.Event, r.Duplicate, r.Err = f.applyAction(index, b.Time, c.Action, xxhash.Sum64(b.spans[i]))
		case CmdCreateWorld, CmdCreateWorldSalted:
			results[i] = f.createWorld(index, b.Time, c.World)
		case CmdPutNode:
			// The addresses change; the versions the node reported stay.
			n := *c.Node
			n.Versions = f.nodes[n.ID].Versions
			f.nodes[n.ID] = n
		case CmdRemoveNode:
			delete(f.nodes, c.Node.ID)
		case CmdSessionOpen, CmdSessionAck, CmdSessionResume, CmdSessionClose, CmdSessionData,
			CmdSessionKick, CmdSessionBan, CmdSessionUnban, CmdSessionImport:
			results[i] = f.applySession(c.Kind, b.Time, c.Session)
		case CmdSessionAcks:
			results[i] = f.applyAcks(b.Time, c.Acks)
		case CmdNodeVersions:
			n := f.nodes[c.Node.ID]
			n.ID, n.Versions = c.Node.ID, c.Node.Versions
			f.nodes[n.ID] = n
		case CmdUpdateRules, CmdUpdateRulesEvent:
			results[i] = f.updateRules(index, b.Time, c.Rules, c.Kind == CmdUpdateRulesEvent)
		case CmdSessionExpire:
			results[i] = f.applyExpire(b.Time, c.Expire)
		case CmdCheckpoint:
			results[i] = f.applyCheckpoint(index, c.Check)
		case CmdDeleteWorld:
			results[i] = f.deleteWorld(b.Time, c.Delete)
		case CmdMoveWorld, CmdMoveWorldSalted:
			results[i] = f.moveWorld(c.Move, c.Kind == CmdMoveWorldSalted)
		case CmdImportWorld, CmdImportWorldBack:
			results[i] = f.importWorld(index, b.Time, c.Import, c.Kind == CmdImportWorldBack)
		case CmdDivergence:
			results[i] = f.applyDivergence(index, b.Time, c.Diverge)
		case CmdSalt:
			results[i] = f.applySalt(c.Salt)
		case CmdEraseSalt, CmdEraseSaltKeep:
			results[i] = f.applyEraseSalt(c.Salt, c.Kind == CmdEraseSaltKeep)
		}
	}
	f.releaseSlabs()
	f.applied = index
	return results
}

// createWorld creates s.ID at log index index (its incarnation) and
// leader time now.
func (f *FSM) createWorld(index uint64, now int64, s *WorldSpec) Result {
	if err := checkName("world", s.ID); err != nil {
		return Result{Err: err}
	}
	if _, ok := f.worlds[s.ID]; ok {
		return Result{Err: fmt.Errorf("%w: %s", ErrWorldExists, s.ID)}
	}
	auth, err := s.Rules.compile()
	if err != nil {
		return Result{Err: err}
	}
	w := &world{
		id: s.ID, origin: s.Origin, rules: s.Rules, rulesVersion: 1, auth: auth,
		incarnation: index, created: now,
		inferred: make(map[string]FieldRule),
		entities: make(map[string]*entity),
		players:  make(map[string]*player),
		sessions: make(map[string]*session),
		data:     make(map[string]map[string]Value),
		bans:     make(map[string]string),
		dataVer:  make(map[string]uint64),
	}
	if s.Salted {
		w.salts = make(map[string]saltEntry)
	}
	f.worlds[s.ID] = w
	f.publishView()
	return Result{}
}

// planned is one op resolved against the world before anything mutates.
type planned struct {
	op    *Op
	rule  FieldRule
	value Value // coerced
	infer bool  // the op introduces an inferred rule
}

// applyAction applies one action: its event, whether it repeats an
// earlier one (the event is then that one's), or an error. Not a Result:
// Apply fills the entry's results in place, and a Result is 112 bytes to
// build and copy per action, on every replica.
func (f *FSM) applyAction(index uint64, now int64, a *Action, payload uint64) (*Event, bool, error) {
	w, err := f.writable(a.World)
	if err != nil {
		return nil, false, err
	}
	p := w.players[a.Player]
	// A seq above the player's newest was never recorded: no lookup (the
	// common case, and the window's slot is usually a cache miss).
	if p != nil && a.Seq <= p.maxSeq {
		if r, ok := p.lookup(a.Seq, f.cfg.Window); ok {
			if r.payload != payload {
				return nil, false, fmt.Errorf("%w: player %s seq %d", ErrSeqReused, a.Player, a.Seq)
			}
			return &Event{
				World: a.World, Seq: r.worldSeq, Player: a.Player, ClientSeq: a.Seq,
				Priority: a.Priority, Status: r.status, Reason: f.reasons.name(r.reason),
			}, true, nil
		}
		if p.maxSeq >= uint64(f.cfg.Window) && a.Seq <= p.maxSeq-uint64(f.cfg.Window) {
			return nil, false, fmt.Errorf("%w: player %s seq %d, newest %d", ErrSeqExpired, a.Player, a.Seq, p.maxSeq)
		}
	}
	if w.unsalted(a.Player) {
		// Its leaf needs the salt (salt.go): refused before it takes a seq.
		return nil, false, fmt.Errorf("%w: player %s in world %s", ErrUnsalted, a.Player, a.World)
	}

	w.seq++
	w.index = index
	now = max(now, w.clock)
	w.clock = now
	var (
		ev    *Event
		spare []Change
	)
	if len(a.Ops) == 1 {
		// Most actions have one op: the event and its change in one
		// element of the entry's slab for the world (slab.go).
		ec := f.takeEvent(a.World)
		ev, spare = &ec.ev, ec.ch[:0]
	} else {
		ev = &Event{}
	}
	*ev = Event{World: a.World, Seq: w.seq, Index: index, Time: now, Player: a.Player, ClientSeq: a.Seq, Priority: a.Priority}
	f.decide(w, a, now, ev, spare)
	if w.isSalted() {
		ev.Salted = w.salting(ev)
	}

	if p == nil {
		p = &player{gen: f.gen}
		w.players[a.Player] = p
	} else if p.gen != f.gen {
		p = p.clone(f.gen)
		w.players[a.Player] = p
	}
	p.put(record{seq: a.Seq, payload: payload, worldSeq: ev.Seq, status: ev.Status, reason: f.reasons.id(ev.Reason)}, f.cfg.Window, f.gen)
	w.recordHash(f.cfg.HashHistory)
	return ev, false, nil
}

// decide fills ev: rejected, conflict, or applied with its changes. spare,
// when its capacity suffices, holds the changes (a rejected event keeps nil
// changes).
func (f *FSM) decide(w *world, a *Action, now int64, ev *Event, spare []Change) {
	if err := a.Validate(); err != nil {
		ev.Status, ev.Reason = StatusRejected, Code(err)
		return
	}
	// The edge checks bans before proposing, but a ban committed after its
	// check would let the action through: the FSM has the last word, in log
	// order, on every replica alike.
	if _, banned := w.bans[a.Player]; banned {
		ev.Status, ev.Reason = StatusRejected, CodeBanned
		return
	}
	if a.Name != "" {
		// A declared action: its role may invoke it, its params type-check,
		// its preconditions hold; then its effects are the ops, and apply
		// as a raw action's would.
		ca, err := w.auth.lookup(a)
		if err != nil {
			ev.Status, ev.Reason = StatusRejected, Code(err)
			return
		}
		ops, reason := ca.expand(w, a, now, f.scope) // Apply holds f.mu exclusively
		if reason != "" {
			ev.Status, ev.Reason = StatusRejected, reason
			return
		}
		x := *a
		x.Ops = ops
		a = &x
	} else if err := w.auth.checkRaw(w, a); err != nil {
		ev.Status, ev.Reason = StatusRejected, Code(err)
		return
	}
	plan, err := plan(w.ruleSet(), a, f.planBuf)
	if err != nil {
		ev.Status, ev.Reason = StatusRejected, Code(err)
		return
	}
	f.planBuf = plan[:0] // Apply holds f.mu exclusively: the buffer is ours
	if conflicts := checkExpects(w, a, spare); len(conflicts) > 0 {
		ev.Status, ev.Changes = StatusConflict, conflicts
		return
	}
	for _, v := range f.validators() {
		if err := v.Validate(worldView{w}, a, now); err != nil {
			ev.Status, ev.Reason = StatusRejected, rejectionCode(err)
			return
		}
	}
	ev.Status = StatusApplied
	ev.Changes = spare
	if cap(spare) < len(plan) {
		ev.Changes = make([]Change, 0, len(plan))
	}
	inferred := false
	for i := range plan {
		pl := &plan[i]
		if pl.infer {
			if !inferred {
				// Copy on write: Check reads the old map without f.mu.
				w.inferred, inferred = maps.Clone(w.inferred), true
			}
			w.inferred[pl.op.Field] = pl.rule
		}
		ev.Changes = append(ev.Changes, f.mutate(w, pl))
	}
	if inferred {
		f.publishView()
	}
}

// plan resolves each op's rule and value against the world's rules, without
// mutating: an op that its field's policy or type refuses rejects the whole
// action.
// buf is reused scratch space (Apply passes one buffer for all actions).
func plan(w ruleSet, a *Action, buf []planned) ([]planned, error) {
	if cap(buf) < len(a.Ops) {
		buf = make([]planned, len(a.Ops))
	}
	plan := buf[:len(a.Ops)]
	for i := range a.Ops {
		o := &a.Ops[i]
		pl := planned{op: o}
		if o.Kind == OpDelete {
			plan[i] = pl
			continue
		}
		rule, ok := w.rule(o.Field)
		if !ok {
			// An earlier op of this action may have introduced it.
			for j := 0; j < i; j++ {
				if plan[j].infer && a.Ops[j].Field == o.Field {
					rule, ok = plan[j].rule, true
				}
			}
		}
		if !ok {
			if w.strict {
				return nil, fmt.Errorf("%w: %s", ErrUndeclaredField, o.Field)
			}
			rule = FieldRule{Policy: inferPolicy(o.Kind), Type: o.Value.Kind}
			if rule.Policy == PolicyCounter {
				rule.Type = KindInt
			}
			pl.infer = true
		}
		if !rule.Policy.accepts(o.Kind) {
			return nil, fmt.Errorf("%w: %s on %s field %s", ErrPolicyViolation, o.Kind, rule.Policy, o.Field)
		}
		if o.Kind != OpIncr {
			v, err := coerce(o.Value, rule.Type)
			if err != nil {
				return nil, fmt.Errorf("field %s: %w", o.Field, err)
			}
			pl.value = v
		}
		pl.rule = rule
		plan[i] = pl
	}
	return plan, nil
}

// checkExpects compares every op's expect with the state before the action
// and returns the current state of each field (or entity) that fails,
// appended to out[:0].
func checkExpects(w *world, a *Action, out []Change) []Change {
	out = out[:0]
	for i := range a.Ops {
		o := &a.Ops[i]
		if o.Expect.Mode == ExpectNone {
			continue
		}
		e := w.entities[o.Entity]
		var (
			exists  bool
			version uint64
			fl      *field
		)
		if o.Kind == OpDelete {
			if e != nil {
				exists, version = true, e.version()
			}
		} else if e != nil {
			if fl = e.get(o.Field); fl != nil {
				exists, version = true, fl.version
			}
		}
		ok := (o.Expect.Mode == ExpectAbsent && !exists) ||
			(o.Expect.Mode == ExpectVersion && exists && version == o.Expect.Version)
		if ok {
			continue
		}
		c := Change{Entity: o.Entity, Field: o.Field, Version: version, Exists: exists}
		if fl != nil {
			if fl.policy == PolicySet {
				c.Set = fl.elements()
			} else {
				c.Value = fl.current()
			}
		}
		out = append(out, c)
	}
	return out
}

// mutEntity returns the entity for writing, creating it or copying it away
// from a snapshot that shares it.
func (f *FSM) mutEntity(w *world, id string) *entity {
	e := w.entities[id]
	switch {
	case e == nil:
		e = &entity{gen: f.gen}
		w.entities[id] = e
	case e.gen != f.gen:
		c := &entity{gen: f.gen, fields: append([]*field(nil), e.fields...)}
		w.entities[id] = c
		e = c
	}
	return e
}

// mutField returns the named field of e for writing, creating it from rule.
func (f *FSM) mutField(e *entity, name string, rule FieldRule) *field {
	i, ok := e.find(name)
	if !ok {
		fl := &field{gen: f.gen, name: name, policy: rule.Policy, kind: rule.Type}
		e.fields = append(e.fields, nil)
		copy(e.fields[i+1:], e.fields[i:])
		e.fields[i] = fl
		return fl
	}
	if fl := e.fields[i]; fl.gen != f.gen {
		e.fields[i] = fl.clone(f.gen)
	}
	return e.fields[i]
}

// mutate applies one planned op and returns its change.
func (f *FSM) mutate(w *world, pl *planned) Change {
	o := pl.op
	if o.Kind == OpDelete {
		c := Change{Entity: o.Entity, Op: OpDelete}
		if e := w.entities[o.Entity]; e != nil {
			c.Version = e.version()
			w.hash -= e.hash()
			delete(w.entities, o.Entity)
		}
		return c
	}
	e := f.mutEntity(w, o.Entity)
	fl := f.mutField(e, o.Field, pl.rule)
	old := fl.hash
	changed := fl.version == 0 // a new field always takes the action's seq
	c := Change{Entity: o.Entity, Field: o.Field, Op: o.Kind}
	switch o.Kind {
	case OpIncr:
		fl.counter.add(w.origin, o.By)
		fl.total += o.By
		changed = true
		c.Value = fl.current()
	case OpSet:
		switch {
		case fl.version == 0,
			fl.policy == PolicyAuthoritative,
			fl.policy == PolicyMax && pl.value.Compare(fl.val) > 0,
			fl.policy == PolicyMin && pl.value.Compare(fl.val) < 0:
			fl.val = pl.value
			changed = true
		}
		c.Value = fl.val
	case OpAdd:
		if fl.set == nil {
			fl.set = newValueSet()
		}
		if !fl.set.Contains(pl.value) {
			fl.setSum += elementHash(pl.value)
			changed = true
		}
		fl.set.Add(w.origin, pl.value)
		c.Value = pl.value
	case OpRemove:
		if fl.set == nil {
			fl.set = newValueSet()
		}
		if fl.set.Remove(pl.value) {
			fl.setSum -= elementHash(pl.value)
			changed = true
		}
		c.Value = pl.value
	}
	if changed {
		fl.version = w.seq
	}
	fl.rehash(o.Entity)
	w.hash += fl.hash - old
	c.Version = fl.version
	return c
}

// sortedKeys returns a map's keys in order, for deterministic output.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
