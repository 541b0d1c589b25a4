package moderation

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/anticheat/detect"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func flag() detect.Flag {
	return detect.Flag{Detector: detect.DetSpeed, Players: []string{"bob", "ann"}, Score: 0.7,
		Evidence: []detect.Ref{{World: "old", Seq: 3}, {World: "arena", Seq: 9}}}
}

func TestRulesAreValidAndHideEveryField(t *testing.T) {
	r := Rules()
	require.NoError(t, r.Validate())
	require.True(t, r.Strict)
	require.Len(t, r.Schema.Access, len(r.Fields))
	for name := range r.Fields {
		require.Equal(t, "hidden", r.Schema.Access[name].Visible, name)
		require.Equal(t, "server", r.Schema.Access[name].Write, name)
	}
	require.Equal(t, []string{"hidden"}, r.Schema.Viewers[Class].Sees)
}

func TestIDIsTheSameForTheSameSuspicionOnly(t *testing.T) {
	a := ID("speed", []string{"ann", "bob"}, "arena", 3)
	require.Equal(t, a, ID("speed", []string{"bob", "ann"}, "arena", 3), "players in any order")
	for _, b := range []string{
		ID("jump", []string{"ann", "bob"}, "arena", 3),
		ID("speed", []string{"ann"}, "arena", 3),
		ID("speed", []string{"ann", "bob"}, "arena2", 3),
		ID("speed", []string{"ann", "bob"}, "arena", 4),
		ID("speed", []string{"annbob"}, "arena", 3),
	} {
		require.NotEqual(t, a, b)
	}
	require.True(t, strings.HasPrefix(a, "flag-"))
}

func TestFromFlagTakesTheNewestEvidencesWorld(t *testing.T) {
	r := FromFlag(flag(), 7, "n1")
	require.Equal(t, "arena", r.World)
	require.Equal(t, uint64(7), r.Incarnation)
	require.Equal(t, StateOpen, r.State)
	require.Equal(t, []Ref{{World: "old", Seq: 3}, {World: "arena", Seq: 9}}, r.Evidence)
	require.Equal(t, ID("speed", []string{"ann", "bob"}, "arena", 7), r.ID)
	none := FromFlag(detect.Flag{Detector: "speed", Players: []string{"ann"}}, 7, "n1")
	require.Equal(t, "", none.World)
	require.Equal(t, uint64(0), none.Incarnation, "no evidence: no world, no incarnation")
}

func TestValidateRefusesWhatCannotBeKept(t *testing.T) {
	good := FromFlag(flag(), 1, "n1")
	require.NoError(t, good.Validate())
	long := strings.Repeat("x", fsm.MaxNameLen+1)
	for name, mut := range map[string]func(*Record){
		"no detector":    func(r *Record) { r.Detector = "" },
		"no raiser":      func(r *Record) { r.RaisedBy = "" },
		"no players":     func(r *Record) { r.Players = nil },
		"too many":       func(r *Record) { r.Players = make([]string, MaxPlayers+1) },
		"a long player":  func(r *Record) { r.Players = []string{long} },
		"much evidence":  func(r *Record) { r.Evidence = make([]Ref, MaxEvidence+1) },
		"nameless world": func(r *Record) { r.Evidence = []Ref{{Seq: 1}} },
		"long world":     func(r *Record) { r.World = long },
		"NaN":            func(r *Record) { r.Score = math.NaN() },
		"infinite":       func(r *Record) { r.Score = math.Inf(1) },
		"invalid UTF-8":  func(r *Record) { r.Detector = "\xff" },
	} {
		r := good
		mut(&r)
		require.ErrorIs(t, r.Validate(), ErrInvalid, name)
		require.ErrorIs(t, r.Validate(), fsm.ErrMalformed, name)
		_, err := RaiseAction(r, "w", 1)
		require.ErrorIs(t, err, ErrInvalid, name)
	}
	_, err := RaiseAction(good, "", 1)
	require.ErrorIs(t, err, ErrInvalid, "the action needs a writer")
}

func TestRaiseCreatesTheWorldAndRecordsASuspicionOnce(t *testing.T) {
	g := newFSMGroup(t)
	ctx := context.Background()
	r := FromFlag(flag(), 7, "n1")
	created, err := Raise(ctx, g, g, r, "gsd.n1", 1)
	require.NoError(t, err)
	require.True(t, created)
	// Another node raising the same suspicion, or this one after a
	// restart: a conflict that changes nothing.
	again := FromFlag(flag(), 7, "n2")
	again.Score = 0.9
	created, err = Raise(ctx, g, g, again, "gsd.n2", 1)
	require.NoError(t, err)
	require.False(t, created)

	got := g.record(t, r.ID)
	require.Equal(t, "n1", got.RaisedBy)
	require.Equal(t, 0.7, got.Score)
	require.Equal(t, []string{"ann", "bob"}, got.Players)
	require.Equal(t, r.Evidence, got.Evidence)
	require.Equal(t, "arena", got.World)
	require.Equal(t, uint64(7), got.Incarnation)
	require.Equal(t, StateOpen, got.State)
	require.NotZero(t, got.Raised)
	idx, err := g.f.Entity(World, IndexEntity)
	require.NoError(t, err)
	require.Len(t, idx.Fields, 1)
	require.Equal(t, []fsm.Value{fsm.String(r.ID)}, idx.Fields[0].Set)

	// The world existing already (another writer created it first).
	other := FromFlag(detect.Flag{Detector: "jump", Players: []string{"eve"}, Evidence: []detect.Ref{{World: "arena", Seq: 1}}}, 7, "n1")
	created, err = Raise(ctx, g, g, other, "gsd.n1", 2)
	require.NoError(t, err)
	require.True(t, created)
}

