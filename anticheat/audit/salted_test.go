package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"
)

// saltedMatch is a salted world's log of 12 events by p0..p4 (events),
// its table and what the server's events carried.
type saltedMatch struct {
	log    *Log
	evs    []*wire.Event
	salts  *wire.AuditSalts
	cp     Checkpoint
	leaves []tlog.Hash
}

func newSaltedMatch(t *testing.T) saltedMatch {
	t.Helper()
	return buildSaltedMatch(t, events("arena", 12))
}

// buildSaltedMatch is a salted world's log of evs (by p0..p4, each salted
// from seq 1).
func buildSaltedMatch(t *testing.T, evs []*wire.Event) saltedMatch {
	t.Helper()
	salts := &wire.AuditSalts{World: "arena", Incarnation: 7}
	for i, p := range []string{"p0", "p1", "p2", "p3", "p4"} {
		salts.Salts = append(salts.Salts, wire.AuditSalt{Player: p, Salt: bytes.Repeat([]byte{byte(i + 1)}, 32), Since: 1})
	}
	require.NoError(t, salts.Check())
	l, err := OpenSalted("arena", 7, &MemStore{})
	require.NoError(t, err)
	require.Equal(t, wire.AuditLeafV2, l.LeafVersion())
	digests := salts.Digests()
	saltings := make([]wire.SaltedIDs, len(evs))
	for i, e := range evs {
		saltings[i] = wire.SaltedAt(digests, e.Seq) // as fsm.Event.Salted says
	}
	require.NoError(t, l.AppendSalted(evs, saltings))
	cp, err := l.Checkpoint()
	require.NoError(t, err)
	leaves, err := l.LeafHashes(1, uint64(len(evs)))
	require.NoError(t, err)
	return saltedMatch{log: l, evs: evs, salts: salts, cp: cp, leaves: leaves}
}

func (m saltedMatch) verify(t *testing.T, lines [][]byte, salts *wire.AuditSalts, named bool) Report {
	t.Helper()
	var leaves []tlog.Hash
	if named {
		leaves = m.leaves
	}
	rep, err := VerifySaltedLog(ndjson(lines), m.cp, salts, leaves)
	require.NoError(t, err)
	return rep
}

// TestASaltedLogCommitsToSaltedIDsAndSaysSoInItsCheckpoints: its leaves
// are version 2 (not version 1's), its checkpoints carry "leaf 2", which
// parses back; VerifyLog refuses them and asks for the salts.
func TestASaltedLogCommitsToSaltedIDsAndSaysSoInItsCheckpoints(t *testing.T) {
	m := newSaltedMatch(t)
	plain, _ := newLog(t, "arena", 12)
	pcp, err := plain.Checkpoint()
	require.NoError(t, err)
	require.NotEqual(t, pcp.Root, m.cp.Root)
	require.Equal(t, "arena\n12\n"+b64(m.cp.Root)+"\nincarnation 7\nleaf 2\n", m.cp.Text())
	back, err := ParseCheckpoint(m.cp.Text())
	require.NoError(t, err)
	require.Equal(t, m.cp, back)
	for _, bad := range []string{"leaf 1", "leaf 02", "leaf x", "leaf 300"} {
		_, err := ParseCheckpoint("arena\n1\n" + b64(m.cp.Root) + "\n" + bad + "\n")
		require.ErrorIs(t, err, ErrCheckpoint, bad)
	}
	_, err = VerifyLog(ndjson(export(t, m.evs)), m.cp, nil)
	require.ErrorIs(t, err, ErrCheckpoint)

	// Without saltings a salted log commits to the ids in clear, tagged.
	l, err := OpenSalted("arena", 7, &MemStore{})
	require.NoError(t, err)
	require.NoError(t, l.Append(m.evs[0]))
	h, err := l.LeafHashes(1, 1)
	require.NoError(t, err)
	require.Equal(t, LeafHashV2(m.evs[0], nil), h[0])
	require.NotEqual(t, m.leaves[0], h[0])
	require.Error(t, l.AppendSalted(m.evs[1:3], make([]wire.SaltedIDs, 1)), "one salting per event")
	_, err = OpenSalted("arena", 7, &failingStore{count: errors.New("down")})
	require.Error(t, err)
}

