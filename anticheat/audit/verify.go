package audit

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"sort"

	"github.com/gsd-dev/gsd/wire"
	"golang.org/x/mod/sumdb/tlog"
)

// The kinds of problems VerifyLog finds.
const (
	Modified  = "modified"  // an event of the log whose content changed
	Removed   = "removed"   // an event of the log missing from the export
	Inserted  = "inserted"  // a line that is no event of the log
	Reordered = "reordered" // an event of the log out of its place
	Malformed = "malformed" // a line that is not an event
)

// Limits of VerifyLog: one line of an export, and the events a checkpoint
// may cover (the verifier holds about 40 bytes per event).
const (
	MaxLineBytes    = 16 << 20
	MaxVerifyEvents = 1 << 26
)

// ErrLeaves: leaf hashes given to VerifyLog that are not the checkpoint's.
var ErrLeaves = errors.New("gsd/audit: leaf hashes do not match the checkpoint")

// Problem is one difference between an exported log and the log a
// checkpoint commits to.
type Problem struct {
	Kind   string `json:"kind"`
	Seq    uint64 `json:"seq,omitempty"`  // the seq concerned (0: some event, unnamed)
	To     uint64 `json:"to,omitempty"`   // the last of a run of seqs from Seq: removed ones, or where a change is
	Line   int    `json:"line,omitempty"` // the export's line, from 1 (0: none, e.g. removed)
	Detail string `json:"detail,omitempty"`
}

// String describes the problem on one line.
func (p Problem) String() string {
	s := p.Kind
	switch {
	case p.To > p.Seq:
		s += fmt.Sprintf(": seqs %d to %d", p.Seq, p.To)
	case p.Seq != 0:
		s += fmt.Sprintf(": seq %d", p.Seq)
	}
	if p.Line != 0 {
		s += fmt.Sprintf(" (line %d)", p.Line)
	}
	if p.Detail != "" {
		s += ": " + p.Detail
	}
	return s
}

// Report is what VerifyLog found.
type Report struct {
	Checkpoint Checkpoint
	Lines      int  // event lines read
	Beyond     int  // events after the checkpoint's size: not covered by it
	Named      bool // leaf hashes were given: every changed event is named
	Problems   []Problem
	// Unchecked are the seqs of a salted world's events whose player's
	// salt is not in the table given (erased): with leaf hashes their
	// place in the log is verified by the leaf of their seq, not their
	// content (VerifySaltedLog). Anything may be written in such a line,
	// so they make the report not OK unless AllowUnchecked.
	Unchecked []uint64
	// Erased are the seqs of a salted world's events that verified with
	// the digests of erased salts (wire.AuditSalts.Erased) in place of
	// the players they name: their content and place are verified, the
	// identities of those players are not. They do not make the report
	// not OK.
	Erased []uint64
	// AllowUnchecked is set by the caller that accepts events whose
	// content is not verified (gsdctl audit verify --allow-unchecked).
	AllowUnchecked bool
}

// OK reports whether the export holds exactly the checkpoint's events in
// order (events after its size aside), and every one's content was
// verified (or the caller allows unchecked ones).
func (r Report) OK() bool {
	return len(r.Problems) == 0 && (len(r.Unchecked) == 0 || r.AllowUnchecked)
}

// VerifyLog checks an exported log against a checkpoint (opened, so
// signed by a trusted key): NDJSON, one event per line as the event stream
// sends them, from seq 1. Every event of seqs 1 to cp.Size must be there
// once, in order, unchanged; later events are counted, not checked.
//
// Without leaves, removed, inserted (a seq repeated) and reordered events
// are named by their seqs, and a changed content is found by the root
// hash, but not named: 32 bytes of root cannot say which leaf differs.
// Earlier checkpoints of the same world narrow it down: the change is
// after the largest one the export agrees with and at or before the
// smallest one it does not (named exactly when they are one event apart).
// With leaves, the checkpoint's leaf hashes (Log.LeafHashes, from any
// copy of the log: VerifyLog checks them against the root), every problem
// is named: an event whose leaf is in the tree is genuine, and the others
// are modified (their seq's leaf is unmatched) or inserted.
func VerifyLog(r io.Reader, cp Checkpoint, leaves []tlog.Hash, earlier ...Checkpoint) (Report, error) {
	if cp.Leaf != 0 {
		return Report{Checkpoint: cp}, fmt.Errorf("%w: the leaves of %s are version %d: verify it with the world's salts", ErrCheckpoint, cp.Origin, cp.Leaf)
	}
	return verifyLog(r, cp, func(e *wire.Event, _ func(tlog.Hash) bool) (tlog.Hash, lineStatus) { return LeafHash(e), lineVerified }, nil, leaves, earlier)
}

