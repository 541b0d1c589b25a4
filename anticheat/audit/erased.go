package audit

import (
	"cmp"
	"maps"
	"slices"

	"github.com/gsd-dev/gsd/wire"
	"golang.org/x/mod/sumdb/tlog"
)

// Erased players' events (log version 14, docs/ANTICHEAT.md "Leaf version
// 2"). A salted world that erases a player's salt keeps its digest
// HMAC-SHA256(salt, id) with the seqs it salted, without the id; the
// salts file carries them (wire.AuditSalts.Erased). An event that names a
// player whose salt is not in the table at its seq (its actor, an entity,
// a string value) is recomputed with the erased digests whose range covers
// its seq in place of those names: a leaf that matches verifies the whole
// content but the identities of the players named by a digest (the event
// is listed as erased).
//
// Which name takes which digest is not known (the digests carry no ids),
// so the verifier tries them, bounded:
//   - only names that the table does not salt at the seq are tried, and
//     only with the digests in range, each digest for at most one name
//     (a digest is one player's);
//   - the actor, when the table does not salt it, always takes a digest
//     (an actor of a salted world is salted at its action); other names
//     are tried in clear first, then with one digest, then two, and so on
//     (fewest substitutions first);
//   - a digest that matched a name in an earlier line is tried first for
//     it, so a player's later events cost one leaf hash each;
//   - at most maxErasedTries leaf hashes per event, and no more once the
//     leaves it hashed reach maxErasedBytes: an assignment left untried
//     leaves the event unchecked (its actor has no salt) or reported
//     modified (as before digests were kept). The bytes bound a long
//     line, whose every leaf is long; the other names are collected (in
//     linear time) only once the assignments with none of them were
//     tried.
//
// Without the leaf hashes only the first assignment is hashed (the
// learned or first digest in range for the actor, other names in clear):
// the root says whether all of them were right.

// maxErasedTries and maxErasedBytes bound the leaf hashes one event's
// search may cost: no leaf is hashed once maxErasedTries were, or once
// those hashed add up to maxErasedBytes. An event of a few hundred bytes
// stops at the tries (BenchmarkErasedSearchBound/short: 0.6 ms on two
// shared cores, 0.6 µs a leaf), a long one at the bytes: at most
// maxErasedBytes beyond its first leaf, which any line costs (/long, a
// 480 kB leaf: 2.7 ms, the cost of that one leaf).
const (
	maxErasedTries = 1024
	maxErasedBytes = 256 << 10
)

// lineStatus says what a line's hash verifies.
type lineStatus uint8

const (
	lineVerified  lineStatus = iota // its leaf, recomputed whole
	lineErased                      // its leaf with erased digests: all but those identities
	lineUnchecked                   // no leaf recomputed: its place alone is checked
	// linePending is an event whose actor has no salt and whose erased
	// digests in range did not match: unchecked, unless the actor's name
	// took a digest covering its seq in another line (then its content
	// is not what the leaf says: modified).
	linePending
)

// erasedDigest is an erased salt's digest and the seqs it salted.
type erasedDigest struct {
	digest       [wire.SaltedIDLen]byte
	since, until uint64
}

func (d erasedDigest) covers(seq uint64) bool { return d.since <= seq && seq <= d.until }

// saltedHasher computes a salted world's leaves for VerifySaltedLog.
type saltedHasher struct {
	digests map[string]wire.SaltDigest
	erased  []erasedDigest // by since
	// learned are the digests each name took in a line whose leaf
	// matched.
	learned map[string][]erasedDigest
}

func newSaltedHasher(s *wire.AuditSalts) *saltedHasher {
	h := &saltedHasher{digests: s.Digests(), learned: make(map[string][]erasedDigest)}
	for _, e := range s.Erased {
		h.erased = append(h.erased, erasedDigest{digest: [wire.SaltedIDLen]byte(e.Digest), since: e.Since, until: e.Until})
	}
	slices.SortFunc(h.erased, func(a, b erasedDigest) int { return cmp.Compare(a.since, b.since) })
	return h
}

// leaf returns e's leaf hash and what it verifies; match (nil without
// leaf hashes) says whether a hash is one of the tree's leaves.
func (h *saltedHasher) leaf(e *wire.Event, match func(tlog.Hash) bool) (tlog.Hash, lineStatus) {
	cur := wire.SaltedAt(h.digests, e.Seq)
	_, salted := cur(e.Player)
	needActor := e.Player != "" && !salted
	var inRange []erasedDigest
	for _, d := range h.erased {
		if d.since > e.Seq {
			break
		}
		if d.covers(e.Seq) {
			inRange = append(inRange, d)
		}
	}
	if len(inRange) == 0 {
		if needActor {
			return LeafHashV2(e, cur), lineUnchecked
		}
		return LeafHashV2(e, cur), lineVerified
	}
	s := &erasedSearch{h: h, e: e, cur: cur, inRange: inRange, match: match}
	if s.run(needActor) {
		for _, p := range s.picks {
			if !slices.Contains(h.learned[p.name], p.digest) {
				h.learned[p.name] = append(h.learned[p.name], p.digest)
			}
		}
		if len(s.picks) > 0 {
			return s.found, lineErased
		}
		return s.found, lineVerified
	}
	switch {
	case match == nil && needActor:
		return s.first, lineErased // the root tells
	case match == nil || !needActor:
		return s.first, lineVerified
	case s.exhausted:
		return s.first, lineUnchecked
	}
	return s.first, linePending
}

// settle decides the pending lines once every line was hashed: a pending
// line whose actor took, in another line, a digest covering its seq is
// not the event the leaf committed to (verified: its hash matches no
// leaf); the others stay unchecked.
func (h *saltedHasher) settle(lines []logLine) {
	for i := range lines {
		l := &lines[i]
		if l.status != linePending {
			continue
		}
		l.status = lineUnchecked
		for _, d := range h.learned[l.player] {
			if d.covers(l.seq) {
				l.status = lineVerified
			}
		}
	}
}