// TestASaltedExportVerifiesAndTamperingIsNamed: edit, drop, insert and
// reorder are each found and named, as for version 1.
func TestASaltedExportVerifiesAndTamperingIsNamed(t *testing.T) {
	m := newSaltedMatch(t)
	lines := export(t, m.evs)
	for _, named := range []bool{false, true} {
		rep := m.verify(t, lines, m.salts, named)
		require.True(t, rep.OK(), "%v", rep.Problems)
		require.Empty(t, rep.Unchecked)
	}

	edited := append([][]byte(nil), lines...)
	e := *m.evs[4]
	e.Player = "p3" // another salted player: the leaf differs
	edited[4] = line(t, e)
	require.Equal(t, []string{"modified: seq 5 (line 5): its leaf is not the log's"}, kinds(m.verify(t, edited, m.salts, true)))
	require.Equal(t, []string{Modified}, kindsOnly(m.verify(t, edited, m.salts, false)))

	dropped := append(append([][]byte(nil), lines[:6]...), lines[7:]...)
	require.Equal(t, []string{"removed: seq 7"}, kinds(m.verify(t, dropped, m.salts, true)))

	fake := *m.evs[2]
	fake.Player = "p4"
	inserted := append(append(append([][]byte(nil), lines[:3]...), line(t, fake)), lines[3:]...)
	require.Equal(t, []string{"inserted: seq 3 (line 4): not an event of the log"}, kinds(m.verify(t, inserted, m.salts, true)))

	reordered := append([][]byte(nil), lines...)
	reordered[8], reordered[9] = reordered[9], reordered[8]
	require.Equal(t, []string{"reordered: seq 10 (line 9): out of its place in seq order"}, kinds(m.verify(t, reordered, m.salts, true)))
}

// TestAnErasedPlayersEventsVerifyByTheirLeafHashesOnly: without p2's
// salt, its events are unchecked with the leaf hashes (their place
// verified), and the root differs without them.
func TestAnErasedPlayersEventsVerifyByTheirLeafHashesOnly(t *testing.T) {
	m := newSaltedMatch(t)
	erased := *m.salts
	erased.Salts = append(append([]wire.AuditSalt(nil), m.salts.Salts[:2]...), m.salts.Salts[3:]...) // p2 gone
	lines := export(t, m.evs)

	rep := m.verify(t, lines, &erased, true)
	require.Empty(t, rep.Problems)
	require.Equal(t, []uint64{3, 8}, rep.Unchecked, "p2's events: seqs 3 and 8")
	require.False(t, rep.OK(), "their content is not verified")
	rep.AllowUnchecked = true
	require.True(t, rep.OK())

	require.Equal(t, []string{Modified}, kindsOnly(m.verify(t, lines, &erased, false)), "without leaves the root differs")

	// Salted again after its events: they are as erased.
	again := *m.salts
	again.Salts = append([]wire.AuditSalt(nil), m.salts.Salts...)
	again.Salts[2].Since = 13
	require.Equal(t, []uint64{3, 8}, m.verify(t, lines, &again, true).Unchecked)

	// Dropping an erased player's event is still named.
	dropped := append(append([][]byte(nil), lines[:7]...), lines[8:]...)
	rep = m.verify(t, dropped, &erased, true)
	require.Equal(t, []string{"removed: seq 8"}, kinds(rep))
	require.Equal(t, []uint64{3}, rep.Unchecked)
}

func TestVerifySaltedLogRefusesSaltsAndCheckpointsItCannotUse(t *testing.T) {
	m := newSaltedMatch(t)
	lines := export(t, m.evs)
	bad := *m.salts
	bad.Salts = []wire.AuditSalt{{Player: "p0", Salt: []byte{1}, Since: 1}}
	_, err := VerifySaltedLog(ndjson(lines), m.cp, &bad, nil)
	require.ErrorIs(t, err, wire.ErrMalformed)

	other := *m.salts
	other.Incarnation = 8
	_, err = VerifySaltedLog(ndjson(lines), m.cp, &other, nil)
	require.ErrorIs(t, err, ErrCheckpoint)

	future := m.cp
	future.Leaf = 3
	_, err = VerifySaltedLog(ndjson(lines), future, m.salts, nil)
	require.ErrorIs(t, err, ErrCheckpoint)

	// A checkpoint without the leaf line (a tombstone written by a node
	// that never followed the world) verifies with the salts.
	noLine := m.cp
	noLine.Leaf = 0
	rep, err := VerifySaltedLog(ndjson(lines), noLine, m.salts, m.leaves)
	require.NoError(t, err)
	require.True(t, rep.OK())
}

