package shard

import (
	"context"
	"errors"
	"testing"

	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

// testService records its Close and closes its Layer, as a Service must.
type testService struct {
	layer  *Layer
	closed int
	err    error
}

func (s *testService) Close(context.Context) error {
	s.closed++
	s.layer.Close()
	return s.err
}

func TestManagerRunsAServiceUnderItsOwnGroup(t *testing.T) {
	mux := groupMux(t)
	m := newTestManager(t, "n1", t.TempDir(), mux)
	var svc *testService
	got, err := m.OpenService(MetaGroup, func(l *Layer, dir string) (Service, error) {
		require.Equal(t, MetaGroup, l.Group())
		require.Equal(t, GroupDir(m.cfg.DataDir, MetaGroup), dir)
		svc = &testService{layer: l}
		return svc, nil
	})
	require.NoError(t, err)
	require.Same(t, svc, got)
	_, err = m.Open(MetaGroup, GroupOptions{})
	require.ErrorIs(t, err, ErrGroupTaken, "a store cannot take a service's group")
	_, err = m.OpenService(MetaGroup, func(*Layer, string) (Service, error) { t.Fatal("started twice"); return nil, nil })
	require.ErrorIs(t, err, ErrGroupTaken)
	_, ok := m.Group(MetaGroup)
	require.False(t, ok, "a service is not a Store")
	require.Empty(t, m.Groups())

	svc.err = errors.New("boom")
	require.ErrorContains(t, m.CloseGroup(context.Background(), MetaGroup), "boom")
	require.Equal(t, 1, svc.closed)
	require.ErrorIs(t, m.CloseGroup(context.Background(), MetaGroup), ErrUnknownGroup)

	// The group is free again; Close stops it with the Manager.
	_, err = m.OpenService(MetaGroup, func(l *Layer, _ string) (Service, error) {
		svc = &testService{layer: l}
		return svc, nil
	})
	require.NoError(t, err)
	require.NoError(t, m.Close(context.Background()))
	require.Equal(t, 1, svc.closed)
	_, err = m.OpenService(7, func(*Layer, string) (Service, error) { t.Fatal("started after Close"); return nil, nil })
	require.ErrorIs(t, err, ErrClosed)
}

func TestManagerServiceThatFailsToStartFreesItsGroup(t *testing.T) {
	m := newTestManager(t, "n1", t.TempDir(), groupMux(t))
	_, err := m.OpenService(MetaGroup, func(l *Layer, _ string) (Service, error) {
		l.Close()
		return nil, errors.New("no disk")
	})
	require.ErrorContains(t, err, "no disk")
	_, err = m.OpenService(MetaGroup, func(l *Layer, _ string) (Service, error) { return &testService{layer: l}, nil })
	require.NoError(t, err)
}

func TestShardMapRefusesTheMetaGroupsID(t *testing.T) {
	m := Map{Nodes: map[string]MapNode{"n1": {Raft: "h:1", HTTP: "h:2"}}, Shards: []MapShard{{ID: MetaGroup, Voters: []string{"n1"}}}}
	require.ErrorIs(t, m.Validate(), ErrBadMap)
	require.ErrorContains(t, m.Validate(), "reserved for the meta group")
}

// hintSource is a MapSource whose view a test sets.
type hintSource struct{ v *View }

func (s *hintSource) View() *View { return s.v }

// A node that does not run a world's group routes it to the leader the
// map's hints name; a hint naming itself, or a node the map has no
// address for, is no answer.
func TestRouterUsesTheMapsLeaderHintForAGroupItDoesNotRun(t *testing.T) {
	c := newShardCluster(t, 2, Map{
		Shards: []MapShard{{ID: 0, Voters: []string{"n1"}}, {ID: 5, Voters: []string{"n2"}}},
		Worlds: map[string]uint64{"here": 0, "there": 5},
	})
	src := &hintSource{v: &View{Map: c.smap, Leaders: map[uint64]string{5: "n2"}}}
	r := NewRouterWith(c.mgrs["n1"], src)
	loc, err := r.Locate("there")
	require.NoError(t, err)
	require.Equal(t, Location{Group: 5, Node: "n2", Addr: "http-n2:80"}, loc)

	src.v = &View{Map: c.smap, Leaders: map[uint64]string{5: "n1"}}
	_, err = r.Locate("there")
	require.ErrorIs(t, err, ErrUnknownGroup, "n1 does not run group 5: the hint is stale")
	src.v = &View{Map: c.smap, Leaders: map[uint64]string{5: "n9"}}
	_, err = r.Locate("there")
	require.ErrorIs(t, err, ErrUnknownGroup, "no address for n9")

	// A map without shards places no world; the membership group still routes.
	src.v = &View{Map: &Map{Nodes: c.smap.Nodes}}
	_, err = r.Locate("there")
	require.ErrorIs(t, err, store.ErrNotLeader)
	require.ErrorContains(t, err, "no shards yet")
	b, err := NewBackend(r)
	require.NoError(t, err)
	_, err = b.World("there")
	require.ErrorIs(t, err, store.ErrNotLeader)
	c.leader("here")
	loc, err = r.Locate("")
	require.NoError(t, err)
	require.Equal(t, uint64(0), loc.Group)
}
