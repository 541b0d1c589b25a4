package fsm

import (
	"encoding/binary"
	"math"
	"sort"
	"sync"

	"github.com/cespare/xxhash/v2"
	"github.com/gsd-dev/gsd/fsm/crdt"
)

// field is one field of one entity. Which of val, counter and set is used
// depends on policy.
type field struct {
	gen     uint64 // snapshot generation that owns this copy
	name    string
	policy  Policy
	kind    Kind // value type; for sets the element type
	version uint64
	val     Value
	counter counter
	total   int64 // counter.value(), kept so reads and hashing skip its entries
	set     *crdt.ORSet[Value]
	setSum  uint64 // sum of element hashes, so a set hashes without sorting
	hash    uint64 // this field's contribution to the world hash
}

func (f *field) clone(gen uint64) *field {
	c := *f
	c.gen = gen
	if f.policy == PolicyCounter {
		c.counter = f.counter.clone()
	}
	if f.set != nil {
		c.set = f.set.Clone()
	}
	return &c
}

// current returns the field's plain value (a counter's total; null for sets).
func (f *field) current() Value {
	if f.policy == PolicyCounter {
		return Int(f.total)
	}
	return f.val
}

// elements returns a set field's elements, sorted.
func (f *field) elements() []Value {
	if f.set == nil {
		return nil
	}
	els := f.set.Elements()
	sort.Slice(els, func(i, j int) bool { return els[i].Compare(els[j]) < 0 })
	return els
}

// rehash recomputes the field's contribution from its entity id, name,
// policy, value (or set sum) and version.
func (f *field) rehash(entity string) {
	var buf [64]byte
	b := buf[:0]
	b = binary.AppendUvarint(b, uint64(len(entity)))
	b = append(b, entity...)
	b = binary.AppendUvarint(b, uint64(len(f.name)))
	b = append(b, f.name...)
	b = append(b, byte(f.policy), byte(f.kind))
	b = binary.LittleEndian.AppendUint64(b, f.version)
	if f.policy == PolicySet {
		b = binary.LittleEndian.AppendUint64(b, f.setSum)
	} else {
		b = appendValue(b, f.current())
	}
	f.hash = xxhash.Sum64(b)
}

func appendValue(b []byte, v Value) []byte {
	b = append(b, byte(v.Kind))
	switch v.Kind {
	case KindInt, KindBool:
		b = binary.LittleEndian.AppendUint64(b, uint64(v.Int))
	case KindFloat:
		f := v.Float
		if f == 0 {
			// -0 == +0, so they are one Value (one set element, one map
			// key): they must hash alike, or a set's setSum drifts from
			// its elements and Restore refuses the snapshot.
			f = 0
		}
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
	case KindString:
		b = binary.AppendUvarint(b, uint64(len(v.Str)))
		b = append(b, v.Str...)
	}
	return b
}

func elementHash(v Value) uint64 {
	var buf [32]byte
	return xxhash.Sum64(appendValue(buf[:0], v))
}

// entity holds its fields sorted by name; entities are small, so a sorted
// slice beats a map and gives deterministic order for free.
type entity struct {
	gen    uint64 // snapshot generation that owns this copy
	fields []*field
}

func (e *entity) find(name string) (int, bool) {
	i := sort.Search(len(e.fields), func(i int) bool { return e.fields[i].name >= name })
	return i, i < len(e.fields) && e.fields[i].name == name
}

func (e *entity) get(name string) *field {
	if i, ok := e.find(name); ok {
		return e.fields[i]
	}
	return nil
}

func (e *entity) version() uint64 {
	var v uint64
	for _, f := range e.fields {
		v = max(v, f.version)
	}
	return v
}

func (e *entity) hash() uint64 {
	var h uint64
	for _, f := range e.fields {
		h += f.hash
	}
	return h
}

// record is one retained idempotency result. It holds no pointer (the
// reason is an id in the FSM's reasonTable), so a player's window, 1,024
// records by default, is memory the garbage collector never scans: at
// 10,000 players per world that is 320 MB per replica it would otherwise
// walk on every cycle.
type record struct {
	seq      uint64 // client seq; 0 = empty slot
	payload  uint64 // hash of the encoded action
	worldSeq uint64
	status   Status
	reason   uint32 // reasonTable id; 0 = no reason
}

// reasonTable interns the reason codes of retained results: the codes of
// fsm errors and of validators, a small vocabulary. Ids are assigned in
// the order codes first appear on this replica, so they differ between
// replicas and never leave the FSM: snapshots and events carry the codes.
// Its own lock lets a snapshot being written read it while Apply goes on;
// only rejected actions and their retries reach it.
type reasonTable struct {
	mu    sync.Mutex
	ids   map[string]uint32
	names []string // names[id-1]
}

