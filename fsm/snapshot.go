package fsm

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/gsd-dev/gsd/fsm/crdt"
	"github.com/gsd-dev/gsd/wire"
)

// snapMagic starts every snapshot; the last byte is the format version.
// Version 2 added sessions and player data to each world, version 3 the
// sessions' node and kick reason and the world's bans, version 4 the nodes'
// versions and each world's rules version, version 5 each world's clock
// (the latest leader time of its actions), version 6 each world's
// incarnation and creation time (lifecycle.go), version 7 each world's
// fence and import index (migrate.go), version 8 each world's player data
// versions (playerdata.go), version 9 each world's salt flag and table
// (salt.go), version 10 each salted world's kept digests of erased salts
// (salt_erased.go); Restore still reads versions 1 to 10.
var snapMagic = []byte("GSDSNAP\x0a")

// snapVersion is the newest format version. WriteTo writes version 3 while
// the state holds nothing that needs 4 (no node reported its versions, no
// world's rules were updated), so a state of older binaries keeps its
// exact bytes and older binaries can still restore it.
//
// Likewise version 5 only while a world declares actions: their
// expressions read the world's clock, which a restored replica must
// clamp to as the others do. Without them the clock bounds only events'
// times, and a replica restored from an older format starts it from the
// next batch.
//
// Version 6 once a world has an incarnation: every world a binary of log
// version 6 creates. A world restored from an older format has none (0).
//
// Version 7 only while a world is fenced (moved to another shard) or was
// imported (migrate.go): other states keep format 6's bytes.
//
// Version 8 once a player's data changed under a binary that versions it
// (playerdata.go). Like format 6 it is not gated: player data writes stay
// open in a mixed cluster, and a voter on an older binary cannot install
// a snapshot from an upgraded leader until it is upgraded (docs/RULES.md:
// upgrade the followers first).
//
// Version 9 only while a world salts its audit leaves (salt.go): its salt
// table. Only log version 13 creates such a world, so the gate has made
// every voter able to read it.
//
// Version 10 only while a salted world keeps the digest of an erased
// salt (salt_erased.go): only log version 14's CmdEraseSaltKeep keeps
// one, so again the gate has made every voter able to read it.
const snapVersion byte = 10

// Snapshot is an immutable view of the FSM at one applied index. Taking it
// copies only the worlds' index maps; entities, fields and players are shared
// and copied by Apply on its next write to them (copy-on-write), so WriteTo
// may run concurrently with Apply.
type Snapshot struct {
	applied uint64
	nodes   []NodeInfo
	worlds  []*world     // frozen copies: their maps are private to the snapshot
	version byte         // format to write; 0: snapVersion (tests write older ones)
	reasons *reasonTable // the FSM's: its records hold reason ids
}

// AppliedIndex returns the Raft index the snapshot reflects.
func (s *Snapshot) AppliedIndex() uint64 { return s.applied }

// Snapshot captures the current state. Call it from the goroutine that calls
// Apply (the Raft FSM goroutine), never concurrently with Apply.
func (f *FSM) Snapshot() *Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := &Snapshot{applied: f.applied, reasons: f.reasons}
	for _, id := range sortedKeys(f.nodes) {
		s.nodes = append(s.nodes, f.nodes[id])
	}
	for _, id := range sortedKeys(f.worlds) {
		w := f.worlds[id]
		c := *w
		c.inferred = maps.Clone(w.inferred)
		c.entities = maps.Clone(w.entities)
		c.players = maps.Clone(w.players)
		c.sessions = maps.Clone(w.sessions)
		c.data = maps.Clone(w.data)
		c.bans = maps.Clone(w.bans)
		c.dataVer = maps.Clone(w.dataVer)
		c.salts = maps.Clone(w.salts)
		c.erased = slices.Clip(w.erased) // append-only: the copy sees its length only
		c.history = nil
		s.worlds = append(s.worlds, &c)
	}
	// Everything reachable from the snapshot now belongs to the old
	// generation; Apply copies it before its next write.
	f.gen++
	return s
}

// WriteTo encodes the snapshot deterministically: equal states give equal bytes.
func (s *Snapshot) WriteTo(out io.Writer) (int64, error) {
	var total int64
	e := &encoder{b: make([]byte, 0, 1<<16)}
	flush := func(force bool) error {
		if !force && len(e.b) < 1<<16 {
			return nil
		}
		n, err := out.Write(e.b)
		total += int64(n)
		e.b = e.b[:0]
		return err
	}
	version := s.version
	if version == 0 {
		version = s.format()
	}
	e.b = append(e.b, snapMagic[:len(snapMagic)-1]...)
	e.byte(version)
	e.uvarint(s.applied)
	e.uvarint(uint64(len(s.nodes)))
	for i := range s.nodes {
		e.nodeInfo(&s.nodes[i])
		if version >= 4 {
			e.versions(s.nodes[i].Versions)
		}
	}
	e.uvarint(uint64(len(s.worlds)))
	for _, w := range s.worlds {
		if err := writeWorld(e, w, version, s.reasons, flush); err != nil {
			return total, err
		}
	}
	// Flush before reading total: in "return total, flush(true)" the order
	// of evaluating total and the call is unspecified.
	err := flush(true)
	return total, err
}