// unsalted returns the distinct names e holds besides its actor (entities
// and string values) that cur does not salt: those a digest may stand for.
// Linear in the event's size: a line may hold a million names.
func (h *saltedHasher) unsalted(e *wire.Event, cur wire.SaltedIDs) []string {
	var learned, others []string
	seen := make(map[string]bool)
	add := func(name string) {
		if name == e.Player || seen[name] {
			return
		}
		seen[name] = true
		switch _, ok := cur(name); {
		case ok:
		case len(h.learned[name]) > 0:
			learned = append(learned, name)
		default:
			others = append(others, name)
		}
	}
	for _, ent := range slices.Sorted(maps.Keys(e.Versions)) {
		add(ent)
	}
	for _, c := range e.Changes {
		add(c.Entity)
		if c.Value != nil && c.Value.Kind == wire.KindString {
			add(c.Value.Str)
		}
		for _, v := range c.Set {
			if v.Kind == wire.KindString {
				add(v.Str)
			}
		}
	}
	// Names that took a digest before go first: they are tried with it
	// among the first single substitutions.
	slices.SortStableFunc(learned, func(a, b string) int {
		return cmp.Compare(len(h.learned[b]), len(h.learned[a]))
	})
	return append(learned, others...)
}

// pick is a name and the digest tried in its place.
type pick struct {
	name   string
	digest erasedDigest
}

// erasedSearch tries assignments of erased digests to one event's names.
type erasedSearch struct {
	h         *saltedHasher
	e         *wire.Event
	cur       wire.SaltedIDs
	inRange   []erasedDigest
	match     func(tlog.Hash) bool
	picks     []pick
	tries     int
	bytes     int       // of the leaves hashed
	buf       []byte    // the leaf being hashed
	first     tlog.Hash // the first assignment's hash
	found     tlog.Hash
	exhausted bool // an assignment was left untried (maxErasedTries, maxErasedBytes)
}

// run tries the assignments, fewest substitutions of the other names
// first, the actor always taking a digest when needActor; it reports a
// match (always false without leaf hashes, after the first).
func (s *erasedSearch) run(needActor bool) bool {
	var names []string // collected after the assignments without them
	digests := len(s.inRange)
	if needActor {
		digests-- // one is the actor's
	}
	for r := 0; ; r++ {
		if r == 1 {
			names = s.h.unsalted(s.e, s.cur)
		}
		if r > min(len(names), digests) {
			return false // no assignment of r names
		}
		if !needActor {
			if s.more(names, 0, r) {
				return true
			}
		} else {
			for _, d := range s.order(s.e.Player) {
				if s.stop() {
					break
				}
				s.picks = append(s.picks[:0], pick{name: s.e.Player, digest: d})
				if s.more(names, 0, r) {
					return true
				}
			}
			s.picks = s.picks[:0]
		}
		if s.stop() {
			return false
		}
	}
}

// stop reports that no more assignment is tried: without leaf hashes
// after the first, with them once one was left untried (try).
func (s *erasedSearch) stop() bool {
	if s.match == nil {
		return s.tries > 0
	}
	return s.exhausted
}

// more adds r picks for names from the from'th on, each with a digest not
// picked yet, and tries each full assignment.
func (s *erasedSearch) more(names []string, from, r int) bool {
	if r == 0 {
		return s.try()
	}
	for i := from; i <= len(names)-r; i++ { // r names left to pick
		for _, d := range s.order(names[i]) {
			if s.picked(d) {
				continue
			}
			if s.stop() {
				return false
			}
			s.picks = append(s.picks, pick{name: names[i], digest: d})
			if s.more(names, i+1, r-1) {
				return true // the picks stay: the caller learns them
			}
			s.picks = s.picks[:len(s.picks)-1]
		}
	}
	return false
}

// order returns the digests in range, those name took before first.
func (s *erasedSearch) order(name string) []erasedDigest {
	learned := s.h.learned[name]
	if len(learned) == 0 {
		return s.inRange
	}
	out := make([]erasedDigest, 0, len(s.inRange))
	for _, d := range s.inRange {
		if slices.Contains(learned, d) {
			out = append(out, d)
		}
	}
	for _, d := range s.inRange {
		if !slices.Contains(learned, d) {
			out = append(out, d)
		}
	}
	return out
}

func (s *erasedSearch) picked(d erasedDigest) bool {
	return slices.ContainsFunc(s.picks, func(p pick) bool { return p.digest == d })
}

// try hashes the leaf with the picks and reports a match. Past the
// bounds it hashes nothing and marks the search exhausted: only an
// assignment that is there to try does, so one that ends exactly at the
// bound is not.
func (s *erasedSearch) try() bool {
	if s.tries >= maxErasedTries || s.bytes >= maxErasedBytes {
		s.exhausted = true
		return false
	}
	s.buf = wire.AppendAuditLeafV2(s.buf[:0], s.e, s.salted)
	h := tlog.RecordHash(s.buf)
	if s.tries == 0 {
		s.first = h
	}
	s.tries++
	s.bytes += len(s.buf)
	if s.match != nil && s.match(h) {
		s.found = h
		return true
	}
	return false
}

// salted salts what the table salts at the seq, and the picks.
func (s *erasedSearch) salted(name string) ([wire.SaltedIDLen]byte, bool) {
	if d, ok := s.cur(name); ok {
		return d, true
	}
	for _, p := range s.picks {
		if p.name == name {
			return p.digest.digest, true
		}
	}
	return [wire.SaltedIDLen]byte{}, false
}
