package audit

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// erasedEvents are the 12 events of newSaltedMatch, some of which name
// p2 and p3 besides their actor: seq 5 (p4) changes entity p2, seq 6 (p0)
// sets entity p2's owner to the string p3, seq 9 (p3) is a conflict whose
// set holds p2.
func erasedEvents() []*wire.Event {
	evs := events("arena", 12)
	p2, p3 := wire.String("p2"), wire.String("p3")
	evs[4].Versions["p2"] = map[string]uint64{"hp": 5}
	evs[4].Changes = append(evs[4].Changes, wire.Change{Entity: "p2", Field: "hp", Op: "set", Value: evs[4].Changes[0].Value, Version: 5})
	evs[5].Versions = map[string]map[string]uint64{"p2": {"owner": 6}}
	evs[5].Changes = []wire.Change{{Entity: "p2", Field: "owner", Op: "set", Value: &p3, Version: 6}}
	evs[8].Status = wire.StatusConflict
	evs[8].Changes = append(evs[8].Changes, wire.Change{Entity: "e2", Field: "tags", Set: []wire.Value{p2}, Version: 9})
	return evs
}

// erase returns salts without the players' salts, keeping each one's
// digest for its since to until.
func erase(salts *wire.AuditSalts, until uint64, players ...string) *wire.AuditSalts {
	out := &wire.AuditSalts{World: salts.World, Incarnation: salts.Incarnation, Erased: append([]wire.AuditErasedSalt(nil), salts.Erased...)}
	for _, s := range salts.Salts {
		if !bytes.Contains([]byte(" "+joinNames(players)+" "), []byte(" "+s.Player+" ")) {
			out.Salts = append(out.Salts, s)
			continue
		}
		d := wire.SaltedID(s.Salt, s.Player)
		out.Erased = append(out.Erased, wire.AuditErasedSalt{Digest: d[:], Since: s.Since, Until: until})
	}
	return out
}

func joinNames(names []string) string { return string(bytes.Join(toBytes(names), []byte(" "))) }

func toBytes(names []string) [][]byte {
	out := make([][]byte, len(names))
	for i, n := range names {
		out[i] = []byte(n)
	}
	return out
}

// TestAnErasedPlayersEventsVerifyAsErasedWithTheirDigest: with p2's
// digest in place of its salt, its events (seqs 3 and 8) and those of
// others naming it (5, 6, 9) verify whole but p2's identity with the leaf
// hashes, and the report is OK without allowing unchecked events. Without
// them the events p1 acts in (2, 7, 12: p1 named nowhere else) verify,
// while names in other places are hashed in clear: the root differs. A
// digest whose range does not cover an event does not stand for it: that
// event stays unchecked.
func TestAnErasedPlayersEventsVerifyAsErasedWithTheirDigest(t *testing.T) {
	m := buildSaltedMatch(t, erasedEvents())
	lines := export(t, m.evs)
	erased := erase(m.salts, 12, "p2")
	require.NoError(t, erased.Check())
	rep := m.verify(t, lines, erased, true)
	require.Empty(t, rep.Problems)
	require.Empty(t, rep.Unchecked)
	require.Equal(t, []uint64{3, 5, 6, 8, 9}, rep.Erased)
	require.True(t, rep.OK())
	require.Equal(t, []string{Modified}, kindsOnly(m.verify(t, lines, erased, false)), "without leaves p2's entity is hashed in clear")

	p1 := erase(m.salts, 12, "p1")
	for _, named := range []bool{true, false} {
		rep := m.verify(t, lines, p1, named)
		require.Empty(t, rep.Problems, "named %v", named)
		require.Empty(t, rep.Unchecked)
		require.Equal(t, []uint64{2, 7, 12}, rep.Erased, "named %v", named)
		require.True(t, rep.OK())
	}

	// Two players erased: seq 6 names both (entity p2, value p3), the
	// search substitutes two names.
	both := erase(m.salts, 12, "p2", "p3")
	rep = m.verify(t, lines, both, true)
	require.Empty(t, rep.Problems)
	require.Empty(t, rep.Unchecked)
	require.Equal(t, []uint64{3, 4, 5, 6, 8, 9}, rep.Erased)

	// p2's digest kept for seqs 1 to 4 only (erased, salted again, its
	// second salt erased before digests were kept): seq 3 verifies, seq
	// 8 is unchecked, and the events naming p2 after 4 are modified (as
	// before digests were kept).
	short := erase(m.salts, 4, "p2")
	late := wire.SaltedID([]byte("another salt"), "p9") // a digest of seqs 10 to 12 only
	short.Erased = append(short.Erased, wire.AuditErasedSalt{Digest: late[:], Since: 10, Until: 12})
	rep = m.verify(t, lines, short, true)
	require.Equal(t, []uint64{3}, rep.Erased)
	require.Equal(t, []uint64{8}, rep.Unchecked)
	require.Equal(t, []string{Modified, Modified, Modified}, kindsOnly(rep))
}