// writeWorld encodes one world in snapshot format version; flush(false)
// lets the caller write out what is encoded so far. A world export
// (migrate.go) writes the same bytes.
func writeWorld(e *encoder, w *world, version byte, reasons *reasonTable, flush func(bool) error) error {
	e.str(w.id)
	e.str(w.origin)
	e.rules(w.rules)
	if version >= 4 {
		e.uvarint(w.rulesVersion)
	}
	if version >= 5 {
		e.varint(w.clock)
	}
	if version >= 6 {
		e.uvarint(w.incarnation)
		e.varint(w.created)
	}
	e.rules(Rules{Fields: w.inferred})
	e.uvarint(w.seq)
	e.uvarint(w.index)
	e.fixed64(w.hash)
	e.uvarint(uint64(len(w.entities)))
	for _, id := range sortedKeys(w.entities) {
		e.str(id)
		writeEntity(e, w.entities[id])
		if err := flush(false); err != nil {
			return err
		}
	}
	e.uvarint(uint64(len(w.players)))
	for _, id := range sortedKeys(w.players) {
		e.str(id)
		writePlayer(e, w.players[id], reasons)
		if err := flush(false); err != nil {
			return err
		}
	}
	if version >= 2 {
		writeSessions(e, w, version)
	}
	if version >= 7 {
		writeMigration(e, w)
	}
	if version >= 8 {
		writeDataVersions(e, w)
	}
	if version >= 9 {
		writeSalts(e, w)
	}
	if version >= 10 {
		writeErased(e, w)
	}
	return nil
}

// format is the oldest format version that holds the snapshot's state.
func (s *Snapshot) format() byte {
	for _, w := range s.worlds {
		if len(w.erased) > 0 {
			return 10
		}
	}
	for _, w := range s.worlds {
		if w.isSalted() {
			return 9
		}
	}
	for _, w := range s.worlds {
		if len(w.dataVer) > 0 {
			return 8
		}
	}
	for _, w := range s.worlds {
		if w.moved != nil || w.imported != 0 {
			return 7
		}
	}
	for _, w := range s.worlds {
		if w.incarnation != 0 || w.created != 0 {
			return 6
		}
	}
	for _, w := range s.worlds {
		if len(w.rules.Schema.Actions) > 0 {
			return 5
		}
	}
	for i := range s.nodes {
		if !s.nodes[i].Versions.IsZero() {
			return 4
		}
	}
	for _, w := range s.worlds {
		if w.rulesVersion != 1 || !w.rules.Schema.IsZero() {
			return 4
		}
	}
	return 3
}

func writeEntity(e *encoder, en *entity) {
	e.uvarint(uint64(len(en.fields)))
	for _, fl := range en.fields {
		e.str(fl.name)
		e.byte(byte(fl.policy))
		e.byte(byte(fl.kind))
		e.uvarint(fl.version)
		switch fl.policy {
		case PolicyCounter:
			writeCounter(e, &fl.counter)
		case PolicySet:
			set := fl.set
			if set == nil {
				set = newValueSet()
			}
			writeDots(e, set.Clock())
			els := fl.elements()
			e.uvarint(uint64(len(els)))
			for _, v := range els {
				e.value(v)
				writeDots(e, set.Dots(v))
			}
		default:
			e.value(fl.val)
		}
	}
}

func writeDots(e *encoder, dots []crdt.Dot) {
	e.uvarint(uint64(len(dots)))
	for _, d := range dots {
		e.str(d.Replica)
		e.uvarint(d.Counter)
	}
}

func writePlayer(e *encoder, p *player, reasons *reasonTable) {
	e.uvarint(p.maxSeq)
	var recs []record
	p.records(func(r record) { recs = append(recs, r) })
	e.uvarint(uint64(len(recs)))
	for _, r := range recs {
		e.uvarint(r.seq)
		e.fixed64(r.payload)
		e.uvarint(r.worldSeq)
		e.byte(byte(r.status))
		e.str(reasons.name(r.reason))
	}
}

