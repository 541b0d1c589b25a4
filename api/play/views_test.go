package play

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

var fogRules = fsm.Rules{Schema: fsm.Schema{
	Access: map[string]fsm.FieldAccess{"gold": {Visible: "owner"}, "plan": {Visible: "team"}, "trap": {Visible: "hidden"}},
	Teams:  fsm.TeamRule{From: "field", Key: "team"},
}}

func fogSet(t *testing.T, st *store.Store, seq uint64, bulk bool, entity, field string, v fsm.Value) {
	t.Helper()
	p := fsm.PriorityCritical
	if bulk {
		p = fsm.PriorityBulk
	}
	_, _, err := st.Act(context.Background(), &fsm.Action{World: "fog", Player: "gm", Seq: seq, Priority: p,
		Ops: []fsm.Op{{Kind: fsm.OpSet, Entity: entity, Field: field, Value: v}}})
	require.NoError(t, err)
}

// readUpTo reads a connection's messages until one covers seq and returns
// every byte of the events and delta messages read.
func readUpTo(t *testing.T, c *websocket.Conn, seq uint64) string {
	t.Helper()
	var all string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, b, err := c.Read(ctx)
		cancel()
		require.NoError(t, err)
		m := map[string]any{}
		require.NoError(t, json.Unmarshal(b, &m))
		if m["type"] == "events" || m["type"] == "delta" {
			all += string(b)
			if s, _ := m["seq"].(float64); uint64(s) >= seq {
				return all
			}
		}
	}
}

func TestPlayStreamsCutEachPlayersFramesToItsView(t *testing.T) {
	st := apitest.StartStore(t)
	require.NoError(t, st.CreateWorld(context.Background(), "fog", fsm.Rules{}))
	rs := apitest.NewRuledStore(st, fogRules)
	env := newEnvFor(t, rs, fastPlay)
	conns := map[string]*websocket.Conn{}
	for _, p := range []string{"ann", "bob", "cat"} {
		conns[p] = dialPlay(t, env.WSURL("fog"))
		welcome(t, conns[p], p)
	}
	fogSet(t, st, 1, false, "ann", "team", fsm.String("red"))
	fogSet(t, st, 2, false, "bob", "team", fsm.String("red"))
	fogSet(t, st, 3, false, "cat", "team", fsm.String("blue"))
	fogSet(t, st, 4, false, "ann", "gold", fsm.String("ann-gold"))
	fogSet(t, st, 5, false, "base", "owner", fsm.String("ann"))
	fogSet(t, st, 6, false, "base", "plan", fsm.String("red-plan"))
	fogSet(t, st, 7, false, "base", "trap", fsm.String("the-trap"))
	fogSet(t, st, 8, true, "ann", "gold", fsm.String("ann-bulk-gold")) // coalesced: a delta
	fogSet(t, st, 9, true, "base", "plan", fsm.String("red-bulk-plan"))
	fogSet(t, st, 10, false, "clock", "tick", fsm.Int(1))
	for p, c := range map[string]struct{ sees, hidden []string }{
		"ann": {[]string{"ann-gold", "red-plan", "ann-bulk-gold", "red-bulk-plan"}, []string{"the-trap", "trap"}},
		"bob": {[]string{"red-plan", "red-bulk-plan"}, []string{"gold", "the-trap", "trap"}},
		"cat": {nil, []string{"gold", "plan", "trap", "red-plan"}},
	} {
		got := readUpTo(t, conns[p], 10)
		for _, s := range c.sees {
			require.Contains(t, got, s, p)
		}
		for _, s := range c.hidden {
			require.NotContains(t, got, s, p)
		}
	}
	env.srv.hubMu.Lock()
	views, worlds := len(env.srv.viewHubs), len(env.srv.hubs)
	env.srv.hubMu.Unlock()
	require.Equal(t, 3, views, "a hub per view")
	require.Equal(t, 0, worlds, "no unfiltered hub")
}