// VerifySaltedLog is VerifyLog for a salted world's log (leaf version 2,
// wire.AppendAuditLeafV2) with the world incarnation's salt table (GET
// .../audit/salts, moderators and admins only). An event that names a
// player whose salt is not in the table at its seq (erased) is recomputed
// with the kept digests of erased salts whose range covers its seq in
// place of that player's id (erased.go): a match verifies its content but
// those identities, and it is listed in Report.Erased. An event whose
// player has no salt and no digest that can stand for it (erased before
// digests were kept, or more candidates than the verifier tries) cannot
// have its leaf recomputed: with leaf hashes it is verified by the leaf of
// its seq alone and listed in Report.Unchecked (its place is checked, its
// content is not: the report is not OK unless the caller sets
// AllowUnchecked); without them its leaf makes the root differ, found but
// not named. One whose player took a digest covering its seq in another
// line, and matches with none, is reported modified.
func VerifySaltedLog(r io.Reader, cp Checkpoint, salts *wire.AuditSalts, leaves []tlog.Hash, earlier ...Checkpoint) (Report, error) {
	if cp.Leaf != 0 && cp.Leaf != wire.AuditLeafV2 {
		return Report{Checkpoint: cp}, fmt.Errorf("%w: leaf version %d is not built", ErrCheckpoint, cp.Leaf)
	}
	if err := salts.Check(); err != nil {
		return Report{Checkpoint: cp}, fmt.Errorf("salts: %w", err)
	}
	if salts.World != cp.Origin || salts.Incarnation != cp.Incarnation {
		return Report{Checkpoint: cp}, fmt.Errorf("%w: the salts of %s incarnation %d, a checkpoint of %s incarnation %d", ErrCheckpoint, salts.World, salts.Incarnation, cp.Origin, cp.Incarnation)
	}
	h := newSaltedHasher(salts)
	return verifyLog(r, cp, h.leaf, h.settle, leaves, earlier)
}