func TestRaiseReportsFailures(t *testing.T) {
	ctx := context.Background()
	r := FromFlag(flag(), 7, "n1")
	_, err := Raise(ctx, newFSMGroup(t), newFSMGroup(t), Record{}, "w", 1)
	require.ErrorIs(t, err, ErrInvalid)

	g := newFSMGroup(t)
	g.fail = func(*fsm.Action) error { return errDown }
	_, err = Raise(ctx, g, g, r, "w", 1)
	require.ErrorIs(t, err, errDown)

	// World taken by a world of other rules (someone made it before gsd,
	// its fields visible): nothing is written there.
	g = newFSMGroup(t)
	leaky := Rules()
	leaky.Schema.Access[FieldDetector] = fsm.FieldAccess{Write: "server"}
	require.NoError(t, g.CreateWorld(ctx, World, leaky))
	acts := g.acts
	_, err = Raise(ctx, g, g, r, "w", 1)
	require.ErrorIs(t, err, ErrNotModeration)
	require.NotErrorIs(t, err, ErrInvalid, "retried: an operator may delete that world")
	require.Equal(t, acts, g.acts, "nothing proposed")

	// The world cannot be created.
	g = newFSMGroup(t)
	g.createErr = errDown
	_, err = Raise(ctx, g, g, r, "w", 1)
	require.ErrorIs(t, err, errDown)

	// A record the log rejects.
	g = newFSMGroup(t)
	g.answer = func(a *fsm.Action) *fsm.Event { return &fsm.Event{Status: fsm.StatusRejected, Reason: "forbidden"} }
	_, err = Raise(ctx, g, g, r, "w", 1)
	require.ErrorIs(t, err, ErrInvalid)
	require.ErrorContains(t, err, "rejected: forbidden")
}

func TestCheckWorldAcceptsOnlyTheModerationRules(t *testing.T) {
	require.NoError(t, CheckWorld(fsm.WorldInfo{ID: World, Rules: Rules()}))
	other := Rules()
	other.Schema.Viewers["caster"] = fsm.ViewerRule{Sees: []string{"hidden"}}
	require.ErrorIs(t, CheckWorld(fsm.WorldInfo{ID: World, Rules: other}), ErrNotModeration)
	require.ErrorIs(t, CheckWorld(fsm.WorldInfo{ID: World}), ErrNotModeration)
}

func TestDecodeRefusesWhatIsNotARecord(t *testing.T) {
	_, err := Decode(fsm.EntityView{ID: IndexEntity, Fields: []fsm.FieldView{{Name: FieldFlags}}})
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorIs(t, err, fsm.ErrNotFound)
	for _, f := range []fsm.FieldView{
		{Name: FieldEvidence, Value: fsm.String("{")},
		{Name: FieldHistory, Set: []fsm.Value{fsm.String("[")}},
	} {
		_, err := Decode(fsm.EntityView{ID: "x", Fields: []fsm.FieldView{f}})
		require.ErrorContains(t, err, "field "+f.Name)
	}
}

func TestSeqsRiseFromTheClock(t *testing.T) {
	now := time.UnixMilli(5000)
	s := Seqs{Now: func() time.Time { return now }}
	require.Equal(t, uint64(5000), s.Next())
	require.Equal(t, uint64(5001), s.Next(), "faster than the clock")
	now = time.UnixMilli(4000)
	require.Equal(t, uint64(5002), s.Next(), "a clock that goes back")
	now = time.UnixMilli(9000)
	require.Equal(t, uint64(9000), s.Next())
	var real Seqs
	require.Greater(t, real.Next(), uint64(1e12), "the wall clock in milliseconds")
	zero := Seqs{Now: func() time.Time { return time.UnixMilli(-5) }}
	require.Equal(t, uint64(1), zero.Next(), "never 0")
}

func TestWireFormsRoundTrip(t *testing.T) {
	r := FromFlag(flag(), 7, "n1")
	r.Raised, r.History = 4, []Review{{N: 1, Op: OpConfirm, From: StateOpen, To: StateConfirmed, By: "m", Reason: "x"}}
	w := r.Wire()
	require.Equal(t, r.ID, w.ID)
	require.Equal(t, r.History, w.History)
	require.Equal(t, uint64(4), w.Raised)
	back := FromWire(wire.FlagRaise{Detector: w.Detector, Players: w.Players, Score: w.Score, Evidence: w.Evidence,
		World: w.World, Incarnation: w.Incarnation, RaisedBy: w.RaisedBy})
	require.Equal(t, FromFlag(flag(), 7, "n1"), back)
	bare := Record{ID: "x"}.Wire()
	require.Equal(t, []Ref{}, bare.Evidence)
	require.Equal(t, []Review{}, bare.History)
}
