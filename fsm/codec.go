package fsm

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// The binary codec of log entries, events and snapshots: varints and
// length-prefixed strings, canonical (one encoding per value) so that the
// idempotency payload hash of a retried action is stable.

// batchMagic starts every encoded Batch; the low nibble is the format version.
// Version 2 added the node to session commands; entries of version 1
// (batchMagicV1) still decode, so logs written before replay unchanged.
const (
	batchMagic   byte = 0xB2
	batchMagicV1 byte = 0xB1
)

// encoder appends to a byte slice.
type encoder struct{ b []byte }

func (e *encoder) byte(c byte)      { e.b = append(e.b, c) }
func (e *encoder) uvarint(u uint64) { e.b = binary.AppendUvarint(e.b, u) }
func (e *encoder) varint(i int64)   { e.b = binary.AppendVarint(e.b, i) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) bool(v bool)      { e.byte(boolByte(v)) }
func (e *encoder) float(f float64)  { e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(f)) }
func (e *encoder) fixed64(u uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, u) }
func (e *encoder) value(v Value)    { e.byte(byte(v.Kind)); e.valueBody(v) }
func (e *encoder) expect(x Expect)  { e.byte(byte(x.Mode)); e.uvarint(x.Version) }
func (e *encoder) nodeInfo(n *NodeInfo) {
	e.str(n.ID)
	e.str(n.RaftAddr)
	e.str(n.HTTPAddr)
	e.str(n.Region)
}

func (e *encoder) versions(v Versions) {
	e.uvarint(uint64(v.Log))
	e.uvarint(uint64(v.Snapshot))
	e.uvarint(uint64(v.Wire))
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

func (e *encoder) valueBody(v Value) {
	switch v.Kind {
	case KindInt, KindBool:
		e.varint(v.Int)
	case KindFloat:
		e.float(v.Float)
	case KindString:
		e.str(v.Str)
	}
}

// Rules start with a flags byte: bit 0 strict, bit 1 fairness follows (two
// varints: window and max lag, in ns), bit 2 the schema block follows the
// fields (log version 2). Encodings from before fairness wrote a bool there
// (0 or 1), so they decode unchanged; rules whose schema keys are all
// defaults never set bit 2, so they keep the bytes of log version 1.
const (
	rulesStrict byte = 1 << iota
	rulesFair
	rulesSchema
)

func (e *encoder) rules(r Rules) {
	flags := boolByte(r.Strict)
	if r.Fair != (Fairness{}) {
		flags |= rulesFair
	}
	if !r.Schema.IsZero() {
		flags |= rulesSchema
	}
	e.byte(flags)
	if flags&rulesFair != 0 {
		e.varint(int64(r.Fair.Window))
		e.varint(int64(r.Fair.MaxLag))
	}
	names := r.fieldNames()
	e.uvarint(uint64(len(names)))
	for _, n := range names {
		f := r.Fields[n]
		e.str(n)
		e.byte(byte(f.Type))
		e.byte(byte(f.Policy))
	}
	if flags&rulesSchema != 0 {
		e.schema(r.Schema)
	}
}

// The priority byte of an action also flags what log version 3 added
// after it: a declared action (name and params) and a role. Actions
// without either keep their log version 1 bytes.
const (
	actionDeclared byte = 0x80
	actionRole     byte = 0x40
	actionFlags         = actionDeclared | actionRole
)

func (e *encoder) action(a *Action) {
	e.str(a.World)
	e.str(a.Player)
	e.uvarint(a.Seq)
	e.varint(a.InputTime)
	// A priority Validate refuses must not turn into flags that make the
	// entry undecodable on every replica.
	p := byte(a.Priority) &^ actionFlags
	if a.Name != "" || len(a.Params) > 0 {
		p |= actionDeclared
	}
	if a.Role != "" {
		p |= actionRole
	}
	e.byte(p)
	if p&actionDeclared != 0 {
		e.str(a.Name)
		e.uvarint(uint64(len(a.Params)))
		for _, x := range a.Params {
			e.str(x.Name)
			e.value(x.Value)
		}
	}
	if p&actionRole != 0 {
		e.str(a.Role)
	}
	e.uvarint(uint64(len(a.Ops)))
	for i := range a.Ops {
		o := &a.Ops[i]
		e.byte(byte(o.Kind))
		e.str(o.Entity)
		e.str(o.Field)
		e.value(o.Value)
		e.varint(o.By)
		e.expect(o.Expect)
	}
}

// decoder reads what encoder wrote. The first error sticks; later reads
// return zero values, so callers check err once at the end.
type decoder struct {
	b   []byte
	err error

	// A batch's actions and ops are carved from shared slices (one
	// allocation each instead of two per action), and its world and field
	// names, which repeat from action to action, reuse the previous string
	// when equal: Apply decodes every action on every replica.
	actions   []Action
	ops       []Op
	lastWorld string
	lastField string
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	u, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return u
}

func (d *decoder) varint() int64 {
	i, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return i
}

func (d *decoder) fixed64() uint64 {
	if len(d.b) < 8 {
		d.fail("truncated")
		return 0
	}
	u := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return u
}

func (d *decoder) rawBytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("length %d beyond input", n)
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) str() string { return string(d.rawBytes()) }

