package relay

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
)

// play commits a small game on n: score changes on three entities and a
// secret set with and without a visible change (an event the public
// view sees nothing of). It returns the last seq a public viewer sees.
func play(t *testing.T, n *node, secret string) uint64 {
	t.Helper()
	n.act(t, "e1", 1, "")
	n.act(t, "e2", 5, secret)
	n.act(t, "e3", 0, secret) // hidden whole from the public view
	n.act(t, "e1", 2, "")
	return n.act(t, "e3", 7, "")
}

// The relay's event stream is the node's, byte for byte, for the same
// view, and so is a relay's of the relay (chaining); the hidden field
// never reaches either relay.
func TestRelayEventStreamIsTheNodesByteForByteAndChains(t *testing.T) {
	n := startNode(t)
	last := play(t, n, "the-dragon-sleeps")
	viewer := token(t, "relay", "")
	_, r1 := startRelay(t, n.url, viewer, nil)
	_, r2 := startRelay(t, r1, "", nil)

	want := readEvents(t, n.url, viewer, 1, last)
	require.NotContains(t, string(want), "the-dragon-sleeps")
	require.NotContains(t, string(want), "secret")
	require.Equal(t, []uint64{1, 2, 4, 5}, seqs(t, want), "seq 3 holds nothing the public view sees")
	require.Equal(t, string(want), string(readEvents(t, r1, "", 1, last)))
	require.Equal(t, string(want), string(readEvents(t, r2, "", 1, last)))

	// New events reach the chain's end as they commit.
	more := n.act(t, "e2", 3, "")
	want = readEvents(t, n.url, viewer, last+1, more)
	require.Equal(t, string(want), string(readEvents(t, r2, "", last+1, more)))
}

// A watcher of a relay (and of a relay's relay) sees the node's state of
// the view at the same seq, and in events mode the same events.
func TestRelayWatchShowsTheNodesStateAndEvents(t *testing.T) {
	n := startNode(t)
	last := play(t, n, "hidden-plan")
	viewer := token(t, "relay", "")
	_, r1 := startRelay(t, n.url, viewer, nil)
	_, r2 := startRelay(t, r1, "", nil)

	onNode := watchState(t, dial(t, n.url, viewer, ""), last)
	for _, base := range []string{r1, r2} {
		got := watchState(t, dial(t, base, "", ""), last)
		require.Equal(t, onNode.Seq, got.Seq)
		require.Equal(t, onNode.Entities, got.Entities)
		b, err := json.Marshal(got)
		require.NoError(t, err)
		require.NotContains(t, string(b), "secret")
	}

	// Events mode: the events after both keyframes are the node's.
	nodeEvs := dial(t, n.url, viewer, "?mode=events")
	relayEvs := dial(t, r2, "", "?mode=events")
	n.act(t, "e1", 4, "x")
	n.act(t, "e2", 0, "y")
	end := n.act(t, "e2", 1, "")
	want := watchEvents(t, nodeEvs, last, end)
	require.Equal(t, want, watchEvents(t, relayEvs, last, end))
	require.Len(t, want, 2, "the secret-only event is not the public view's")
}

// The upstream dropped mid-stream: the relay resumes from the seq after
// the last it holds, so its stream has every event once, in order.
func TestRelayResumesBySeqAfterTheUpstreamDrops(t *testing.T) {
	n := startNode(t)
	viewer := token(t, "relay", "")
	cut, proxy := newCutter(t, n.url)
	r, base := startRelay(t, proxy, viewer, nil)
	first := play(t, n, "s1")
	readEvents(t, base, "", 1, first) // the relay follows the node through the proxy
	for round := range 3 {
		require.Positive(t, cut.cut(), "round %d: a stream to drop", round)
		last := play(t, n, "s2")
		readEvents(t, base, "", last, last)
	}
	last := n.act(t, "e1", 1, "")
	want := readEvents(t, n.url, viewer, 1, last)
	got := readEvents(t, base, "", 1, last)
	require.Equal(t, string(want), string(got))
	require.Len(t, seqs(t, got), 4*4+1)
	metrics := scrape(t, base)
	require.Contains(t, metrics, "gsd_relay_upstream_reconnects_total")
	require.NotContains(t, metrics, "gsd_relay_upstream_reconnects_total 0\n")
	_ = r
}

// A relay receives only what its token's class may see: asking the
// upstream for another class is refused, and the refusal is the viewer's
// answer; a viewer cannot ask the relay for another view or a player's.
func TestRelayTokenCannotAskForMoreThanItsView(t *testing.T) {
	n := startNode(t)
	play(t, n, "s")
	_, base := startRelay(t, n.url, token(t, "relay", ""), func(c *Config) { c.View = "ref" })
	code, body := get(t, base+"/v1/worlds/arena/events?from=1")
	require.Equal(t, http.StatusForbidden, code, "%s", body)
	require.Contains(t, body, `"code":"forbidden"`)

	_, base = startRelay(t, n.url, token(t, "relay", ""), nil)
	for _, q := range []string{"?view=ref", "?player=p1", "?delay=nope", "?mode=fast"} {
		code, body = get(t, base+"/v1/worlds/arena/watch"+q)
		require.Equal(t, http.StatusBadRequest, code, "%s: %s", q, body)
	}
	for _, q := range []string{"?view=ref", "?from=x", "?linger=1h"} {
		code, body = get(t, base+"/v1/worlds/arena/events"+q)
		require.Equal(t, http.StatusBadRequest, code, "%s: %s", q, body)
	}
	code, body = get(t, base+"/v1/worlds/nowhere/watch")
	require.Equal(t, http.StatusNotFound, code, "%s", body)

	// The ref class's relay sees the secret: the class decides, not the
	// relay.
	ref := token(t, "relay", "ref")
	_, base = startRelay(t, n.url, ref, func(c *Config) { c.View = "ref" })
	last := n.act(t, "e9", 1, "for-refs")
	got := readEvents(t, base, "", 1, last)
	require.Contains(t, string(got), "for-refs")
	require.Equal(t, string(readEventsQ(t, n.url, ref, "&view=ref", 1, last)), string(got))
}

