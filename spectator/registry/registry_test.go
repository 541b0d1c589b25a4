package registry

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

func TestValidateRefusesWhatCannotBeKept(t *testing.T) {
	ok := Relay{ID: "eu-1", URL: "https://eu-1.example:7080", Region: "eu", Worlds: []string{"arena"}, Capacity: 10}
	require.NoError(t, ok.Validate())
	for name, mod := range map[string]func(*Relay){
		"no id":          func(r *Relay) { r.ID = "" },
		"long id":        func(r *Relay) { r.ID = strings.Repeat("a", MaxIDLen+1) },
		"bad id":         func(r *Relay) { r.ID = "a/b" },
		"no scheme":      func(r *Relay) { r.URL = "eu-1.example" },
		"no host":        func(r *Relay) { r.URL = "http://" },
		"long url":       func(r *Relay) { r.URL = "http://x/" + strings.Repeat("a", MaxURLLen) },
		"long region":    func(r *Relay) { r.Region = strings.Repeat("r", MaxRegion+1) },
		"many worlds":    func(r *Relay) { r.Worlds = make([]string, MaxWorlds+1) },
		"bad world":      func(r *Relay) { r.Worlds = []string{"a b"} },
		"neg capacity":   func(r *Relay) { r.Capacity = -1 },
		"neg viewers":    func(r *Relay) { r.Viewers = -1 },
		"unparsable url": func(r *Relay) { r.URL = "http://[::1" },
	} {
		r := ok
		mod(&r)
		require.ErrorIs(t, r.Validate(), ErrInvalid, name)
		require.ErrorIs(t, r.Validate(), fsm.ErrMalformed, name)
		_, err := PutAction(r, "w", 1)
		require.ErrorIs(t, err, ErrInvalid, name)
	}
	_, err := RemoveAction("a b", "w", 1)
	require.ErrorIs(t, err, ErrInvalid)
	_, err = RemoveAction("x", "", 1)
	require.ErrorIs(t, err, ErrInvalid, "an action without a player")
	_, err = PutAction(ok, "", 1)
	require.ErrorIs(t, err, ErrInvalid, "an action without a player")
}

func TestPickServesTheWorldLeastLoadedFirst(t *testing.T) {
	now := time.Unix(1000, 0)
	rs := []Relay{
		{ID: "b", Capacity: 100, Viewers: 50},
		{ID: "a", Capacity: 100, Viewers: 50},
		{ID: "quiet", Capacity: 100, Viewers: 1},
		{ID: "other", Worlds: []string{"lobby"}},
		{ID: "mine", Worlds: []string{"lobby", "arena"}, Capacity: 10, Viewers: 3},
		{ID: "full", Capacity: 2, Viewers: 2},
		{ID: "stale", Heartbeat: now.Add(-time.Minute)},
		{ID: "live", Heartbeat: now.Add(-time.Second), Capacity: 100, Viewers: 90},
		{ID: "unsaid", Viewers: 0},
	}
	var got []string
	for _, r := range Pick(rs, "arena", now, 30*time.Second) {
		got = append(got, r.ID)
	}
	require.Equal(t, []string{"quiet", "mine", "a", "b", "live", "unsaid"}, got)
	require.Empty(t, Pick(nil, "arena", now, time.Second))
}