func TestPlayConnectionsResumeWhenTheRulesRestrictAField(t *testing.T) {
	st := apitest.StartStore(t)
	require.NoError(t, st.CreateWorld(context.Background(), "fog", fsm.Rules{}))
	rs := apitest.NewRuledStore(st, fsm.Rules{})
	env := newEnvFor(t, rs, fastPlay)
	c := dialPlay(t, env.WSURL("fog"))
	welcome(t, c, "cat")
	fogSet(t, st, 1, false, "ann", "gold", fsm.String("open-gold"))
	require.Contains(t, readUpTo(t, c, 1), "open-gold")
	rs.SetRules(fogRules)
	require.Eventually(t, func() bool { v, _ := env.srv.vis.RulesVersion("fog", edge.RulesRef{}); return v.Version == 2 }, 5*time.Second, time.Millisecond)
	fogSet(t, st, 2, false, "ann", "gold", fsm.String("secret-gold"))
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, b, err := c.Read(ctx)
		cancel()
		if err != nil {
			require.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(err), "%v", err)
			return
		}
		require.NotContains(t, string(b), "secret-gold")
	}
}

// The answer to a player's action shows no more than its play stream: a
// failed expect on a field it may not see does not answer its value.
func TestPlayResultsShowOnlyWhatThePlayerMaySee(t *testing.T) {
	st := apitest.StartStore(t)
	require.NoError(t, st.CreateWorld(context.Background(), "fog", fsm.Rules{}))
	rs := apitest.NewRuledStore(st, fogRules)
	env := newEnvFor(t, rs, fastPlay)
	fogSet(t, st, 1, false, "ann", "gold", fsm.String("ann-gold"))
	probe := json.RawMessage(`{"seq":1,"ops":[{"op":"set","entity":"ann","field":"gold","value":"x","expect":"*"}]}`)
	for p, see := range map[string]bool{"cat": false, "ann": true} {
		c := dialPlay(t, env.WSURL("fog"))
		welcome(t, c, p)
		wsSend(t, c, map[string]any{"type": "action", "action": probe})
		m := recvType(t, c, "result")
		ev := m["event"].(map[string]any)
		require.Equal(t, "conflict", ev["status"], p)
		b, err := json.Marshal(m)
		require.NoError(t, err)
		require.Equal(t, see, strings.Contains(string(b), "ann-gold"), "%s: %s", p, b)
	}
}

// A world's rules may set its interest grid; the node has none.
func TestPlayInterestGridFromTheWorldsRules(t *testing.T) {
	st := apitest.StartStore(t)
	require.NoError(t, st.CreateWorld(context.Background(), "fog", fsm.Rules{}))
	grid := fsm.Rules{Schema: fsm.Schema{Interest: fsm.InterestRule{Cell: 10, X: "x", Y: "y"}}}
	rs := apitest.NewRuledStore(st, grid)
	env := newEnvFor(t, rs, fastPlay)
	seq := uint64(0)
	move := func(entity string, x, y int64) uint64 {
		t.Helper()
		seq++
		ev, _, err := st.Act(context.Background(), &fsm.Action{World: "fog", Player: "gm", Seq: seq, Ops: []fsm.Op{
			{Kind: fsm.OpSet, Entity: entity, Field: "x", Value: fsm.Int(x)},
			{Kind: fsm.OpSet, Entity: entity, Field: "y", Value: fsm.Int(y)}}})
		require.NoError(t, err)
		return ev.Seq
	}
	move("ann", 0, 0)
	move("bob", 100, 100)
	conns := map[string]*websocket.Conn{}
	for _, p := range []string{"ann", "bob"} {
		conns[p] = dialPlay(t, env.WSURL("fog"))
		welcome(t, conns[p], p)
	}
	move("rock", 1, 1)
	fogSet(t, st, 100, false, "clock", "tick", fsm.Int(1)) // global: no position
	last := seq + 1
	require.Contains(t, readUpTo(t, conns["ann"], last), `"rock"`)
	require.NotContains(t, readUpTo(t, conns["bob"], last), `"rock"`)
}
