package play

import (
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// goldRules declares gold and trap (apitest.GoldRules, of this
// package's tests' kind).
func goldRules(visible, trap string) fsm.Rules {
	return apitest.GoldRules(fsm.KindString, visible, trap)
}

// TestPlayHubSwitchesRulesAtTheUpdatesEvent: the world's hub (the world
// restricts nothing) and a view's hub (it restricts trap) meet an update
// that hides gold, then actions that write it: the connection gets
// nothing of gold after the update and goes away (resume) there, though
// the rules poll still answers the old version (an hour's TTL). Resumed,
// its hub cuts under the new rules.
func TestPlayHubSwitchesRulesAtTheUpdatesEvent(t *testing.T) {
	for name, trap := range map[string]string{"world hub": "", "view hub": "hidden"} {
		t.Run(name, func(t *testing.T) {
			st := apitest.StartStore(t)
			require.NoError(t, st.CreateWorld(context.Background(), "fog", goldRules("", trap)))
			env := newEnvFor(t, st, fastPlay)
			env.srv.vis.SetRulesTTL(time.Hour)
			c := dialPlay(t, env.WSURL("fog"))
			welcome(t, c, "cat")
			fogSet(t, st, 1, false, "ann", "gold", fsm.String("open-gold"))
			require.Contains(t, readUpTo(t, c, 1), "open-gold")

			v, err := st.UpdateRules(context.Background(), "fog", goldRules("owner", trap), 1)
			require.NoError(t, err)
			require.Equal(t, uint64(2), v)
			for i := range 10 {
				fogSet(t, st, uint64(i+2), false, "ann", "gold", fsm.String("secret-gold"))
			}
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				_, b, err := c.Read(ctx)
				cancel()
				if err != nil {
					require.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(err), "%v", err)
					break
				}
				require.NotContains(t, string(b), "secret-gold")
			}

			c = dialPlay(t, env.WSURL("fog"))
			welcome(t, c, "cat")
			fogSet(t, st, 100, false, "clock", "tick", fsm.Int(1))
			require.NotContains(t, readUpTo(t, c, 13), "secret-gold")
		})
	}
}

// A player's connection on the world's hub that reads alone (catching up,
// or detached: the pusher) is cut at a rules update's event against the
// rules it joined under: the events up to the update are offered, nothing
// after it, and the connection resumes (errRulesChanged); an update to
// rules that still restrict nothing goes on. A view's hub, admins and
// servers are not cut here (their prepared events, or everything visible).
func TestASoloReaderOnTheWorldsHubStopsAtTheRulesUpdatesEvent(t *testing.T) {
	st := apitest.StartStore(t)
	ctx := context.Background()
	require.NoError(t, st.CreateWorld(ctx, "fog", goldRules("", "")))
	env := newEnvFor(t, st, fastPlay)
	env.srv.vis.SetRulesTTL(time.Hour)
	c := &playConn{s: env.srv.Service, world: "fog", player: "cat"}
	pv, rules, err := env.srv.viewOf(c)
	require.NoError(t, err)
	require.Nil(t, pv, "the world restricts nothing: the world's hub")
	c.soloRules = rules
	world := &hub{}

	fogSet(t, st, 1, false, "ann", "gold", fsm.String("open-gold")) // seq 1
	relaxed := goldRules("", "")
	relaxed.Fields["note"] = fsm.FieldRule{Type: fsm.KindString, Policy: fsm.PolicyAuthoritative}
	_, err = st.UpdateRules(ctx, "fog", relaxed, 1) // seq 2: still nothing restricted
	require.NoError(t, err)
	events := func(from, to uint64) []*fsm.Event {
		var evs []*fsm.Event
		for i := from; i <= to; i++ {
			ev, ok := st.Event("fog", i)
			require.True(t, ok, "seq %d", i)
			evs = append(evs, ev)
		}
		return evs
	}
	n, end := c.soloCut(world, events(1, 2))
	require.NoError(t, end)
	require.Equal(t, 2, n)
	require.Equal(t, uint64(2), c.soloRules.Version, "the relaxed update goes on")

	hidden := goldRules("owner", "")
	hidden.Fields["note"] = relaxed.Fields["note"]
	_, err = st.UpdateRules(ctx, "fog", hidden, 2) // seq 3: gold hidden
	require.NoError(t, err)
	for i := range 3 {
		fogSet(t, st, uint64(i+2), false, "ann", "gold", fsm.String("secret-gold")) // seqs 4..6
	}
	evs := events(3, 6)
	for _, role := range []string{fsm.RoleAdmin, fsm.RoleServer} {
		admin := &playConn{s: env.srv.Service, world: "fog", role: role, soloRules: c.soloRules}
		n, end := admin.soloCut(world, evs)
		require.Equal(t, len(evs), n, role)
		require.NoError(t, end, role)
	}
	n, end = c.soloCut(&hub{pv: &playView{}}, evs)
	require.Equal(t, len(evs), n, "a view's hub: its prepared events refuse what follows")
	require.NoError(t, end)

	n, end = c.soloCut(world, evs)
	require.ErrorIs(t, end, errRulesChanged)
	require.Equal(t, 1, n, "up to the update that hides gold, it included")

	// A reader still behind the relaxed update when the rules have moved
	// past it cannot tell what its version allowed: it ends there (and
	// resumes under the rules of now).
	late := &playConn{s: env.srv.Service, world: "fog", player: "cat", soloRules: rules}
	n, end = late.soloCut(world, events(1, 6))
	require.ErrorIs(t, end, errRulesChanged)
	require.Equal(t, 2, n)
}