// TestAForgedEventOfAnErasedPlayerIsReportedModifiedNotErased: p2's seq 8
// with its value edited matches the leaf with no digest; p2 took its
// digest at seq 3 (and in others' events), which covers 8: modified. p1's
// seq 7 edited, alone in its range (the lines of p1's seqs 2 and 12 gone
// too), cannot be told from an event whose salt left no digest:
// unchecked, and the report is not OK.
func TestAForgedEventOfAnErasedPlayerIsReportedModifiedNotErased(t *testing.T) {
	m := buildSaltedMatch(t, erasedEvents())
	lines := export(t, m.evs)
	erased := erase(m.salts, 12, "p2")
	forged := *m.evs[7]
	v := wire.Int(1 << 40)
	forged.Changes = []wire.Change{{Entity: "e1", Field: "hp", Op: "set", Value: &v, Version: 8}}
	lines[7] = line(t, forged)
	rep := m.verify(t, lines, erased, true)
	require.Equal(t, []string{"modified: seq 8 (line 8): its leaf is not the log's"}, kinds(rep))
	require.Equal(t, []uint64{3, 5, 6, 9}, rep.Erased)
	require.False(t, rep.OK())
	require.Equal(t, []string{Modified}, kindsOnly(m.verify(t, lines, erased, false)), "without leaves the root differs")

	lines = export(t, m.evs)
	forged = *m.evs[6]
	forged.Changes = []wire.Change{{Entity: "e0", Field: "hp", Op: "set", Value: &v, Version: 7}}
	lines[6] = line(t, forged)
	alone := append([][]byte{lines[0]}, lines[2:11]...)
	rep = m.verify(t, alone, erase(m.salts, 12, "p1"), true)
	require.Equal(t, []string{"removed: seq 2", "removed: seq 12"}, kinds(rep))
	require.Equal(t, []uint64{7}, rep.Unchecked)
}

// TestAnEventRenamedToAnErasedPlayerVerifiesAsErasedOnlyIfItsContentMatches:
// p4's event renamed to p2 (erased) does not match with p2's digest: p4
// is salted, the leaf holds p4's HMAC: modified. An entity renamed to p2
// likewise. Renamed from p3, itself erased, it matches with p3's digest:
// its content is the leaf's, its identity is what erased means is not
// verified.
func TestAnEventRenamedToAnErasedPlayerVerifiesAsErasedOnlyIfItsContentMatches(t *testing.T) {
	m := buildSaltedMatch(t, erasedEvents())
	lines := export(t, m.evs)
	erased := erase(m.salts, 12, "p2")
	renamed := append([][]byte(nil), lines...)
	e := *m.evs[9] // seq 10, p4
	e.Player = "p2"
	renamed[9] = line(t, e)
	ent := *m.evs[0] // seq 1, p0: entity e0 renamed to p2
	ent.Versions = map[string]map[string]uint64{"p2": {"hp": 1}}
	ent.Changes = []wire.Change{m.evs[0].Changes[0]}
	ent.Changes[0].Entity = "p2"
	renamed[0] = line(t, ent)
	rep := m.verify(t, renamed, erased, true)
	require.Equal(t, []string{"modified: seq 1 (line 1): its leaf is not the log's", "modified: seq 10 (line 10): its leaf is not the log's"}, kinds(rep))
	require.Equal(t, []uint64{3, 5, 6, 8, 9}, rep.Erased)

	both := erase(m.salts, 12, "p2", "p3")
	fromP3 := append([][]byte(nil), lines...)
	e = *m.evs[3] // seq 4, p3
	e.Player = "p2"
	fromP3[3] = line(t, e)
	rep = m.verify(t, fromP3, both, true)
	require.Empty(t, rep.Problems)
	require.Contains(t, rep.Erased, uint64(4), "its content matches with p3's digest")
}