// verifyLog is VerifyLog with the leaf hash of an event and what it
// verifies (leafHash gets match, which says whether a hash is one of the
// tree's leaves; nil without leaf hashes), and settle, when not nil, to
// decide the lines' status once all are hashed.
func verifyLog(r io.Reader, cp Checkpoint, leafHash func(*wire.Event, func(tlog.Hash) bool) (tlog.Hash, lineStatus), settle func([]logLine), leaves []tlog.Hash, earlier []Checkpoint) (Report, error) {
	rep := Report{Checkpoint: cp, Named: leaves != nil}
	if cp.Size < 0 || cp.Size > MaxVerifyEvents {
		return rep, fmt.Errorf("gsd/audit: a checkpoint of %d events, outside the 0 to %d one verification holds", cp.Size, MaxVerifyEvents)
	}
	if leaves != nil && (int64(len(leaves)) != cp.Size || rootOf(leaves) != cp.Root) {
		return rep, fmt.Errorf("%w: %d leaf hashes for a checkpoint of %d", ErrLeaves, len(leaves), cp.Size)
	}
	earlier = slices.Clone(earlier)
	slices.SortFunc(earlier, func(a, b Checkpoint) int { return cmp.Compare(a.Size, b.Size) })
	for i, e := range earlier {
		if e.Origin != cp.Origin || e.Incarnation != cp.Incarnation || e.Size < 1 || e.Size > cp.Size {
			return rep, fmt.Errorf("%w: %s of %d events is no earlier checkpoint of %s of %d", ErrCheckpoint, e.Origin, e.Size, cp.Origin, cp.Size)
		}
		next := cp
		if i+1 < len(earlier) {
			next = earlier[i+1]
		}
		if e.Size == next.Size && e.Root != next.Root {
			return rep, fmt.Errorf("%w: two checkpoints of %d events with different roots: the log forked", ErrCheckpoint, e.Size)
		}
	}
	var (
		lines []logLine
		index map[tlog.Hash]int // the tree's leaves, with leaf hashes
		match func(tlog.Hash) bool
	)
	if leaves != nil {
		index = make(map[tlog.Hash]int, len(leaves))
		for i, h := range leaves {
			index[h] = i
		}
		match = func(h tlog.Hash) bool { _, ok := index[h]; return ok }
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), MaxLineBytes)
	for n := 1; sc.Scan(); n++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		e, err := decodeEvent(b)
		if err != nil {
			rep.Problems = append(rep.Problems, Problem{Kind: Malformed, Line: n, Detail: "not an event: " + err.Error()})
			continue
		}
		rep.Lines++
		if e.Seq > uint64(cp.Size) {
			if cp.Tombstone { // the world's tree ended there: nothing came after
				rep.Problems = append(rep.Problems, Problem{Kind: Inserted, Seq: e.Seq, Line: n, Detail: fmt.Sprintf("after the tombstone of the deleted world at %d events", cp.Size)})
			}
			rep.Beyond++
			continue
		}
		h, status := leafHash(&e, match)
		lines = append(lines, logLine{n: n, seq: e.Seq, world: e.World, player: e.Player, hash: h, status: status})
	}
	if err := sc.Err(); err != nil {
		return rep, fmt.Errorf("read log: %w", err)
	}
	if settle != nil {
		settle(lines)
	}
	if leaves != nil {
		rep.Problems = append(rep.Problems, named(lines, leaves, index, &rep)...)
		slices.Sort(rep.Unchecked)
		slices.Sort(rep.Erased)
	} else {
		rep.Problems = append(rep.Problems, structural(lines, cp, earlier, &rep.Erased)...)
	}
	slices.SortStableFunc(rep.Problems, func(a, b Problem) int {
		if c := cmp.Compare(a.Seq, b.Seq); c != 0 {
			return c
		}
		return cmp.Compare(a.Line, b.Line)
	})
	return rep, nil
}

// decodeEvent decodes one line of an export. A key the event does not
// have is refused: the leaf would not cover it, and a reader might trust
// it.
func decodeEvent(b []byte) (wire.Event, error) {
	var e wire.Event
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&e); err != nil {
		return e, err
	}
	if d.More() {
		return e, errors.New("more than one JSON value")
	}
	if e.Seq == 0 {
		return e, errors.New("no seq")
	}
	return e, nil
}

// logLine is one event of an export.
type logLine struct {
	n      int
	seq    uint64
	world  string
	player string
	hash   tlog.Hash
	// status: lineUnchecked for a salted world's event whose leaf could
	// not be recomputed (hash is not its leaf's); lineErased for one
	// recomputed with erased salts' digests.
	status lineStatus
}