// strLike returns the next string, reusing *last when equal (no copy) and
// remembering it otherwise.
func (d *decoder) strLike(last *string) string {
	b := d.rawBytes()
	if string(b) != *last { // compared without a copy
		*last = string(b)
	}
	return *last
}

func (d *decoder) bool() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail("bad bool")
	return false
}

// count reads a length that announces n items of at least min bytes each and
// rejects counts that the remaining input cannot hold.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/min) {
		d.fail("count %d beyond input", n)
		return 0
	}
	return int(n)
}

func (d *decoder) value() Value {
	k := Kind(d.byte())
	switch k {
	case KindNull:
		return Value{}
	case KindInt:
		return Int(d.varint())
	case KindBool:
		n := d.varint()
		if n != 0 && n != 1 {
			d.fail("bad bool value")
		}
		return Value{Kind: KindBool, Int: n}
	case KindFloat:
		f := math.Float64frombits(d.fixed64())
		if math.IsNaN(f) || math.IsInf(f, 0) {
			d.fail("non-finite float")
		}
		return Float(f)
	case KindString:
		return String(d.str())
	}
	d.fail("bad value kind %d", k)
	return Value{}
}

func (d *decoder) expect() Expect {
	x := Expect{Mode: ExpectMode(d.byte()), Version: d.uvarint()}
	if x.Mode > ExpectVersion {
		d.fail("bad expect mode")
	}
	return x
}

func (d *decoder) nodeInfo() *NodeInfo {
	return &NodeInfo{ID: d.str(), RaftAddr: d.str(), HTTPAddr: d.str(), Region: d.str()}
}

func (d *decoder) versions() Versions {
	v := [3]uint64{d.uvarint(), d.uvarint(), d.uvarint()}
	for _, x := range v {
		if x > math.MaxUint32 {
			d.fail("version %d out of range", x)
		}
	}
	return Versions{Log: uint32(v[0]), Snapshot: uint32(v[1]), Wire: uint32(v[2])}
}