// A full relay refuses a viewer with 503 and Retry-After; one leaving
// makes room.
func TestRelayRefusesViewersBeyondItsBound(t *testing.T) {
	n := startNode(t)
	play(t, n, "s")
	r, base := startRelay(t, n.url, token(t, "relay", ""), func(c *Config) { c.MaxViewers = 1; c.RetryAfter = 3 * time.Second })
	c := dial(t, base, "", "")
	watchState(t, c, 1)
	require.Equal(t, 1, r.Viewers())
	resp, err := http.Get(base + "/v1/worlds/arena/events?from=1")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, "3", resp.Header.Get("Retry-After"))
	require.Contains(t, string(b), `"code":"overloaded"`)
	c.CloseNow()
	require.Eventually(t, func() bool { return r.Viewers() == 0 }, 10*time.Second, 5*time.Millisecond)
	readEvents(t, base, "", 1, 1)
	metrics := scrape(t, base)
	for _, m := range []string{"gsd_relay_viewers", "gsd_relay_refused_total 1", "gsd_relay_bytes_sent_total", "gsd_relay_upstream_lag_seconds{world=\"arena\"}"} {
		require.Contains(t, metrics, m)
	}
}

// A relay holding MaxEvents answers a position older than them with
// 410 archive_gap, as a node whose archive dropped it; its watchers start
// from the state of what it dropped.
func TestRelayAnswersArchiveGapBeforeWhatItHolds(t *testing.T) {
	n := startNode(t)
	last := play(t, n, "s")
	_, base := startRelay(t, n.url, token(t, "relay", ""), func(c *Config) { c.MaxEvents = 2 })
	got := readEvents(t, base, "", last, last)
	require.Equal(t, []uint64{last}, seqs(t, got))
	code, body := get(t, base+"/v1/worlds/arena/events?from=1")
	require.Equal(t, http.StatusGone, code, "%s", body)
	require.Contains(t, body, `"code":"archive_gap"`)
	// A watch starts from the state of the events the relay dropped: the
	// node's state at the same seq.
	viewer := token(t, "relay", "")
	more := n.act(t, "e1", 10, "")
	onNode := watchState(t, dial(t, n.url, viewer, ""), more)
	k := watchState(t, dial(t, base, "", ""), more)
	require.Equal(t, onNode.Entities, k.Entities)
	// A delay that this state is too new for has nothing to start from:
	// the watch closes with CloseGone, or is refused with 410 before the
	// upgrade when the relay already knows (a pipeline for that delay that
	// ended before the dial).
	c, resp, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(base, "http")+"/v1/worlds/arena/watch?delay=300s", nil)
	if err != nil {
		require.NotNil(t, resp, "%v", err)
		require.Equal(t, http.StatusGone, resp.StatusCode, "%v", err)
		return
	}
	defer c.CloseNow()
	for err == nil {
		_, _, err = c.Read(t.Context())
	}
	require.Equal(t, CloseGone, websocket.CloseStatus(err), "%v", err)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func scrape(t *testing.T, base string) string {
	t.Helper()
	code, body := get(t, base+"/metrics")
	require.Equal(t, http.StatusOK, code)
	return body
}

// A real node's rules change hides a field the relay's view saw: the
// relay's watchers are told to join again (4409), and what they see then
// is cut under the new rules, history included.
func TestRelayFollowsARulesChangeOnARealNode(t *testing.T) {
	n := startNode(t)
	last := n.act(t, "e1", 1, "")
	n.do(t, http.MethodPost, "/v1/worlds/arena/actions", `{"seq":100,"ops":[{"op":"set","entity":"e1","field":"motto","value":"once-public"}]}`, http.StatusOK)
	last++
	viewer := token(t, "relay", "")
	_, base := startRelay(t, n.url, viewer, nil)
	c := dial(t, base, "", "")
	k := watchState(t, c, last)
	require.Contains(t, k.Entities["e1"].Fields, "motto")

	n.do(t, http.MethodPut, "/v1/worlds/arena/rules", `{"rules":{"fields":{
		"score":{"type":"int","policy":"counter"},
		"secret":{"type":"string","policy":"authoritative","visible":"hidden"},
		"motto":{"type":"string","policy":"authoritative","visible":"hidden"}},
		"viewers":{"ref":{"sees":["hidden"]}}}}`, http.StatusOK)
	closed := make(chan error, 1)
	go func() {
		var err error
		for err == nil {
			_, _, err = c.Read(context.Background())
		}
		closed <- err
	}()
	// The upstream's stream notices the change at a write once its rules
	// cache (edge.RulesTTL) expired: write until it has.
	var end uint64
	var err error
	for deadline := time.Now().Add(20 * time.Second); err == nil && time.Now().Before(deadline); {
		end = n.act(t, "e1", 1, "")
		select {
		case err = <-closed:
		case <-time.After(20 * time.Millisecond):
		}
	}
	require.Equal(t, CloseRulesChanged, websocket.CloseStatus(err), "%v", err)

	k = watchState(t, dial(t, base, "", ""), end)
	require.NotContains(t, k.Entities["e1"].Fields, "motto")
	require.NotContains(t, string(readEvents(t, base, "", 1, end)), "once-public")
}