// TestAnErasedPlayersEventsMovedOrDroppedAreNamed: the place of an event
// verified as erased is checked like any other's.
func TestAnErasedPlayersEventsMovedOrDroppedAreNamed(t *testing.T) {
	m := buildSaltedMatch(t, erasedEvents())
	lines := export(t, m.evs)
	erased := erase(m.salts, 12, "p2")
	moved := append(append(append([][]byte(nil), lines[:2]...), lines[3:10]...), lines[2]) // seq 3 now after seq 10
	moved = append(moved, lines[10:]...)
	rep := m.verify(t, moved, erased, true)
	require.Equal(t, []string{"reordered: seq 3 (line 10): out of its place in seq order"}, kinds(rep))
	require.Equal(t, []uint64{3, 5, 6, 8, 9}, rep.Erased)
	p1 := erase(m.salts, 12, "p1")
	moved = append(append(append([][]byte(nil), lines[:1]...), lines[2:10]...), lines[1]) // seq 2 now after seq 10
	moved = append(moved, lines[10:]...)
	rep = m.verify(t, moved, p1, false)
	require.Equal(t, []string{"reordered: seq 2 (line 10): out of its place in seq order"}, kinds(rep))
	require.Equal(t, []uint64{2, 7, 12}, rep.Erased, "without leaves too")

	dropped := append(append([][]byte(nil), lines[:7]...), lines[8:]...)
	rep = m.verify(t, dropped, erased, true)
	require.Equal(t, []string{"removed: seq 8"}, kinds(rep))
	require.Equal(t, []uint64{3, 5, 6, 9}, rep.Erased)

	copied := append(append([][]byte(nil), lines...), lines[7])
	rep = m.verify(t, copied, erased, true)
	require.Equal(t, []string{"inserted: seq 8 (line 13): a copy of the event at line 8"}, kinds(rep))
	require.Equal(t, []uint64{3, 5, 6, 8, 9}, rep.Erased, "the copy is not counted")
}

// TestTheErasedDigestSearchIsBounded: with more digests in range than
// maxErasedTries and none of them the actor's, the event is unchecked
// after maxErasedTries leaf hashes; without the leaf hashes the first
// digest is the one hashed, and the root says it is not.
func TestTheErasedDigestSearchIsBounded(t *testing.T) {
	m := buildSaltedMatch(t, erasedEvents())
	lines := export(t, m.evs)
	erased := erase(m.salts, 12, "p2")
	var decoys []wire.AuditErasedSalt
	for i := 0; i < maxErasedTries+10; i++ {
		d := wire.SaltedID([]byte{byte(i), byte(i >> 8)}, "decoy")
		decoys = append(decoys, wire.AuditErasedSalt{Digest: d[:], Since: 1, Until: 12})
	}
	only := &wire.AuditSalts{World: erased.World, Incarnation: erased.Incarnation, Salts: erased.Salts, Erased: decoys}
	rep := m.verify(t, lines, only, true)
	require.Equal(t, []uint64{3, 8}, rep.Unchecked, "the search gave up")
	require.Equal(t, []string{Modified, Modified, Modified}, kindsOnly(rep), "5, 6 and 9 name p2, whose digest is not there")
	require.Empty(t, rep.Erased)
	require.False(t, rep.OK())

	two := &wire.AuditSalts{World: erased.World, Incarnation: erased.Incarnation, Salts: erased.Salts, Erased: append(decoys[:1:1], erased.Erased...)}
	rep = m.verify(t, lines, two, true)
	require.Empty(t, rep.Problems)
	require.Equal(t, []uint64{3, 5, 6, 8, 9}, rep.Erased, "the decoy tried and passed over")
	rep = m.verify(t, lines, two, false)
	require.Equal(t, []string{Modified}, kindsOnly(rep), "without leaves, only the first digest in range is hashed")
	require.Empty(t, rep.Erased)
}

// TestALiveSaltAddedToTheErasedDigestsIsRefused: the review's forgery.
// p4's live salt's id added to the erased digests would let p4's events
// renamed to mallory (seqs 5 and 10) match with it and pass as erased;
// the salts file is refused as malformed instead, and with p4's salt's
// since moved past the digest's range too. Without the digest mallory,
// who has no salt, leaves the renamed events unchecked (not OK), as
// before digests were kept.
func TestALiveSaltAddedToTheErasedDigestsIsRefused(t *testing.T) {
	m := buildSaltedMatch(t, erasedEvents())
	lines := export(t, m.evs)
	for _, i := range []int{4, 9} {
		e := *m.evs[i]
		require.Equal(t, "p4", e.Player)
		e.Player = "mallory"
		lines[i] = line(t, e)
	}
	rep := m.verify(t, lines, m.salts, true)
	require.Empty(t, rep.Problems)
	require.Equal(t, []uint64{5, 10}, rep.Unchecked)
	require.Empty(t, rep.Erased)
	require.False(t, rep.OK())

	p4 := m.salts.Salts[4]
	require.Equal(t, "p4", p4.Player)
	d := wire.SaltedID(p4.Salt, "p4")
	forged := erase(m.salts, 12)
	forged.Erased = append(forged.Erased, wire.AuditErasedSalt{Digest: d[:], Since: 1, Until: 12})
	_, err := VerifySaltedLog(ndjson(lines), m.cp, forged, m.leaves)
	require.ErrorIs(t, err, wire.ErrMalformed)
	require.ErrorContains(t, err, `salts: gsd/fsm: malformed request: the erased digest of seqs 1 to 12 is live player "p4"'s salted id`)

	forged.Salts[4].Since = 13 // no overlap with the digest's range
	_, err = VerifySaltedLog(ndjson(lines), m.cp, forged, m.leaves)
	require.ErrorIs(t, err, wire.ErrMalformed)
}