// named finds problems by matching each line's leaf hash to the tree's
// (index: each leaf's position). An unmatched unchecked line takes its
// seq's unmatched leaf, its seq added to rep.Unchecked; a matched line
// recomputed with erased digests is added to rep.Erased.
func named(lines []logLine, leaves []tlog.Hash, index map[tlog.Hash]int, rep *Report) []Problem {
	var out []Problem
	matched := make([]int, len(leaves)) // the line of the leaf's event
	var inOrder []int                   // matched leaves in line order
	var lineOf []int
	var unmatched []logLine
	for _, l := range lines {
		i, ok := index[l.hash]
		switch {
		case !ok:
			unmatched = append(unmatched, l)
		case matched[i] != 0:
			out = append(out, Problem{Kind: Inserted, Seq: l.seq, Line: l.n, Detail: fmt.Sprintf("a copy of the event at line %d", matched[i])})
		default:
			matched[i] = l.n
			inOrder = append(inOrder, i)
			lineOf = append(lineOf, l.n)
			if l.status == lineErased {
				rep.Erased = append(rep.Erased, l.seq)
			}
		}
	}
	claimed := make([]bool, len(leaves))
	var placed []lineLeaf // the erased lines that took their seq's leaf
	for _, l := range unmatched {
		i := l.seq - 1
		if matched[i] == 0 && !claimed[i] {
			claimed[i] = true
			if l.status == lineUnchecked {
				rep.Unchecked = append(rep.Unchecked, l.seq)
				placed = append(placed, lineLeaf{line: l.n, leaf: int(i)})
				continue
			}
			out = append(out, Problem{Kind: Modified, Seq: l.seq, Line: l.n, Detail: "its leaf is not the log's"})
			continue
		}
		out = append(out, Problem{Kind: Inserted, Seq: l.seq, Line: l.n, Detail: "not an event of the log"})
	}
	// An erased line's place is all that is checked of it: it joins the
	// order check, in line order among the matched ones.
	for _, p := range placed {
		k, _ := slices.BinarySearch(lineOf, p.line)
		lineOf = slices.Insert(lineOf, k, p.line)
		inOrder = slices.Insert(inOrder, k, p.leaf)
	}
	out = append(out, reordered(inOrder, lineOf)...)
	return append(out, removed(len(leaves), func(i int) bool { return matched[i] != 0 || claimed[i] })...)
}

// lineLeaf is a line of an export and the leaf it takes.
type lineLeaf struct{ line, leaf int }

// structural finds problems by the lines' seqs, and a changed content by
// the roots. When the root matches, the lines recomputed with erased
// digests are added to erased.
func structural(lines []logLine, cp Checkpoint, earlier []Checkpoint, erased *[]uint64) []Problem {
	var out []Problem
	first := make([]int, cp.Size) // position in lines of each seq's first line, +1
	hashes := make([]tlog.Hash, cp.Size)
	var dups []logLine
	var inOrder, lineOf []int
	for k, l := range lines {
		i := l.seq - 1
		if first[i] != 0 {
			dups = append(dups, l)
			continue
		}
		first[i] = k + 1
		hashes[i] = l.hash
		inOrder = append(inOrder, int(i))
		lineOf = append(lineOf, l.n)
		if l.world != cp.Origin {
			out = append(out, Problem{Kind: Modified, Seq: l.seq, Line: l.n, Detail: fmt.Sprintf("an event of world %q", l.world)})
		}
	}
	out = append(out, reordered(inOrder, lineOf)...)
	gone := removed(len(first), func(i int) bool { return first[i] != 0 })
	out = append(out, gone...)
	complete := len(gone) == 0
	rootOK := complete && rootOf(hashes) == cp.Root
	for _, d := range dups {
		p := Problem{Kind: Inserted, Seq: d.seq, Line: d.n, Detail: fmt.Sprintf("seq %d again (first at line %d)", d.seq, lines[first[d.seq-1]-1].n)}
		if !rootOK {
			p.Detail += "; either may be the inserted one"
		}
		out = append(out, p)
	}
	if complete && !rootOK {
		out = append(out, changed(lines, first, hashes, cp, earlier))
	}
	if rootOK {
		for i := range first {
			if l := lines[first[i]-1]; l.status == lineErased {
				*erased = append(*erased, l.seq)
			}
		}
	}
	return out
}