// Restore replaces the whole state with a snapshot written by WriteTo. It
// recomputes every hash and refuses a snapshot whose stored world hash does
// not match its contents. On error the FSM is unchanged.
func (f *FSM) Restore(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("restore: read: %w", err)
	}
	prefix := snapMagic[:len(snapMagic)-1]
	if len(data) < len(snapMagic) || !bytes.HasPrefix(data, prefix) || data[len(prefix)] < 1 || data[len(prefix)] > snapVersion {
		return fmt.Errorf("restore: %w: not a gsd snapshot, or a format newer than %d (this binary reads %s)", ErrMalformed, snapVersion, Supported())
	}
	version := data[len(prefix)]
	d := &decoder{b: data[len(snapMagic):]}
	f.mu.Lock()
	gen := f.gen + 1
	f.mu.Unlock()
	applied := d.uvarint()
	nodes := make(map[string]NodeInfo)
	for i, n := 0, d.count(4); i < n && d.err == nil; i++ {
		ni := d.nodeInfo()
		if version >= 4 {
			ni.Versions = d.versions()
		}
		nodes[ni.ID] = *ni
	}
	worlds := make(map[string]*world)
	for i, n := 0, d.count(8); i < n && d.err == nil; i++ {
		w, err := f.readWorld(d, gen, version)
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		worlds[w.id] = w
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return fmt.Errorf("restore: %w", d.err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gen, f.applied, f.nodes, f.worlds = gen, applied, nodes, worlds
	f.publishView()
	return nil
}

func (f *FSM) readWorld(d *decoder, gen uint64, version byte) (*world, error) {
	w := &world{id: d.str(), origin: d.str(), rules: d.rules(), rulesVersion: 1,
		sessions: make(map[string]*session), data: make(map[string]map[string]Value), bans: make(map[string]string),
		dataVer: make(map[string]uint64)}
	if version >= 4 {
		if w.rulesVersion = d.uvarint(); w.rulesVersion == 0 {
			d.fail("rules version 0")
		}
	}
	if version >= 5 {
		w.clock = d.varint()
	}
	if version >= 6 {
		w.incarnation, w.created = d.uvarint(), d.varint()
	}
	w.rulesSum = rulesHash(w.rulesVersion, w.rules)
	w.inferred = d.rules().Fields
	if w.inferred == nil {
		w.inferred = make(map[string]FieldRule)
	}
	w.seq, w.index = d.uvarint(), d.uvarint()
	stored := d.fixed64()
	n := d.count(2)
	w.entities = make(map[string]*entity, n)
	for i := 0; i < n && d.err == nil; i++ {
		id := d.str()
		en := readEntity(d, id, gen)
		w.entities[id] = en
		w.hash += en.hash()
	}
	n = d.count(3)
	w.players = make(map[string]*player, n)
	for i := 0; i < n && d.err == nil; i++ {
		id := d.str()
		w.players[id] = readPlayer(d, f.cfg.Window, gen, f.reasons)
	}
	if version >= 2 {
		readSessions(d, w, version)
	}
	if version >= 7 {
		readMigration(d, w)
	}
	if version >= 8 {
		readDataVersions(d, w)
	}
	if version >= 9 {
		readSalts(d, w)
	}
	if version >= 10 {
		readErased(d, w)
	}
	if d.err != nil {
		return nil, d.err
	}
	auth, err := w.rules.compile()
	if err != nil {
		return nil, fmt.Errorf("world %s: %w", w.id, err)
	}
	w.auth = auth
	if w.hash != stored {
		return nil, fmt.Errorf("world %s: %w: state hash %s, snapshot says %s", w.id, ErrMalformed, wire.HashString(w.hash), wire.HashString(stored))
	}
	// The snapshot stores the entities' hash (the format predates the
	// sessions hash); the sessions' part is recomputed from their data.
	w.meta = w.computeMeta()
	w.recordHash(f.cfg.HashHistory)
	return w, nil
}

func readEntity(d *decoder, id string, gen uint64) *entity {
	en := &entity{gen: gen}
	n := d.count(4)
	for i := 0; i < n && d.err == nil; i++ {
		fl := &field{gen: gen, name: d.str(), policy: Policy(d.byte()), kind: Kind(d.byte()), version: d.uvarint()}
		if len(en.fields) > 0 && en.fields[len(en.fields)-1].name >= fl.name {
			d.fail("fields out of order")
		}
		switch fl.policy {
		case PolicyCounter:
			fl.counter = readCounter(d)
			fl.total = fl.counter.value()
		case PolicySet:
			clock := readDots(d)
			entries := make(map[Value][]crdt.Dot)
			for j, m := 0, d.count(2); j < m && d.err == nil; j++ {
				v := d.value()
				entries[v] = readDots(d)
				fl.setSum += elementHash(v)
			}
			fl.set = newValueSet()
			fl.set.Restore(clock, entries)
		case PolicyAuthoritative, PolicyMax, PolicyMin:
			fl.val = d.value()
		default:
			d.fail("bad policy %d", fl.policy)
		}
		fl.rehash(id)
		en.fields = append(en.fields, fl)
	}
	return en
}

func readDots(d *decoder) []crdt.Dot {
	n := d.count(2)
	dots := make([]crdt.Dot, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		dots = append(dots, crdt.Dot{Replica: d.str(), Counter: d.uvarint()})
	}
	return dots
}

func readPlayer(d *decoder, window int, gen uint64, reasons *reasonTable) *player {
	p := &player{gen: gen, maxSeq: d.uvarint()}
	for i, n := 0, d.count(12); i < n && d.err == nil; i++ {
		r := record{seq: d.uvarint(), payload: d.fixed64(), worldSeq: d.uvarint(), status: Status(d.byte()), reason: reasons.id(d.str())}
		if r.seq == 0 {
			d.fail("record with seq 0")
			continue
		}
		p.put(r, window, gen)
	}
	return p
}
