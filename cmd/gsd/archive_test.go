package main

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/anticheat/audit/auditor"
	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// oneWorld is an auditor source holding world arena whose feed never
// opens: the test appends to the tree itself.
type oneWorld struct{}

func (oneWorld) Worlds() []fsm.WorldInfo { return []fsm.WorldInfo{{ID: "arena"}} }
func (oneWorld) Subscribe(string, uint64) (fanout.Subscription, error) {
	return nil, errors.New("no feed in this test")
}

func TestAuditVerifierChecksRefilledEventsAgainstTheNodesTree(t *testing.T) {
	aud, err := auditor.New(auditor.DefaultConfig(), oneWorld{}, testTrees(t))
	require.NoError(t, err)
	l, err := aud.Log("arena")
	require.NoError(t, err)
	var evs []*fsm.Event
	for seq := uint64(1); seq <= 10; seq++ {
		e := &fsm.Event{World: "arena", Seq: seq, Index: seq + 3, Time: int64(seq), Player: "p1", ClientSeq: seq, Status: fsm.StatusApplied,
			Changes: []fsm.Change{{Entity: "e1", Field: "score", Op: fsm.OpIncr, Value: fsm.Int(int64(seq)), Version: seq}}}
		evs = append(evs, e)
		if seq <= 8 {
			w := e.Wire()
			require.NoError(t, l.Append(&w))
		}
	}
	v := auditVerifier{aud: aud}
	n, err := v.VerifyRefill("arena", evs[:8])
	require.NoError(t, err)
	require.Equal(t, 8, n)
	n, err = v.VerifyRefill("arena", evs[5:])
	require.NoError(t, err)
	require.Equal(t, 3, n, "seqs 9 and 10 are past the tree: left to a second peer")

	forged := *evs[3]
	forged.Player = "mallory"
	n, err = v.VerifyRefill("arena", []*fsm.Event{evs[2], &forged})
	require.ErrorIs(t, err, audit.ErrProof)
	require.Equal(t, 1, n)

	n, err = v.VerifyRefill("lobby", evs[:1])
	require.NoError(t, err)
	require.Zero(t, n, "no tree for the world")
}

func TestArchiveRefillOffOrBadInterval(t *testing.T) {
	a := archiveOptions{refillInterval: -1}
	require.Error(t, a.check())
	a.refillInterval = 0
	require.NoError(t, a.check())
	a.start(nil, nil, slog.Default())() // off: nothing runs
}

// saltedWorld is oneWorld with salted audit leaves.
type saltedWorld struct{ oneWorld }

func (saltedWorld) Worlds() []fsm.WorldInfo { return []fsm.WorldInfo{{ID: "arena", Salted: true}} }

// TestAuditVerifierChecksASaltedWorldsRefilledIDsAgainstItsSalts: a
// salted world's events verify with their salted ids; one whose ids the
// node's table does not confirm (a name passed off under another
// player's HMAC, an erased salt) ends what the tree verifies.
func TestAuditVerifierChecksASaltedWorldsRefilledIDsAgainstItsSalts(t *testing.T) {
	aud, err := auditor.New(auditor.DefaultConfig(), saltedWorld{}, testTrees(t))
	require.NoError(t, err)
	l, err := aud.Log("arena")
	require.NoError(t, err)
	require.Equal(t, wire.AuditLeafV2, l.LeafVersion())
	table := []fsm.Salt{{Player: "p1", Key: [fsm.SaltLen]byte{1}, Since: 1}, {Player: "p2", Key: [fsm.SaltLen]byte{2}, Since: 1}}
	salting := func(p string, key byte) *fsm.Salting {
		return &fsm.Salting{Names: []fsm.SaltedName{{Name: p, Digest: wire.SaltedID((&[fsm.SaltLen]byte{key})[:], p)}}}
	}
	var evs []*fsm.Event
	for seq := uint64(1); seq <= 6; seq++ {
		p, key := "p1", byte(1)
		if seq%2 == 0 {
			p, key = "p2", 2
		}
		e := &fsm.Event{World: "arena", Seq: seq, Player: p, ClientSeq: seq, Status: fsm.StatusApplied, Salted: salting(p, key),
			Changes: []fsm.Change{{Entity: "e1", Field: "score", Op: fsm.OpIncr, Value: fsm.Int(int64(seq)), Version: seq}}}
		evs = append(evs, e)
		w := e.Wire()
		require.NoError(t, l.AppendSalted([]*wire.Event{&w}, []wire.SaltedIDs{e.Salted.Lookup}))
	}
	v := auditVerifier{aud: aud, salts: func(string) ([]fsm.Salt, uint64, error) { return table, 0, nil }}
	n, err := v.VerifyRefill("arena", evs)
	require.NoError(t, err)
	require.Equal(t, 6, n)

	// p2's event 4 passed off as mallory's, under p2's HMAC: the leaf
	// alone would match; the table does not confirm it.
	forged := *evs[3]
	forged.Player = "mallory"
	forged.Salted = &fsm.Salting{Names: []fsm.SaltedName{{Name: "mallory", Digest: evs[3].Salted.Names[0].Digest}}}
	n, err = v.VerifyRefill("arena", []*fsm.Event{evs[2], &forged, evs[4]})
	require.NoError(t, err)
	require.Equal(t, 1, n, "the rest is left to a second peer")
	// Its HMAC dropped: the leaf differs from the tree's.
	bare := *evs[3]
	bare.Salted = nil
	n, err = v.VerifyRefill("arena", []*fsm.Event{evs[2], &bare})
	require.ErrorIs(t, err, audit.ErrProof)
	require.Equal(t, 1, n)

	// p1's salt erased: its events are no longer confirmed.
	v.salts = func(string) ([]fsm.Salt, uint64, error) { return table[1:], 0, nil }
	n, err = v.VerifyRefill("arena", evs[1:])
	require.NoError(t, err)
	require.Equal(t, 1, n, "event 2 (p2) verified, event 3 (p1) not confirmed")
	v.salts = func(string) ([]fsm.Salt, uint64, error) { return nil, 0, fsm.ErrUnknownWorld }
	n, err = v.VerifyRefill("arena", evs)
	require.NoError(t, err)
	require.Zero(t, n)
}