func newReasonTable() *reasonTable { return &reasonTable{ids: make(map[string]uint32)} }

// id returns code's id, assigning the next one to a new code.
func (t *reasonTable) id(code string) uint32 {
	if code == "" {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	id, ok := t.ids[code]
	if !ok {
		t.names = append(t.names, code)
		id = uint32(len(t.names))
		t.ids[code] = id
	}
	return id
}

// name returns the code of id.
func (t *reasonTable) name(id uint32) string {
	if id == 0 {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.names[id-1]
}

// chunkSize records make one copy-on-write chunk of a player's window.
const chunkSize = 64

type chunk [chunkSize]record

// chunkRef is one chunk of a window and the snapshot generation that owns
// it, side by side: a write reads both.
type chunkRef struct {
	c   *chunk
	gen uint64
}

// pendingSize is how many of a player's newest records wait in the player
// itself before they move to their chunks. A window's chunks are cold
// memory (at 10,000 players, tens of MB per replica, written at random):
// one record written there per action was a cache and TLB miss per action
// on every replica, the FSM's largest single cost in the store-level
// suite. Pending records sit beside the player's header, which the action
// has just read; a flush writes up to pendingSize records, usually
// adjacent, into their chunk at once.
const pendingSize = 8

// player keeps the idempotency window of one player in one world: a ring of
// the results of its last window client seqs, in chunks so that a snapshot
// only forces copying the chunk being written. The newest records wait in
// pending, at most one per slot, and stand for their slots: a chunk's
// record of a slot that pending holds is stale.
type player struct {
	// What every put reads comes first, within a cache line or two of
	// gen and maxSeq, which the action has read already.
	gen     uint64
	maxSeq  uint64
	n       uint32              // records in pending
	slots   [pendingSize]uint32 // pending[i]'s slot in the window
	chunks  []chunkRef
	pending [pendingSize]record
}

// clone copies p for generation gen: pending is copied with the struct,
// the chunks stay shared until written.
func (p *player) clone(gen uint64) *player {
	c := *p
	c.gen = gen
	c.chunks = append([]chunkRef(nil), p.chunks...)
	return &c
}

func (p *player) slot(seq uint64, window int) (ci, si int) {
	i := int(seq % uint64(window))
	return i / chunkSize, i % chunkSize
}

// pendingAt returns the index in pending of the record for slot, or -1.
func (p *player) pendingAt(slot uint32) int {
	for i := range p.n {
		if p.slots[i] == slot {
			return int(i)
		}
	}
	return -1
}

// lookup returns the record of seq, if retained.
func (p *player) lookup(seq uint64, window int) (record, bool) {
	if i := p.pendingAt(uint32(seq % uint64(window))); i >= 0 {
		r := p.pending[i]
		return r, r.seq == seq && seq != 0
	}
	ci, si := p.slot(seq, window)
	if ci >= len(p.chunks) || p.chunks[ci].c == nil {
		return record{}, false
	}
	r := p.chunks[ci].c[si]
	return r, r.seq == seq && seq != 0 // seq 0 marks an empty slot
}

// put records r in its slot (in pending; a full pending moves to the
// chunks first). g is the generation that owns p.
func (p *player) put(r record, window int, g uint64) {
	if r.seq == 0 {
		// Seq 0 (a malformed action) is the empty-slot marker: retaining it
		// would make retries duplicates here but not after a Restore (which
		// skips empty slots), and replicas would diverge.
		return
	}
	p.maxSeq = max(p.maxSeq, r.seq)
	slot := uint32(r.seq % uint64(window))
	if i := p.pendingAt(slot); i >= 0 {
		p.pending[i] = r
		return
	}
	if p.n == pendingSize {
		p.flush(window, g)
	}
	p.pending[p.n], p.slots[p.n] = r, slot
	p.n++
}

// flush moves pending records to their chunks, copying a chunk first if a
// snapshot shares it.
func (p *player) flush(window int, g uint64) {
	if len(p.chunks) == 0 {
		p.chunks = make([]chunkRef, window/chunkSize)
	}
	for i := range p.n {
		ci, si := int(p.slots[i])/chunkSize, int(p.slots[i])%chunkSize
		ref := &p.chunks[ci]
		switch {
		case ref.c == nil:
			ref.c, ref.gen = new(chunk), g
		case ref.gen != g:
			c := *ref.c
			ref.c, ref.gen = &c, g
		}
		ref.c[si] = p.pending[i]
	}
	p.pending, p.slots, p.n = [pendingSize]record{}, [pendingSize]uint32{}, 0
}

// records calls fn with every retained record in slot order, pending ones
// in place of the chunk records of their slots.
func (p *player) records(fn func(r record)) {
	var order [pendingSize]uint32 // pending indexes by slot
	for i := range p.n {
		j := i
		for ; j > 0 && p.slots[order[j-1]] > p.slots[i]; j-- {
			order[j] = order[j-1]
		}
		order[j] = i
	}
	next := uint32(0) // into order
	for ci, ref := range p.chunks {
		if ref.c == nil {
			continue
		}
		for si, r := range ref.c {
			slot := uint32(ci*chunkSize + si)
			for next < p.n && p.slots[order[next]] < slot {
				fn(p.pending[order[next]])
				next++
			}
			if next < p.n && p.slots[order[next]] == slot {
				fn(p.pending[order[next]])
				next++
				continue
			}
			if r.seq != 0 {
				fn(r)
			}
		}
	}
	for ; next < p.n; next++ {
		fn(p.pending[order[next]])
	}
}

// hashPoint is the world hash after the event with seq Seq.
type hashPoint struct {
	seq, index, hash uint64
}

// world is one world's state.
type world struct {
	id       string
	origin   string
	rules    Rules
	inferred map[string]FieldRule // policies and types learned from first ops; replaced, never mutated
	seq      uint64
	index    uint64 // Raft index of the last event
	hash     uint64 // sum of the entities' field hashes
	meta     uint64 // sum of the sessions', bans' and data's terms (sessionhash.go)
	entities map[string]*entity
	players  map[string]*player
	history  []hashPoint                 // ring of the last len(history) points, by seq
	sessions map[string]*session         // by id; immutable values
	data     map[string]map[string]Value // player → critical data; inner maps immutable
	bans     map[string]string           // banned player → reason
	dataVer  map[string]uint64           // player → data version (playerdata.go); not hashed
	dataSum  uint64                      // sum of dataVer's values, wrapping (PlayerDataStamp)

	// rulesVersion is 1 at creation and rises with each rules update;
	// rulesSum is the rules' term of the state hash (rules_update.go).
	rulesVersion uint64
	rulesSum     uint64
	// auth is the rules' actions compiled, roles and write access, built
	// once per rules version (authority.go); nil: no authority rules.
	auth *authority
	// clock is the latest leader time an action of the world was applied
	// at: a batch's time is clamped to it, so the world's time never goes
	// backwards (it can across a failover, between two leaders' clocks).
	clock int64
	// incarnation is the log index of the world's creation and created
	// its leader time (lifecycle.go); 0 in a world restored from a
	// snapshot older than format 6.
	incarnation uint64
	created     int64
	// moved is the world's fence once it moved to another shard (nil:
	// it lives here); imported is the log index of its import on this
	// group (0: created here). migrate.go.
	moved    *Fence
	imported uint64
	// salts is the salt table of a world whose audit leaves are salted
	// (salt.go), by player; nil: leaves of version 1.
	salts map[string]saltEntry
	// erased are the digests of the world's erased salts that were kept
	// (salt_erased.go), in the order of their erasures.
	erased []ErasedSalt
}

// ruleSet is what plan needs of a world: its declared and inferred rules.
// Both maps are immutable once in a ruleSet, so Check can read them without
// the FSM's lock (see FSM.view).
type ruleSet struct {
	declared map[string]FieldRule
	inferred map[string]FieldRule
	strict   bool
	fair     Fairness
	auth     *authority
	moved    *Fence
	salted   bool // the world's audit leaves are salted (salt.go)
}

func (w *world) ruleSet() ruleSet {
	return ruleSet{declared: w.rules.Fields, inferred: w.inferred, strict: w.rules.Strict, fair: w.rules.Fair, auth: w.auth, moved: w.moved, salted: w.isSalted()}
}

// rule returns the effective rule of a field: declared, else inferred.
func (r ruleSet) rule(name string) (FieldRule, bool) {
	if fr, ok := r.declared[name]; ok {
		return fr, true
	}
	fr, ok := r.inferred[name]
	return fr, ok
}

func (w *world) recordHash(n int) {
	if len(w.history) != n {
		w.history = make([]hashPoint, n)
	}
	w.history[w.seq%uint64(n)] = hashPoint{seq: w.seq, index: w.index, hash: w.stateHash()}
}

func newValueSet() *crdt.ORSet[Value] { return crdt.NewORSet[Value]() }
