package detect

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"math"
	"slices"
	"strings"
)

// A checkpoint is a Detector's counts and flags with, per world, where
// its Runner's follower was (the incarnation it followed and the next seq
// to observe), taken in one hold of the Detector's lock right after an
// evaluation (so no tick's moves are half grouped and nothing waits to be
// judged). Version 1:
//
//	"gsdDETCK" | version (uvarint) | config fingerprint (8 bytes)
//	| strings: count, then each as length and bytes
//	| body: the counts, every name an index into strings
//	| CRC-32C of all before it (4 bytes, big-endian)
//
// Integers are varints, floats their 8 IEEE bytes, maps written in
// sorted order (the same state encodes to the same bytes). The
// fingerprint is of the Config without Every, Scan and Checkpoint: counts
// taken under other field names or thresholds are not restored.
const (
	checkpointMagic   = "gsdDETCK"
	checkpointVersion = 1
)

// ErrCheckpoint is returned for a checkpoint a Detector cannot restore:
// damaged, of another version, or taken with another Config.
var ErrCheckpoint = errors.New("gsd/anticheat/detect: unusable checkpoint")

// mark is where a world's follower is: the world's incarnation it
// follows and the seq after the last event it observed.
type mark struct{ inc, next uint64 }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// fingerprint names what a checkpoint's counts depend on: the Config
// but for how often the Runner evaluates, scans and checkpoints.
func fingerprint(c Config) [8]byte {
	c.Every, c.Scan, c.Checkpoint = 0, 0, 0
	s := sha256.Sum256(fmt.Appendf(nil, "%#v", c)) // plain fields: %#v spells every one
	return [8]byte(s[:8])
}

// checkpoint evaluates (returning the flags not returned before, as
// Evaluate) and encodes d's state with the marks of the worlds keep
// keeps (the others, of worlds gone, are forgotten), atomically: no event
// is observed between the evaluation and the encoding.
func (d *Detector) checkpoint(keep func(world string) bool) ([]Flag, []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	flags := d.evaluate()
	maps.DeleteFunc(d.marks, func(w string, _ mark) bool { return !keep(w) })
	return flags, d.encode()
}

