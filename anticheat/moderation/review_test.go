package moderation

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func TestNextFollowsTheStateMachine(t *testing.T) {
	legal := map[[2]string]string{
		{StateOpen, OpConfirm}:     StateConfirmed,
		{StateOpen, OpDismiss}:     StateDismissed,
		{StateConfirmed, OpAppeal}: StateAppealed,
		{StateAppealed, OpConfirm}: StateConfirmed,
		{StateAppealed, OpDismiss}: StateDismissed,
	}
	for _, s := range []string{StateOpen, StateConfirmed, StateDismissed, StateAppealed, "weird"} {
		for _, op := range Ops {
			next, err := Next(s, op)
			if want, ok := legal[[2]string{s, op}]; ok {
				require.NoError(t, err, "%s %s", op, s)
				require.Equal(t, want, next)
				continue
			}
			require.ErrorIs(t, err, ErrIllegal, "%s %s", op, s)
		}
	}
	_, err := Next(StateConfirmed, OpDismiss)
	require.ErrorContains(t, err, "dismiss a flag that is confirmed (it allows appeal)")
	_, err = Next(StateDismissed, OpAppeal)
	require.ErrorContains(t, err, "it is closed")
	_, err = Next(StateOpen, "ban")
	require.ErrorIs(t, err, ErrInvalid)
}

func raised(t *testing.T, g *fsmGroup) Record {
	t.Helper()
	r := FromFlag(flag(), 7, "n1")
	created, err := Raise(context.Background(), g, g, r, "gsd.n1", 1)
	require.NoError(t, err)
	require.True(t, created)
	return g.record(t, r.ID)
}

func TestReviewsWalkTheStateMachineAndKeepTheirHistory(t *testing.T) {
	g := newFSMGroup(t)
	ctx := context.Background()
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.FixedZone("x", 3600))
	m, err := NewMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	seq := uint64(10)
	for i, step := range []struct{ op, want string }{
		{OpConfirm, StateConfirmed}, {OpAppeal, StateAppealed}, {OpDismiss, StateDismissed},
	} {
		r := raisedOr(t, g, i)
		seq++
		rv, err := ApplyReview(ctx, g, g, r, step.op, "mod", "because "+step.op, at, "gsd.n1", seq)
		require.NoError(t, err)
		m.Review(rv)
		require.Equal(t, Review{N: i + 1, Op: step.op, From: r.State, To: step.want, By: "mod", Reason: "because " + step.op, At: at.UTC()}, rv)
		got := g.record(t, r.ID)
		require.Equal(t, step.want, got.State)
		require.Len(t, got.History, i+1)
		require.Equal(t, rv, got.History[i])
	}
	require.Equal(t, 1.0, testutil.ToFloat64(m.Reviews(StateDismissed)))
	require.Equal(t, 1.0, testutil.ToFloat64(m.Reviews(StateAppealed)))
	_, err = NewMetrics(prometheus.NewPedanticRegistry())
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	_, err = NewMetrics(reg)
	require.NoError(t, err)
	_, err = NewMetrics(reg)
	require.Error(t, err, "registered twice")
}

// raisedOr returns the record, raised on the first call.
func raisedOr(t *testing.T, g *fsmGroup, i int) Record {
	if i == 0 {
		return raised(t, g)
	}
	return g.record(t, FromFlag(flag(), 7, "n1").ID)
}

func TestAConcurrentReviewLosesWithErrRace(t *testing.T) {
	g := newFSMGroup(t)
	ctx := context.Background()
	r := raised(t, g)
	_, err := ApplyReview(ctx, g, g, r, OpConfirm, "ann", "aimbot", time.Now(), "gsd.n1", 2)
	require.NoError(t, err)
	// r as read before the confirmation: dismissing it would skip the appeal.
	_, err = ApplyReview(ctx, g, g, r, OpDismiss, "bob", "looks fine", time.Now(), "gsd.n2", 2)
	require.ErrorIs(t, err, ErrRace)
	got := g.record(t, r.ID)
	require.Equal(t, StateConfirmed, got.State)
	require.Len(t, got.History, 1)
}

func TestReviewRefusesBadInput(t *testing.T) {
	g := newFSMGroup(t)
	ctx := context.Background()
	r := raised(t, g)
	for name, c := range map[string]struct{ op, by, reason, writer string }{
		"no moderator": {OpConfirm, "", "x", "w"},
		"long name":    {OpConfirm, strings.Repeat("m", fsm.MaxNameLen+1), "x", "w"},
		"no reason":    {OpConfirm, "mod", "", "w"},
		"long reason":  {OpConfirm, "mod", strings.Repeat("r", MaxReason+1), "w"},
		"bad reason":   {OpConfirm, "mod", "\xff", "w"},
		"no writer":    {OpConfirm, "mod", "x", ""},
		"unknown op":   {"ban", "mod", "x", "w"},
	} {
		_, err := ApplyReview(ctx, g, g, r, c.op, c.by, c.reason, time.Now(), c.writer, 5)
		require.ErrorIs(t, err, ErrInvalid, name)
	}
	_, err := ApplyReview(ctx, g, g, r, OpAppeal, "mod", "x", time.Now(), "w", 5)
	require.ErrorIs(t, err, ErrIllegal)

	g.fail = func(*fsm.Action) error { return errDown }
	_, err = ApplyReview(ctx, g, g, r, OpConfirm, "mod", "x", time.Now(), "w", 5)
	require.ErrorIs(t, err, errDown)

	// A world of other rules gets nothing; a rejection is reported.
	g = newFSMGroup(t)
	require.NoError(t, g.CreateWorld(ctx, World, fsm.Rules{Strict: true}))
	_, err = ApplyReview(ctx, g, g, r, OpConfirm, "mod", "x", time.Now(), "w", 5)
	require.ErrorIs(t, err, ErrNotModeration)
	g = newFSMGroup(t)
	require.NoError(t, g.CreateWorld(ctx, World, Rules()))
	g.answer = func(a *fsm.Action) *fsm.Event { return &fsm.Event{Status: fsm.StatusRejected, Reason: "forbidden"} }
	_, err = ApplyReview(ctx, g, g, r, OpConfirm, "mod", "x", time.Now(), "w", 5)
	require.ErrorIs(t, err, ErrInvalid)
	require.ErrorContains(t, err, fmt.Sprintf("confirm flag %s: rejected", r.ID))
}