func TestRecordsRoundTripThroughTheirEntity(t *testing.T) {
	f, err := fsm.New(fsm.DefaultConfig())
	require.NoError(t, err)
	var index uint64
	apply := func(c fsm.Command) fsm.Result {
		index++
		return f.ApplyBatch(index, &fsm.Batch{Time: int64(index) * 1e9, Commands: []fsm.Command{c}})[0]
	}
	require.NoError(t, apply(fsm.Command{Kind: fsm.CmdCreateWorld, World: &fsm.WorldSpec{ID: World, Rules: Rules()}}).Err)
	hb := time.UnixMilli(1_700_000_000_123)
	for i, r := range []Relay{
		{ID: "eu-1", URL: "https://eu-1.example", Region: "eu", Worlds: []string{"a", "b"}, Capacity: 10, Viewers: 4, Heartbeat: hb},
		{ID: "all", URL: "http://all.example"},
	} {
		a, err := PutAction(r, "w", uint64(i+1))
		require.NoError(t, err)
		res := apply(fsm.Command{Kind: fsm.CmdAction, Action: a})
		require.NoError(t, res.Err)
		require.Equal(t, fsm.StatusApplied, res.Event.Status, res.Event.Reason)
		v, err := f.Entity(World, r.ID)
		require.NoError(t, err)
		got, err := Decode(v)
		require.NoError(t, err)
		require.Equal(t, r.ID, got.ID)
		require.Equal(t, r.URL, got.URL)
		require.Equal(t, r.Worlds, got.Worlds)
		require.Equal(t, r.Capacity, got.Capacity)
		require.True(t, r.Heartbeat.Equal(got.Heartbeat))
	}
	_, err = Decode(fsm.EntityView{ID: "x"})
	require.ErrorIs(t, err, ErrNotFound)
	_, err = Decode(fsm.EntityView{ID: "x", Fields: []fsm.FieldView{{Name: FieldURL, Value: fsm.String("http://x")}, {Name: FieldWorlds, Value: fsm.String("{")}}})
	require.ErrorContains(t, err, "field worlds")
	got, err := Decode(fsm.EntityView{ID: "x", Fields: []fsm.FieldView{{Name: FieldURL, Value: fsm.String("http://x")}, {Name: FieldWorlds, Value: fsm.String("[]")}}})
	require.NoError(t, err)
	require.Nil(t, got.Worlds)
	require.True(t, got.Heartbeat.IsZero())
}

// group is a registry world's leader in memory.
type group struct {
	worlds    map[string]fsm.WorldInfo
	createErr error
	actErr    error
	rejected  bool
	acted     []*fsm.Action
}

func (g *group) World(id string) (fsm.WorldInfo, error) {
	wi, ok := g.worlds[id]
	if !ok {
		return fsm.WorldInfo{}, fsm.ErrUnknownWorld
	}
	return wi, nil
}

func (g *group) CreateWorld(_ context.Context, id string, rules fsm.Rules) error {
	if g.createErr != nil {
		return g.createErr
	}
	g.worlds[id] = fsm.WorldInfo{ID: id, Rules: rules}
	return nil
}

func (g *group) Act(_ context.Context, a *fsm.Action) (*fsm.Event, bool, error) {
	if g.actErr != nil {
		return nil, false, g.actErr
	}
	g.acted = append(g.acted, a)
	st := fsm.StatusApplied
	if g.rejected {
		st = fsm.StatusRejected
	}
	return &fsm.Event{Status: st, Reason: "because"}, false, nil
}

func TestPutCreatesTheWorldAndRemoveNeedsIt(t *testing.T) {
	ctx := context.Background()
	r := Relay{ID: "eu-1", URL: "http://eu-1"}
	g := &group{worlds: map[string]fsm.WorldInfo{}}
	require.ErrorIs(t, Remove(ctx, g, g, "eu-1", "w", 1), ErrNotFound, "no registry yet")
	require.NoError(t, Put(ctx, g, g, r, "w", 1))
	require.NoError(t, CheckWorld(g.worlds[World]))
	require.NoError(t, Remove(ctx, g, g, "eu-1", "w", 2))
	require.Len(t, g.acted, 2)
	require.Equal(t, fsm.OpDelete, g.acted[1].Ops[0].Kind)
	require.ErrorIs(t, Put(ctx, g, g, Relay{ID: "bad id"}, "w", 3), ErrInvalid)
	require.ErrorIs(t, Remove(ctx, g, g, "bad id", "w", 3), ErrInvalid)

	g.rejected = true
	require.ErrorIs(t, Put(ctx, g, g, r, "w", 4), ErrInvalid)
	g.rejected, g.actErr = false, errors.New("no leader")
	require.ErrorContains(t, Put(ctx, g, g, r, "w", 5), "no leader")

	other := &group{worlds: map[string]fsm.WorldInfo{World: {ID: World}}}
	require.ErrorIs(t, Put(ctx, other, other, r, "w", 1), ErrNotRegistry)
	require.ErrorIs(t, Remove(ctx, other, other, "eu-1", "w", 1), ErrNotRegistry)
	require.Empty(t, other.acted)

	failing := &group{worlds: map[string]fsm.WorldInfo{}, createErr: errors.New("disk full")}
	require.ErrorContains(t, Put(ctx, failing, failing, r, "w", 1), "disk full")
	raced := &group{worlds: map[string]fsm.WorldInfo{}, createErr: fsm.ErrWorldExists}
	require.ErrorIs(t, Put(ctx, raced, raced, r, "w", 1), fsm.ErrUnknownWorld, "exists, yet not in this view")
}