// restore replaces d's state by checkpoint b's and returns b's marks and
// its flags (sorted as Evaluate's); a b it cannot read (ErrCheckpoint)
// leaves d as it was.
func (d *Detector) restore(b []byte) (map[string]mark, []Flag, error) {
	f := newDetector(d.cfg)
	if err := f.decode(b); err != nil {
		return nil, nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.players, d.appear, d.pairs, d.edges, d.into = f.players, f.appear, f.pairs, f.edges, f.into
	d.steps, d.flagged, d.marks = f.steps, f.flagged, f.marks
	d.dirtyPlayers, d.dirtyPairs, d.dirtyEdges = nil, nil, nil
	d.events, d.popAt, d.accCount, d.acc = f.events, f.popAt, f.accCount, f.acc
	flags := slices.Collect(maps.Values(d.flagged))
	slices.SortFunc(flags, func(x, y Flag) int {
		return cmp.Or(cmp.Compare(x.Detector, y.Detector), slices.Compare(x.Players, y.Players))
	})
	return maps.Clone(d.marks), flags, nil
}

// cpEnc encodes a checkpoint's body, interning its names.
type cpEnc struct {
	body []byte
	ids  map[string]uint64
	strs []string
}

func (e *cpEnc) uint(v uint64) { e.body = binary.AppendUvarint(e.body, v) }
func (e *cpEnc) int(v int64)   { e.body = binary.AppendVarint(e.body, v) }
func (e *cpEnc) num(n int)     { e.uint(uint64(n)) }
func (e *cpEnc) float(f float64) {
	e.body = binary.BigEndian.AppendUint64(e.body, math.Float64bits(f))
}

func (e *cpEnc) bool(b bool) {
	if b {
		e.uint(1)
	} else {
		e.uint(0)
	}
}

func (e *cpEnc) str(s string) {
	id, ok := e.ids[s]
	if !ok {
		id = uint64(len(e.strs))
		e.ids[s] = id
		e.strs = append(e.strs, s)
	}
	e.uint(id)
}

func (e *cpEnc) ref(r Ref) {
	e.str(r.World)
	e.uint(r.Seq)
}

func (e *cpEnc) refs(r *refs) {
	e.num(r.n)
	for i := range min(r.n, evidenceLen) {
		e.ref(r.ring[i])
	}
}

func (e *cpEnc) faded(f faded) {
	e.float(f.w)
	e.float(f.sum)
}

// frame returns the checkpoint: header, strings, body and checksum.
func (e *cpEnc) frame(fp [8]byte) []byte {
	n := len(checkpointMagic) + 1 + len(fp) + binary.MaxVarintLen64 + len(e.body) + 4
	for _, s := range e.strs {
		n += binary.MaxVarintLen64 + len(s)
	}
	out := binary.AppendUvarint(append(make([]byte, 0, n), checkpointMagic...), checkpointVersion)
	out = append(out, fp[:]...)
	out = binary.AppendUvarint(out, uint64(len(e.strs)))
	for _, s := range e.strs {
		out = binary.AppendUvarint(out, uint64(len(s)))
		out = append(out, s...)
	}
	out = append(out, e.body...)
	return binary.BigEndian.AppendUint32(out, crc32.Checksum(out, castagnoli))
}

// encode returns d's checkpoint (under d.mu, right after an evaluation).
func (d *Detector) encode() []byte {
	e := &cpEnc{ids: map[string]uint64{}, body: make([]byte, 0, d.ckptLen)} // about the last one's size: no regrowing
	e.uint(d.events)
	e.uint(d.popAt)
	e.num(d.accCount)
	e.num(d.acc.n)
	e.float(d.acc.rate)
	e.num(len(d.marks))
	for _, w := range slices.Sorted(maps.Keys(d.marks)) {
		e.str(w)
		e.uint(d.marks[w].inc)
		e.uint(d.marks[w].next)
	}
	e.num(len(d.players))
	for _, id := range slices.Sorted(maps.Keys(d.players)) {
		encodePlayer(e, d.players[id])
	}
	e.num(len(d.pairs))
	for _, k := range slices.SortedFunc(maps.Keys(d.pairs), comparePairs) {
		pr := d.pairs[k]
		e.str(k.a)
		e.str(k.b)
		e.num(pr.together)
		e.refs(&pr.stepEv)
		e.num(pr.matches)
		e.num(pr.winsA)
		e.num(pr.alts)
		e.bool(pr.lastA)
		e.refs(&pr.matchEv)
	}
	e.num(len(d.into))
	for _, to := range slices.Sorted(maps.Keys(d.into)) {
		e.str(to)
		e.num(len(d.into[to]))
		for _, ed := range d.into[to] { // in the order first seen
			e.str(ed.k.a)
			e.num(ed.n)
			e.refs(&ed.ev)
		}
	}
	e.num(len(d.appear))
	for _, k := range slices.SortedFunc(maps.Keys(d.appear), compareEntities) {
		e.str(k.world)
		e.str(k.entity)
		e.int(d.appear[k])
	}
	e.num(len(d.flagged))
	for _, k := range slices.Sorted(maps.Keys(d.flagged)) {
		f := d.flagged[k]
		e.str(f.Detector)
		e.num(len(f.Players))
		for _, p := range f.Players {
			e.str(p)
		}
		e.float(f.Score)
		e.num(len(f.Evidence))
		for _, r := range f.Evidence {
			e.ref(r)
		}
		e.uint(f.Incarnation)
	}
	b := e.frame(fingerprint(d.cfg))
	d.ckptLen = len(b)
	return b
}

func comparePairs(x, y pairKey) int {
	return cmp.Or(strings.Compare(x.a, y.a), strings.Compare(x.b, y.b))
}

func compareEntities(x, y entityRef) int {
	return cmp.Or(strings.Compare(x.world, y.world), strings.Compare(x.entity, y.entity))
}

func encodePlayer(e *cpEnc, p *player) {
	e.str(p.id)
	e.bool(p.moved)
	e.str(p.world)
	for _, v := range []int64{p.x, p.y, p.at, p.winX, p.winY, p.hitAt, p.reactedAt, p.lastShot, p.gold} {
		e.int(v)
	}
	for _, n := range []int{p.moves, p.near, p.jumps, p.winN, p.straight, p.windows, p.shots, p.hits, p.reactions, p.shotN, p.matches, p.incomes, p.unearned, p.cur} {
		e.num(n)
	}
	e.float(p.winPath)
	e.float(p.logReact)
	e.str(p.reactedTo)
	e.str(p.hit.world)
	e.str(p.hit.entity)
	for i := range shotMemory {
		e.int(p.shotAt[i])
		e.str(p.shotIn[i])
	}
	e.bool(p.shot)
	e.bool(p.earning)
	e.str(p.goldWorld)
	for _, r := range []*refs{&p.speedEv, &p.jumpEv, &p.straightEv, &p.reactEv, &p.accuracyEv, &p.incomeEv, &p.switchEv} {
		e.refs(r)
	}
	e.num(len(p.sessions))
	for i := range p.sessions {
		s := &p.sessions[i]
		e.str(s.world)
		e.int(s.start)
		e.num(s.reactions)
		e.float(s.logReact)
		e.num(s.shots)
		e.num(s.hits)
		e.faded(s.react)
		e.faded(s.aim)
		e.faded(s.aimReact)
	}
}

// cpDec reads a checkpoint; its first failure sticks (every read after
// it returns zeros), so a body is read through and checked once.
type cpDec struct {
	b    []byte
	strs []string
	err  error
}

func (d *cpDec) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrCheckpoint, what)
	}
	d.b = nil
}