// changed narrows down where an export whose roots differ from cp's
// changed, with the earlier checkpoints sorted by size. Once a prefix
// differs every longer one does, so the smallest that differs is found by
// bisection.
func changed(lines []logLine, first []int, hashes []tlog.Hash, cp Checkpoint, earlier []Checkpoint) Problem {
	k := sort.Search(len(earlier), func(i int) bool { return rootOf(hashes[:earlier[i].Size]) != earlier[i].Root })
	lo, hi := int64(1), cp.Size
	if k > 0 {
		lo = earlier[k-1].Size + 1
	}
	if k < len(earlier) {
		hi = earlier[k].Size
	}
	p := Problem{Kind: Modified, Seq: uint64(lo)}
	switch {
	case len(earlier) == 0:
		return Problem{Kind: Modified, Detail: "the events do not hash to the checkpoint's root; give the leaf hashes to name them"}
	case lo == hi:
		p.Line = lines[first[lo-1]-1].n
		p.Detail = fmt.Sprintf("the checkpoints of %d and %d events differ by it", lo-1, hi)
	default:
		p.To = uint64(hi)
		p.Detail = fmt.Sprintf("an event changed after the checkpoint of %d events agreed and by the one of %d; give the leaf hashes to name it", lo-1, hi)
	}
	return p
}

// removed names the runs of leaves among the first n that are not there.
func removed(n int, there func(i int) bool) []Problem {
	var out []Problem
	for i := 0; i < n; i++ {
		if there(i) {
			continue
		}
		p := Problem{Kind: Removed, Seq: uint64(i) + 1}
		for i+1 < n && !there(i+1) {
			i++
		}
		if last := uint64(i) + 1; last > p.Seq {
			p.To = last
		}
		out = append(out, p)
	}
	return out
}

// reordered names the events out of place: those outside a longest run of
// leaves in increasing order (the fewest that moved).
func reordered(leaves, lineOf []int) []Problem {
	keep := increasing(leaves)
	var out []Problem
	for k, i := range leaves {
		if !keep[k] {
			out = append(out, Problem{Kind: Reordered, Seq: uint64(i) + 1, Line: lineOf[k], Detail: "out of its place in seq order"})
		}
	}
	return out
}

// increasing marks a longest strictly increasing subsequence of v.
func increasing(v []int) []bool {
	tails := []int{} // tails[l]: index in v of the smallest tail of a run of l+1
	prev := make([]int, len(v))
	for k, x := range v {
		l := sort.Search(len(tails), func(j int) bool { return v[tails[j]] >= x })
		prev[k] = -1
		if l > 0 {
			prev[k] = tails[l-1]
		}
		if l == len(tails) {
			tails = append(tails, k)
		} else {
			tails[l] = k
		}
	}
	keep := make([]bool, len(v))
	if len(tails) > 0 {
		for k := tails[len(tails)-1]; k >= 0; k = prev[k] {
			keep[k] = true
		}
	}
	return keep
}

// rootOf returns the RFC 6962 root of leaves.
func rootOf(leaves []tlog.Hash) tlog.Hash {
	switch n := len(leaves); n {
	case 0:
		h, _ := tlog.TreeHash(0, nil) // the empty tree's: reads nothing
		return h
	case 1:
		return leaves[0]
	default:
		k := 1 << (bits.Len(uint(n-1)) - 1) // the largest power of 2 below n
		return tlog.NodeHash(rootOf(leaves[:k]), rootOf(leaves[k:]))
	}
}

// EncodeLeafHashes returns the leaves file of hashes: the 32 bytes of
// each, in order, nothing else.
func EncodeLeafHashes(hashes []tlog.Hash) []byte {
	out := make([]byte, 0, len(hashes)*tlog.HashSize)
	for _, h := range hashes {
		out = append(out, h[:]...)
	}
	return out
}

// DecodeLeafHashes parses a leaves file (EncodeLeafHashes).
func DecodeLeafHashes(b []byte) ([]tlog.Hash, error) {
	if len(b)%tlog.HashSize != 0 {
		return nil, fmt.Errorf("%w: %d bytes are not a whole number of %d-byte hashes", ErrLeaves, len(b), tlog.HashSize)
	}
	out := make([]tlog.Hash, len(b)/tlog.HashSize)
	for i := range out {
		out[i] = tlog.Hash(b[i*tlog.HashSize:])
	}
	return out, nil
}
