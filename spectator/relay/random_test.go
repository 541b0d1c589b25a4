package relay

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// A random game on a real node (sets, counters, set fields, hidden
// fields, deletes and re-creations): the public view's state on a relay
// of a relay equals the node's at the same seq, and no hidden value
// reaches the relays' streams; nor does it on a relay that keeps only
// the state of most of the game. Their aggregated views are the node's
// for the view at that seq, and the hidden field's is on none of them.
func TestRelayStateEqualsTheNodesOverARandomGame(t *testing.T) {
	n := startNode(t)
	n.do(t, http.MethodPost, "/v1/worlds", `{"id":"chaos","rules":{"fields":{
		"hp":{"type":"int","policy":"authoritative"},
		"kills":{"type":"int","policy":"counter"},
		"tags":{"type":"string","policy":"set"},
		"plan":{"type":"string","policy":"authoritative","visible":"hidden"},
		"loot":{"type":"string","policy":"set","visible":"hidden"}},
		"views":{"hp":{"kind":"sum","field":"hp"},"killers":{"kind":"max","field":"kills","by":"player"},
			"tagged":{"kind":"count","field":"tags"},"plans":{"kind":"count","field":"plan"}}}}`, http.StatusCreated)
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("seed %d", seed)
	ents := []string{"a", "b", "c", "d"}
	var last uint64
	for i := range 60 {
		e := ents[rng.IntN(len(ents))]
		var op string
		switch rng.IntN(7) {
		case 0:
			op = fmt.Sprintf(`{"op":"set","entity":%q,"field":"hp","value":%d}`, e, rng.IntN(100))
		case 1:
			op = fmt.Sprintf(`{"op":"incr","entity":%q,"field":"kills","by":%d}`, e, rng.IntN(5)+1)
		case 2:
			op = fmt.Sprintf(`{"op":"add","entity":%q,"field":"tags","value":"t%d"}`, e, rng.IntN(3))
		case 3:
			op = fmt.Sprintf(`{"op":"remove","entity":%q,"field":"tags","value":"t%d"}`, e, rng.IntN(3))
		case 4:
			op = fmt.Sprintf(`{"op":"set","entity":%q,"field":"plan","value":"secret-plan-%d"}`, e, i)
		case 5:
			op = fmt.Sprintf(`{"op":"add","entity":%q,"field":"loot","value":"secret-loot-%d"}`, e, i)
		default:
			op = fmt.Sprintf(`{"op":"delete","entity":%q}`, e)
		}
		b := n.do(t, http.MethodPost, "/v1/worlds/chaos/actions", fmt.Sprintf(`{"seq":%d,"ops":[%s]}`, i+1, op), http.StatusOK)
		var ev wire.Event
		require.NoError(t, json.Unmarshal(b, &ev))
		last = ev.Seq
	}
	viewer := token(t, "relay", "")
	_, r1 := startRelay(t, n.url, viewer, nil)
	_, r2 := startRelay(t, r1, "", nil)
	_, r3 := startRelay(t, n.url, viewer, func(c *Config) { c.MaxEvents = 5 }) // seeds from what it dropped
	// A last event every view sees marks the end.
	mark := n.do(t, http.MethodPost, "/v1/worlds/chaos/actions", `{"seq":1000,"ops":[{"op":"set","entity":"z","field":"hp","value":1}]}`, http.StatusOK)
	var ev wire.Event
	require.NoError(t, json.Unmarshal(mark, &ev))
	require.Equal(t, last+1, ev.Seq)

	nodeState := watchState(t, dialWorld(t, n.url, viewer, "chaos", ""), ev.Seq)
	require.Contains(t, nodeState.Entities, "z")
	nodeViews := chaosViewsAt(t, n.url, viewer, ev.Seq)
	require.Equal(t, []string{"hp", "killers", "tagged"}, sortedNames(nodeViews))
	for _, base := range []string{r1, r2} {
		got := watchState(t, dialWorld(t, base, "", "chaos", ""), ev.Seq)
		require.Equal(t, nodeState.Seq, got.Seq)
		require.Equal(t, nodeState.Entities, got.Entities, "seed %d", seed)
		require.Equal(t, nodeViews, chaosViewsAt(t, base, "", ev.Seq), "seed %d", seed)
		events := string(readEventsWorld(t, base, "", "chaos", 1, ev.Seq))
		require.False(t, strings.Contains(events, "secret-"), "a hidden value on a relay: %s", events)
	}
	// The relay that holds 5 events: its first viewer makes it read the
	// game, the next starts from the state of what it dropped.
	readEventsWorld(t, r3, "", "chaos", ev.Seq, ev.Seq)
	got := watchState(t, dialWorld(t, r3, "", "chaos", ""), ev.Seq)
	require.Equal(t, nodeState.Entities, got.Entities, "seed %d", seed)
	require.Equal(t, nodeViews, chaosViewsAt(t, r3, "", ev.Seq), "seed %d", seed)
}

// chaosViewsAt polls base's views of chaos as tok until they are at seq.
func chaosViewsAt(t *testing.T, base, tok string, seq uint64) map[string]wire.ViewFrame {
	t.Helper()
	var vs wire.Views
	require.Eventually(t, func() bool {
		st, b := getViews(t, base, tok, "/v1/worlds/chaos/views")
		require.Equal(t, http.StatusOK, st, "%s", b)
		vs = wire.Views{}
		require.NoError(t, json.Unmarshal(b, &vs))
		return vs.Seq >= seq
	}, 20*time.Second, 10*time.Millisecond)
	require.Equal(t, seq, vs.Seq)
	return vs.Views
}

func sortedNames(m map[string]wire.ViewFrame) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
