package main

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/anticheat/audit/auditor"
	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/fsm"
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
	v := auditVerifier{aud}
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
	a.start(nil, nil, nil, slog.Default())() // off: nothing runs
}