func (d *decoder) rules() Rules {
	flags := d.byte()
	if flags&^(rulesStrict|rulesFair|rulesSchema) != 0 {
		d.fail("bad rules flags %#x", flags)
	}
	r := Rules{Strict: flags&rulesStrict != 0}
	if flags&rulesFair != 0 {
		r.Fair = Fairness{Window: time.Duration(d.varint()), MaxLag: time.Duration(d.varint())}
		if r.Fair == (Fairness{}) {
			d.fail("fairness flag without settings") // not canonical
		}
	}
	n := d.count(3)
	if n > 0 {
		r.Fields = make(map[string]FieldRule, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		name := d.str()
		r.Fields[name] = FieldRule{Type: Kind(d.byte()), Policy: Policy(d.byte())}
	}
	if flags&rulesSchema != 0 {
		r.Schema = d.schema()
	}
	return r
}

// action decodes one action of a batch that has up to left more commands
// (this one included), the size of the shared slices it carves from.
func (d *decoder) action(left int) *Action {
	if len(d.actions) == 0 {
		d.actions = make([]Action, max(left, 1))
	}
	a := &d.actions[0]
	d.actions = d.actions[1:]
	*a = Action{World: d.strLike(&d.lastWorld), Player: d.str(), Seq: d.uvarint(), InputTime: d.varint()}
	p := d.byte()
	a.Priority = Priority(p &^ actionFlags)
	if p&actionDeclared != 0 {
		a.Name = d.str()
		// A param takes at least 2 bytes: name length and value kind.
		if n := d.count(2); n > 0 {
			a.Params = make([]Param, n)
			for i := 0; i < n && d.err == nil; i++ {
				a.Params[i] = Param{Name: d.str(), Value: d.value()}
			}
		}
		if a.Name == "" && len(a.Params) == 0 {
			d.fail("declared action flag without an action") // not canonical
		}
	}
	if p&actionRole != 0 {
		if a.Role = d.str(); a.Role == "" {
			d.fail("role flag without a role") // not canonical
		}
	}
	// An op takes at least 7 bytes: kind, entity, field, value kind, by,
	// expect mode and version (empty names, a null value).
	n := d.count(7)
	if n > 0 {
		if cap(d.ops)-len(d.ops) < n {
			d.ops = make([]Op, 0, max(n, left)) // room for one op per command left
		}
		a.Ops = d.ops[len(d.ops) : len(d.ops)+n : len(d.ops)+n]
		d.ops = d.ops[:len(d.ops)+n]
	}
	for i := 0; i < n && d.err == nil; i++ {
		a.Ops[i] = Op{Kind: OpKind(d.byte()), Entity: d.str(), Field: d.strLike(&d.lastField), Value: d.value(), By: d.varint(), Expect: d.expect()}
	}
	return a
}

// EncodeBatch encodes a batch as one log entry.
func EncodeBatch(b *Batch) []byte {
	e := encoder{b: make([]byte, 0, 64+64*len(b.Commands))}
	return appendBatch(&e, b)
}

func appendBatch(e *encoder, b *Batch) []byte {
	e.byte(batchMagic)
	e.varint(b.Time)
	e.uvarint(uint64(len(b.Commands)))
	for i := range b.Commands {
		c := &b.Commands[i]
		e.byte(byte(c.Kind))
		switch c.Kind {
		case CmdAction:
			e.action(c.Action)
		case CmdCreateWorld, CmdCreateWorldSalted:
			e.str(c.World.ID)
			e.str(c.World.Origin)
			e.rules(c.World.Rules)
		case CmdPutNode, CmdRemoveNode:
			e.nodeInfo(c.Node)
		case CmdSessionOpen, CmdSessionAck, CmdSessionResume, CmdSessionClose, CmdSessionData,
			CmdSessionKick, CmdSessionBan, CmdSessionUnban, CmdSessionImport:
			e.sessionCmd(c.Session)
		case CmdSessionAcks:
			e.sessionAcks(c.Acks)
		case CmdNodeVersions:
			e.str(c.Node.ID)
			e.versions(c.Node.Versions)
		case CmdUpdateRules, CmdUpdateRulesEvent:
			e.str(c.Rules.World)
			e.uvarint(c.Rules.Expect)
			e.rules(c.Rules.Rules)
		case CmdSessionExpire:
			e.sessionExpiry(c.Expire)
		case CmdCheckpoint:
			e.checkpoint(c.Check)
		case CmdDivergence:
			e.divergence(c.Diverge)
		case CmdDeleteWorld, CmdMoveWorld, CmdImportWorld, CmdMoveWorldSalted, CmdImportWorldBack:
			e.worldCmd(c)
		case CmdSalt, CmdEraseSalt, CmdEraseSaltKeep:
			e.saltCmd(c.Salt, c.Kind == CmdSalt)
		}
	}
	return e.b
}

// EncodeAction encodes one action in the canonical form the batch carries.
// Its hash is the idempotency payload hash.
func EncodeAction(a *Action) []byte {
	e := encoder{b: make([]byte, 0, 32+32*len(a.Ops))}
	e.action(a)
	return e.b
}

// decodedBatch is a batch plus, per action, the span of its encoding, whose
// hash identifies the payload for idempotency.
type decodedBatch struct {
	Batch
	spans [][]byte
}

// DecodeBatch decodes a log entry written by EncodeBatch.
func DecodeBatch(p []byte) (*Batch, error) {
	db, err := decodeBatch(p)
	if err != nil {
		return nil, err
	}
	return &db.Batch, nil
}

// decodeScratch is space that Apply reuses from one entry to the next for
// the entry's commands, spans, actions and ops: about half the bytes each
// replica allocated per action. Player and entity names are not interned:
// a map of every name costs more than the small strings it saves
// (measured: BenchmarkApplyIncrements 15% and the store's Commit
// benchmark 10-40% slower with one, for 2 fewer allocations per action).
type decodeScratch struct {
	batch   decodedBatch
	actions []Action
	ops     []Op
}

func decodeBatch(p []byte) (*decodedBatch, error) { return decodeBatchInto(p, nil) }

// decodeBatchInto decodes p into fresh memory, or, when s is not nil, into
// s's: the result and its actions are then valid until the next call with
// s.
func decodeBatchInto(p []byte, s *decodeScratch) (*decodedBatch, error) {
	d := decoder{b: p}
	magic := d.byte()
	v1 := magic == batchMagicV1
	if !v1 && magic != batchMagic {
		return nil, fmt.Errorf("%w: not a gsd batch (magic %#x)", ErrMalformed, magic)
	}
	var out *decodedBatch
	if s != nil {
		out = &s.batch
	} else {
		out = &decodedBatch{}
	}
	out.Time = d.varint()
	n := d.count(2)
	out.Commands = reuse(out.Commands, n)
	out.spans = reuse(out.spans, n)
	if s != nil {
		if cap(s.actions) < n {
			s.actions, s.ops = make([]Action, n), make([]Op, 0, n)
		}
		d.actions, d.ops = s.actions[:cap(s.actions)], s.ops[:0]
	}
	for i := 0; i < n && d.err == nil; i++ {
		c := &out.Commands[i]
		c.Kind = CmdKind(d.byte())
		switch c.Kind {
		case CmdAction:
			start := d.b
			c.Action = d.action(n - i)
			if d.err == nil {
				out.spans[i] = start[:len(start)-len(d.b)]
			}
		case CmdCreateWorld, CmdCreateWorldSalted:
			c.World = &WorldSpec{ID: d.str(), Origin: d.str(), Rules: d.rules(), Salted: c.Kind == CmdCreateWorldSalted}
		case CmdPutNode, CmdRemoveNode:
			c.Node = d.nodeInfo()
		case CmdSessionOpen, CmdSessionAck, CmdSessionResume, CmdSessionClose, CmdSessionData,
			CmdSessionKick, CmdSessionBan, CmdSessionUnban, CmdSessionImport:
			c.Session = d.sessionCmd(v1)
		case CmdSessionAcks:
			c.Acks = d.sessionAcks()
		case CmdNodeVersions:
			c.Node = &NodeInfo{ID: d.str(), Versions: d.versions()}
		case CmdUpdateRules, CmdUpdateRulesEvent:
			c.Rules = &RulesUpdate{World: d.str(), Expect: d.uvarint(), Rules: d.rules()}
		case CmdSessionExpire:
			c.Expire = d.sessionExpiry()
		case CmdCheckpoint:
			c.Check = d.checkpoint()
		case CmdDivergence:
			c.Diverge = d.divergence()
		case CmdDeleteWorld, CmdMoveWorld, CmdImportWorld, CmdMoveWorldSalted, CmdImportWorldBack:
			d.worldCmd(c)
		case CmdSalt, CmdEraseSalt, CmdEraseSaltKeep:
			c.Salt = d.saltCmd(c.Kind == CmdSalt)
		default:
			d.fail("unknown command kind %d (this binary reads log version %d: kinds 1..%d)", c.Kind, LogVersion, CmdImportWorldBack)
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if s != nil && cap(d.ops) > cap(s.ops) { // grown for actions of several ops
		s.ops = d.ops
	}
	if d.err != nil {
		return nil, d.err
	}
	return out, nil
}

// reuse returns s resized to n zero elements, in place when it has room;
// never nil, as make's result.
func reuse[T any](s []T, n int) []T {
	if s == nil || cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}
