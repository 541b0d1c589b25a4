package streams

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

// goldRules declares gold and trap (apitest.GoldRules, of this
// package's tests' kind).
func goldRules(visible, trap string) fsm.Rules {
	return apitest.GoldRules(fsm.KindInt, visible, trap)
}

// newRulesEnv serves the streams of a real store (rules updates go
// through the log, log version 12) whose world fog has rules, with a
// rules poll that would answer the old version for an hour.
func newRulesEnv(t *testing.T, rules fsm.Rules) (*fogEnv, *store.Store) {
	t.Helper()
	node := apitest.StartStore(t)
	require.NoError(t, node.CreateWorld(context.Background(), "fog", rules))
	cfg := apitest.Config()
	cfg.Auth = apitest.Auth()
	core := apitest.Core(t, node, &cfg)
	s, err := New(core)
	require.NoError(t, err)
	s.views.vis.SetRulesTTL(time.Hour)
	mux := http.NewServeMux()
	s.Register(mux)
	ts := httptest.NewServer(core.Handler(mux))
	t.Cleanup(func() { core.Close(); ts.Close(); s.Close() })
	return &fogEnv{s: s, url: ts.URL}, node
}

func setGold(t *testing.T, node *store.Store, seq uint64, gold int64) {
	t.Helper()
	a := &fsm.Action{World: "fog", Player: "gm", Seq: seq, Ops: []fsm.Op{{Kind: fsm.OpSet, Entity: "ann", Field: "gold", Value: fsm.Int(gold)}}}
	require.Eventually(t, func() bool { _, _, err := node.Act(context.Background(), a); return err == nil }, 10*time.Second, 10*time.Millisecond)
}

// TestEventStreamSwitchesRulesAtTheUpdatesEvent: a stream cut to a view
// (the world restricts a field), and one that sends every event (the
// world restricts none), meet an update that hides gold, then events
// that write it. Each writes the events up to the update, the update's
// event itself (its notice), then ends with rules_changed: no byte of
// gold after the update, though the rules poll still answers the old
// version (an hour's TTL). Opened again after it, the stream cuts under
// the new rules.
func TestEventStreamSwitchesRulesAtTheUpdatesEvent(t *testing.T) {
	for name, trap := range map[string]string{"filtered": "hidden", "every event": ""} {
		t.Run(name, func(t *testing.T) {
			e, node := newRulesEnv(t, goldRules("", trap))
			setGold(t, node, 1, 10)
			sc := e.open(t, "", token(t, "cat", ""))
			require.Contains(t, next(t, sc).raw, `"gold"`, "seq 1: gold shows to all")

			v, err := node.UpdateRules(context.Background(), "fog", goldRules("hidden", trap), 1)
			require.NoError(t, err)
			require.Equal(t, uint64(2), v)
			for i := range 20 {
				setGold(t, node, uint64(i+2), 777)
			}
			l := next(t, sc)
			require.Equal(t, uint64(2), l.Seq, l.raw)
			require.Contains(t, l.raw, `"notice":{"kind":"rules","rules_version":2}`)
			l = next(t, sc)
			require.Equal(t, edge.CodeUnavailable, l.Code, l.raw)
			require.Contains(t, l.raw, "rules changed")
			require.False(t, sc.Scan(), "the stream ended: %s", sc.Text())

			again := e.openFrom(t, 1, "", token(t, "cat", "")) // past its own rules' update
			setGold(t, node, 100, 1)                           // seq 23: gold again, nothing for cat
			a := &fsm.Action{World: "fog", Player: "gm", Seq: 101, Ops: []fsm.Op{{Kind: fsm.OpSet, Entity: "ann", Field: "tick", Value: fsm.Int(5)}}}
			_, _, err = node.Act(context.Background(), a)
			require.NoError(t, err)
			for {
				l := next(t, again)
				require.Empty(t, l.Code, l.raw)
				require.NotContains(t, l.raw, `"gold"`)
				if l.Seq == 2 {
					require.Contains(t, l.raw, `"kind":"rules"`)
				}
				if l.Seq == 24 {
					require.Contains(t, l.raw, `"tick"`)
					break
				}
			}
		})
	}
}

// TestEventStreamOfAnOpenWorldGoesOnPastAnUpdateThatRestrictsNothing: a
// stream that sends every event goes on past the event of an update
// whose rules still restrict nothing.
func TestEventStreamOfAnOpenWorldGoesOnPastAnUpdateThatRestrictsNothing(t *testing.T) {
	e, node := newRulesEnv(t, goldRules("", ""))
	setGold(t, node, 1, 10)
	sc := e.open(t, "", token(t, "cat", ""))
	require.Contains(t, next(t, sc).raw, `"gold"`)
	open := goldRules("", "")
	open.Strict = true
	_, err := node.UpdateRules(context.Background(), "fog", open, 1)
	require.NoError(t, err)
	setGold(t, node, 2, 11)
	require.Contains(t, next(t, sc).raw, `"kind":"rules"`)
	l := next(t, sc)
	require.Equal(t, uint64(3), l.Seq, l.raw)
	require.Contains(t, l.raw, `"gold"`)
}

// TestDelayedEventStreamEndsAtTheRulesUpdatesEvent: a delayed view's
// stream (it reads the feed on its own, through the delay) writes the
// update's event and ends there too.
func TestDelayedEventStreamEndsAtTheRulesUpdatesEvent(t *testing.T) {
	delayed := func(visible string) fsm.Rules {
		r := goldRules(visible, "hidden")
		r.Schema.Viewers = map[string]fsm.ViewerRule{"caster": {Delay: fsm.Duration(10 * time.Millisecond)}}
		return r
	}
	e, node := newRulesEnv(t, delayed(""))
	setGold(t, node, 1, 10)
	sc := e.openFrom(t, 1, "&view=caster", token(t, "c1", "caster"))
	require.Contains(t, next(t, sc).raw, `"gold"`)
	_, err := node.UpdateRules(context.Background(), "fog", delayed("hidden"), 1)
	require.NoError(t, err)
	for i := range 5 {
		setGold(t, node, uint64(i+2), 777)
	}
	require.Contains(t, next(t, sc).raw, `"kind":"rules"`)
	l := next(t, sc)
	require.Equal(t, edge.CodeUnavailable, l.Code, l.raw)
	require.Contains(t, l.raw, "rules changed")
}