func (d *cpDec) uint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("truncated or bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *cpDec) int() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("truncated or bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// num reads a count of something (an int, never negative).
func (d *cpDec) num() int {
	v := d.uint()
	if v > math.MaxInt32 {
		d.fail("a count out of range")
		return 0
	}
	return int(v)
}

// length reads how many things follow: each takes a byte at least.
func (d *cpDec) length() int {
	v := d.uint()
	if v > uint64(len(d.b)) {
		d.fail("a length past the end")
		return 0
	}
	return int(v)
}

func (d *cpDec) float() float64 {
	if len(d.b) < 8 {
		d.fail("truncated float")
		return 0
	}
	v := math.Float64frombits(binary.BigEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}

func (d *cpDec) bool() bool { return d.uint() != 0 }

func (d *cpDec) str() string {
	i := d.uint()
	if i >= uint64(len(d.strs)) {
		d.fail("a name out of the table")
		return ""
	}
	return d.strs[i]
}

func (d *cpDec) ref() Ref { return Ref{World: d.str(), Seq: d.uint()} }

func (d *cpDec) refs(r *refs) {
	r.n = d.num()
	for i := range min(r.n, evidenceLen) {
		r.ring[i] = d.ref()
	}
}

func (d *cpDec) faded() faded { return faded{w: d.float(), sum: d.float()} }

// openCheckpoint checks b's frame (magic, checksum, version, fingerprint) and
// reads its strings, leaving the body to read.
func openCheckpoint(b []byte, fp [8]byte) (*cpDec, error) {
	if len(b) < len(checkpointMagic)+4 || string(b[:len(checkpointMagic)]) != checkpointMagic {
		return nil, fmt.Errorf("%w: not a detectors' checkpoint", ErrCheckpoint)
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[len(b)-4:]) {
		return nil, fmt.Errorf("%w: checksum mismatch (the file is damaged)", ErrCheckpoint)
	}
	d := &cpDec{b: body[len(checkpointMagic):]}
	if v := d.uint(); v != checkpointVersion {
		return nil, fmt.Errorf("%w: version %d (this build reads %d)", ErrCheckpoint, v, checkpointVersion)
	}
	if len(d.b) < len(fp) || [8]byte(d.b[:len(fp)]) != fp {
		return nil, fmt.Errorf("%w: taken with other detector field names or thresholds", ErrCheckpoint)
	}
	d.b = d.b[len(fp):]
	for range d.length() {
		l := d.length()
		d.strs = append(d.strs, string(d.b[:l]))
		d.b = d.b[l:]
	}
	return d, d.err
}

// decode reads checkpoint b into d, a new Detector.
func (d *Detector) decode(b []byte) error {
	r, err := openCheckpoint(b, fingerprint(d.cfg))
	if err != nil {
		return err
	}
	d.events, d.popAt = r.uint(), r.uint()
	d.accCount, d.acc.n, d.acc.rate = r.num(), r.num(), r.float()
	for range r.length() {
		w := r.str()
		d.marks[w] = mark{inc: r.uint(), next: r.uint()}
	}
	for range r.length() {
		p := d.player(r.str())
		decodePlayer(r, p)
	}
	for range r.length() {
		pr := d.pair(d.player(r.str()), d.player(r.str()))
		pr.dirty = false
		pr.together = r.num()
		r.refs(&pr.stepEv)
		pr.matches, pr.winsA, pr.alts, pr.lastA = r.num(), r.num(), r.num(), r.bool()
		r.refs(&pr.matchEv)
	}
	for range r.length() {
		to := r.str()
		for range r.length() {
			k := pairKey{r.str(), to}
			ed := &edge{k: k, n: r.num()}
			r.refs(&ed.ev)
			d.edges[k] = ed
			d.into[to] = append(d.into[to], ed)
		}
	}
	for range r.length() {
		k := entityRef{r.str(), r.str()}
		d.appear[k] = r.int()
	}
	for range r.length() {
		f := Flag{Detector: r.str()}
		for range r.length() {
			f.Players = append(f.Players, r.str())
		}
		f.Score = r.float()
		for range r.length() {
			f.Evidence = append(f.Evidence, r.ref())
		}
		f.Incarnation = r.uint()
		d.flagged[f.Detector+"\x00"+strings.Join(f.Players, "\x00")] = f
	}
	if r.err == nil && len(r.b) > 0 {
		r.fail("bytes after the body")
	}
	return r.err
}

func decodePlayer(r *cpDec, p *player) {
	p.moved, p.world = r.bool(), r.str()
	for _, v := range []*int64{&p.x, &p.y, &p.at, &p.winX, &p.winY, &p.hitAt, &p.reactedAt, &p.lastShot, &p.gold} {
		*v = r.int()
	}
	for _, n := range []*int{&p.moves, &p.near, &p.jumps, &p.winN, &p.straight, &p.windows, &p.shots, &p.hits, &p.reactions, &p.shotN, &p.matches, &p.incomes, &p.unearned, &p.cur} {
		*n = r.num()
	}
	p.winPath, p.logReact = r.float(), r.float()
	p.reactedTo = r.str()
	p.hit = entityRef{r.str(), r.str()}
	for i := range shotMemory {
		p.shotAt[i], p.shotIn[i] = r.int(), r.str()
	}
	p.shot, p.earning, p.goldWorld = r.bool(), r.bool(), r.str()
	for _, e := range []*refs{&p.speedEv, &p.jumpEv, &p.straightEv, &p.reactEv, &p.accuracyEv, &p.incomeEv, &p.switchEv} {
		r.refs(e)
	}
	for range r.length() {
		p.sessions = append(p.sessions, sessionStats{world: r.str(), start: r.int(), reactions: r.num(), logReact: r.float(),
			shots: r.num(), hits: r.num(), react: r.faded(), aim: r.faded(), aimReact: r.faded()})
	}
}

// mark returns where the Detector last marked world's follower, if it
// did since the checkpoint that forgot the world's marks (it was gone).
func (d *Detector) mark(world string) (mark, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	m, ok := d.marks[world]
	return m, ok
}