// TestTheErasedSearchEndingExactlyAtItsBoundIsNotExhausted: p2's forged
// seq 8 (no entity, no change: its actor is the only name tried) has
// exactly maxErasedTries assignments, one per digest in range; all are
// tried and none matches, and p2 took its digest at seq 3 (its
// maxErasedTries'th try: p2's digest is last in order, from seq 2):
// modified. One digest more leaves an assignment untried: unchecked, and
// seq 3 too.
func TestTheErasedSearchEndingExactlyAtItsBoundIsNotExhausted(t *testing.T) {
	m := buildSaltedMatch(t, erasedEvents())
	lines := export(t, m.evs)
	forged := *m.evs[7]
	require.Equal(t, "p2", forged.Player)
	forged.Versions, forged.Changes = nil, nil
	lines[7] = line(t, forged)
	withDecoys := func(n int) *wire.AuditSalts {
		s := erase(m.salts, 12, "p2")
		s.Erased[0].Since = 2
		for i := 0; i < n; i++ {
			d := wire.SaltedID([]byte{byte(i), byte(i >> 8)}, "decoy")
			s.Erased = append(s.Erased, wire.AuditErasedSalt{Digest: d[:], Since: 1, Until: 12})
		}
		return s
	}
	rep := m.verify(t, lines, withDecoys(maxErasedTries-1), true)
	require.Equal(t, []string{"modified: seq 8 (line 8): its leaf is not the log's"}, kinds(rep))
	require.Empty(t, rep.Unchecked)
	require.Equal(t, []uint64{3, 5, 6, 9}, rep.Erased)

	rep = m.verify(t, lines, withDecoys(maxErasedTries), true)
	require.Equal(t, []uint64{3, 8}, rep.Unchecked)
}

// TestALongLineStopsTheErasedSearchAtItsBytesBound: p2's seq 3 (its
// first) holding 40,000 distinct strings (about 400 kB of leaf, more
// than maxErasedBytes) is hashed once, with the decoy tried first for its
// actor; the second digest, p2's, which would match, is past the bound:
// unchecked, far below maxErasedTries. The short events try both. The
// same event with p2's digest alone in range matches at its first leaf:
// erased.
func TestALongLineStopsTheErasedSearchAtItsBytesBound(t *testing.T) {
	evs := erasedEvents()
	long := evs[2]
	require.Equal(t, "p2", long.Player)
	set := make([]wire.Value, 40_000)
	for i := range set {
		set[i] = wire.String(fmt.Sprintf("name-%05d", i))
	}
	long.Changes = append(long.Changes, wire.Change{Entity: "e9", Field: "names", Op: "add", Set: set, Version: 3})
	m := buildSaltedMatch(t, evs)
	require.Greater(t, len(wire.AppendAuditLeafV2(nil, long, nil)), maxErasedBytes)
	lines := export(t, m.evs)
	erased := erase(m.salts, 12, "p2")
	decoy := wire.SaltedID([]byte("decoy"), "decoy")
	erased.Erased[0].Since = 2 // after the decoy in the search's order
	erased.Erased = append(erased.Erased, wire.AuditErasedSalt{Digest: decoy[:], Since: 1, Until: 12})

	rep := m.verify(t, lines, erased, true)
	require.Empty(t, rep.Problems)
	require.Equal(t, []uint64{3}, rep.Unchecked, "the bytes bound stopped it after one leaf")
	require.Equal(t, []uint64{5, 6, 8, 9}, rep.Erased, "short events try both digests")

	rep = m.verify(t, lines, erase(m.salts, 12, "p2"), true)
	require.Empty(t, rep.Problems)
	require.Empty(t, rep.Unchecked)
	require.Equal(t, []uint64{3, 5, 6, 8, 9}, rep.Erased)
}