func kindsOnly(rep Report) []string {
	out := make([]string, len(rep.Problems))
	for i, p := range rep.Problems {
		out[i] = p.Kind
	}
	return out
}

func b64(h tlog.Hash) string {
	b, _ := json.Marshal(h[:])
	return string(b[1 : len(b)-1])
}

// TestASaltedLogVerifiesRefilledEventsWithTheirSaltings: with each
// event's salted ids they are the tree's leaves; without them they are
// not.
func TestASaltedLogVerifiesRefilledEventsWithTheirSaltings(t *testing.T) {
	m := newSaltedMatch(t)
	digests := m.salts.Digests()
	saltings := make([]wire.SaltedIDs, len(m.evs))
	for i, e := range m.evs {
		saltings[i] = wire.SaltedAt(digests, e.Seq)
	}
	n, err := m.log.VerifySaltedEvents(m.cp, m.evs, saltings)
	require.NoError(t, err)
	require.Equal(t, len(m.evs), n)
	n, err = m.log.VerifyEvents(m.cp, m.evs...)
	require.ErrorIs(t, err, ErrProof, "without the salted ids the leaves differ")
	require.Zero(t, n)
	_, err = m.log.VerifySaltedEvents(m.cp, m.evs, saltings[1:])
	require.Error(t, err, "one salting per event")
}

// TestASaltedEventsInclusionChecksWithItsSalts: a player proving one
// event of a salted world needs the salts of the ids it names.
func TestASaltedEventsInclusionChecksWithItsSalts(t *testing.T) {
	m := newSaltedMatch(t)
	p, err := m.log.ProveInclusion(5, m.cp.Size)
	require.NoError(t, err)
	salted := wire.SaltedAt(m.salts.Digests(), 5)
	require.NoError(t, CheckSaltedInclusion(m.cp, m.evs[4], salted, p))
	require.ErrorIs(t, CheckInclusion(m.cp, m.evs[4], p), ErrProof, "its version 1 leaf is not in the tree")
	require.ErrorIs(t, CheckSaltedInclusion(m.cp, m.evs[3], salted, p), ErrProof)
}

// TestAForgedEventWithAnActorMissingFromTheSaltsIsNotOK: no salt was
// erased, yet a line whose actor is renamed to an id the table does not
// hold takes its seq's leaf unchecked, whatever its content: such a
// report is not OK unless the caller allows unchecked events.
func TestAForgedEventWithAnActorMissingFromTheSaltsIsNotOK(t *testing.T) {
	m := newSaltedMatch(t)
	lines := export(t, m.evs)
	forged := *m.evs[4]
	forged.Player = "ghost"
	forged.ClientSeq = 999
	forged.Status = "applied"
	forged.Changes = append([]wire.Change(nil), forged.Changes...)
	for i := range forged.Changes {
		v := wire.Int(1 << 40)
		forged.Changes[i].Value = &v
	}
	lines[4] = line(t, forged)
	rep := m.verify(t, lines, m.salts, true)
	require.Empty(t, rep.Problems)
	require.Equal(t, []uint64{5}, rep.Unchecked)
	require.False(t, rep.OK(), "a forged event with a full salt table verifies OK")
	rep.AllowUnchecked = true
	require.True(t, rep.OK(), "the caller that allows unchecked events")
}

// TestAnErasedPlayersEventMovedIsReportedReordered: an unchecked line's
// place is checked like any other's.
func TestAnErasedPlayersEventMovedIsReportedReordered(t *testing.T) {
	m := newSaltedMatch(t)
	erased := *m.salts
	erased.Salts = append(append([]wire.AuditSalt(nil), m.salts.Salts[:2]...), m.salts.Salts[3:]...) // p2 gone: seqs 3 and 8
	lines := export(t, m.evs)
	moved := append(append(append([][]byte(nil), lines[:2]...), lines[3:10]...), lines[2]) // seq 3 now after seq 10
	moved = append(moved, lines[10:]...)
	rep := m.verify(t, moved, &erased, true)
	require.Equal(t, []string{"reordered: seq 3 (line 10): out of its place in seq order"}, kinds(rep))
	require.Equal(t, []uint64{3, 8}, rep.Unchecked)
}
