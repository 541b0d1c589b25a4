package relay

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// moveX sets entity e's x in world "moving" to x and returns the seq.
func (n *node) moveX(t *testing.T, e string, x float64) uint64 {
	t.Helper()
	n.seq++
	b := n.do(t, http.MethodPost, "/v1/worlds/moving/actions",
		fmt.Sprintf(`{"seq":%d,"ops":[{"op":"set","entity":%q,"field":"x","value":%v}]}`, n.seq, e, x), http.StatusOK)
	require.Contains(t, string(b), `"status":"applied"`)
	return n.seq
}

// TestRelaysRoundAQuantisedFieldAsTheNodeDoesAndPassEventsWhole: a
// world whose x spectators get to 0.5. The node's watch stream, a
// relay's and a relay of that relay's show x rounded; the event streams
// (what relays follow, verifiable against the audit tree) carry it whole.
func TestRelaysRoundAQuantisedFieldAsTheNodeDoesAndPassEventsWhole(t *testing.T) {
	n := startNode(t)
	n.do(t, http.MethodPost, "/v1/worlds", `{"id":"moving","rules":{"fields":{
		"x":{"type":"float","policy":"authoritative","quantum":0.5}}}}`, http.StatusCreated)
	public := token(t, "relay", "")
	_, r1 := startRelay(t, n.url, public, nil)
	_, r2 := startRelay(t, r1, "", nil)
	n.moveX(t, "e", 10.3)
	n.moveX(t, "e", 10.6) // within the quantum: 10.5 still
	last := n.moveX(t, "e", 11.3)
	for _, c := range []struct{ base, tok string }{{n.url, public}, {r1, ""}, {r2, ""}} {
		k := watchState(t, dialWorld(t, c.base, c.tok, "moving", ""), last)
		require.Equal(t, wire.WatchField{Value: &wire.Value{Kind: wire.KindFloat, Float: 11.5}, Version: last},
			k.Entities["e"].Fields["x"], "watch of %s", c.base)
		evs := readEventsWorld(t, c.base, c.tok, "moving", 1, last)
		require.Contains(t, string(evs), `"value":11.3`, "events of %s are whole", c.base)
		require.Contains(t, string(evs), `"value":10.6`, "events of %s are whole", c.base)
	}
}
