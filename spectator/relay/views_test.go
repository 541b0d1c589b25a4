package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// boardRules declares a world with aggregated views: a sum and a feed of
// score (seen by all), and a count of secret (seen by the "ref" class
// only), which a public viewer may not see.
const boardRules = `{"id":"board","rules":{"fields":{
	"score":{"type":"int","policy":"counter"},
	"secret":{"type":"string","policy":"authoritative","visible":"hidden"}},
	"viewers":{"ref":{"sees":["hidden"]}},
	"views":{"total":{"kind":"sum","field":"score"},
		"kills":{"kind":"feed","field":"score"},
		"secrets":{"kind":"count","field":"secret"}}}}`

// actBoard commits one action on world board's entity e (score += by,
// secret set when not empty) and returns its seq.
func actBoard(t *testing.T, n *node, e string, by int64, secret string) uint64 {
	t.Helper()
	n.seq++
	ops := fmt.Sprintf(`{"op":"incr","entity":%q,"field":"score","by":%d}`, e, by)
	if secret != "" {
		ops += fmt.Sprintf(`,{"op":"set","entity":%q,"field":"secret","value":%q}`, e, secret)
	}
	b := n.do(t, http.MethodPost, "/v1/worlds/board/actions", fmt.Sprintf(`{"seq":%d,"ops":[%s]}`, n.seq, ops), http.StatusOK)
	var ev wire.Event
	require.NoError(t, json.Unmarshal(b, &ev))
	require.Equal(t, wire.StatusApplied, ev.Status, "%s", b)
	return ev.Seq
}

// getViews reads path (a views route) on base as tok and returns its
// status and body.
func getViews(t *testing.T, base, tok, path string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	require.NoError(t, err)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// viewsAt polls base's views of board as tok (with query, "?k=v" or "")
// until they are at seq, and returns them.
func viewsAt(t *testing.T, base, tok, query string, seq uint64) wire.Views {
	t.Helper()
	var vs wire.Views
	require.Eventually(t, func() bool {
		st, b := getViews(t, base, tok, "/v1/worlds/board/views"+query)
		require.Equal(t, http.StatusOK, st, "%s", b)
		vs = wire.Views{}
		require.NoError(t, json.Unmarshal(b, &vs))
		return vs.Seq >= seq
	}, 20*time.Second, 10*time.Millisecond)
	require.Equal(t, seq, vs.Seq)
	return vs
}

func TestRelayServesTheNodesViewsForItsClassAndNoneItMayNotSee(t *testing.T) {
	n := startNode(t)
	n.do(t, http.MethodPost, "/v1/worlds", boardRules, http.StatusCreated)
	public, ref := token(t, "relay", ""), token(t, "ref-relay", "ref")
	_, r1 := startRelay(t, n.url, public, nil)
	_, r2 := startRelay(t, r1, "", nil) // a relay of a relay
	_, rr := startRelay(t, n.url, ref, func(c *Config) { c.View = "ref" })
	// Every pipeline starts before the game (each views call keeps its
	// pipeline running a while): a feed holds the changes its pipeline
	// saw, and a node's starts from the store's state, not from seq 1.
	for _, c := range []struct{ base, tok, query string }{{n.url, public, ""}, {n.url, ref, "?view=ref"}, {r1, "", ""}, {r2, "", ""}, {rr, "", ""}} {
		st, b := getViews(t, c.base, c.tok, "/v1/worlds/board/views"+c.query)
		require.Equal(t, http.StatusOK, st, "%s: %s", c.base, b)
	}
	actBoard(t, n, "e1", 3, "plan-a")
	actBoard(t, n, "e2", 4, "plan-b")
	last := actBoard(t, n, "e1", 5, "")

	onNode := viewsAt(t, n.url, public, "", last)
	require.Contains(t, onNode.Views, "total")
	require.Contains(t, onNode.Views, "kills")
	require.NotContains(t, onNode.Views, "secrets", "the node's own leak rule")
	require.Len(t, onNode.Views["kills"].Feed, 3)
	require.Equal(t, wire.Value{Kind: wire.KindInt, Int: 12}, onNode.Views["total"].Groups[""])
	for _, base := range []string{r1, r2} {
		got := viewsAt(t, base, "", "", last)
		require.Equal(t, onNode.Views, got.Views, "relay %s", base)
		st, b := getViews(t, base, "", "/v1/worlds/board/views/secrets")
		require.Equal(t, http.StatusNotFound, st, "%s", b)
		st, b = getViews(t, base, "", "/v1/worlds/board/views/total")
		require.Equal(t, http.StatusOK, st, "%s", b)
		var one wire.ViewFrame
		require.NoError(t, json.Unmarshal(b, &one))
		require.Equal(t, onNode.Views["total"], one)
	}
	st, b := getViews(t, n.url, public, "/v1/worlds/board/views/secrets")
	require.Equal(t, http.StatusNotFound, st, "%s", b)

	// The ref class sees the secret: its relay serves that view too, as
	// the node does for a ref token.
	refNode := viewsAt(t, n.url, ref, "?view=ref", last)
	require.Contains(t, refNode.Views, "secrets")
	require.Equal(t, refNode.Views, viewsAt(t, rr, "", "", last).Views)

	// The watch stream carries view frames: the relay's reach the node's
	// total after one more action, and none is of the secret's view.
	c := dialWorld(t, r2, "", "board", "")
	more := actBoard(t, n, "e2", 10, "plan-c")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		_, b, err := c.Read(ctx)
		require.NoError(t, err)
		require.NotContains(t, string(b), "secret")
		var f wire.ViewFrame
		require.NoError(t, json.Unmarshal(b, &f))
		if f.Type == wire.TypeView && f.Name == "total" && f.Seq >= more {
			require.Equal(t, wire.Value{Kind: wire.KindInt, Int: 22}, f.Groups[""])
			require.Equal(t, viewsAt(t, n.url, public, "", more).Views["total"], f)
			break
		}
	}
}

// viewsUpstream is an upstream whose event stream of arena holds two
// events (x of e1 and e2) and whose views route answers views.
func viewsUpstream(t *testing.T, views func(w http.ResponseWriter, r *http.Request)) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/worlds/arena/views", views)
	mux.HandleFunc("GET /v1/worlds/arena/events", hang(line(t, 1, 4), strings.Replace(line(t, 2, 6), `"e1"`, `"e2"`, 1)))
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
	})
	return ts.URL
}

func TestRelayMakesTheViewsItsUpstreamNamesAndAnswersThemOn(t *testing.T) {
	up := viewsUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if q := r.URL.Query(); q.Get("rules") != "true" || q.Get("view") != "casters" { // the relay's view
			refuse(http.StatusBadRequest, `{"code":"malformed","error":"want rules=true&view=casters"}`)(w, r)
			return
		}
		_, _ = io.WriteString(w, `{"world":"arena","seq":0,"views":{},"rules":{"views":{"top":{"kind":"max","field":"x"}}}}`)
	})
	_, base := startRelay(t, up, "", func(c *Config) { c.View = "casters" })
	var vs wire.Views
	require.Eventually(t, func() bool {
		st, b := getViews(t, base, "", "/v1/worlds/arena/views?rules=true")
		require.Equal(t, http.StatusOK, st, "%s", b)
		vs = wire.Views{}
		require.NoError(t, json.Unmarshal(b, &vs))
		return vs.Seq == 2
	}, 20*time.Second, 5*time.Millisecond)
	require.Equal(t, map[string]wire.Value{"": {Kind: wire.KindInt, Int: 6}}, vs.Views["top"].Groups)
	require.JSONEq(t, `{"strict":false,"views":{"top":{"kind":"max","field":"x"}}}`, string(vs.Rules), "for a relay of this one")

	for path, want := range map[string]int{"/views/top": 200, "/views/nope": 404, "/views?mode=events": 400, "/views?view=other": 400} {
		st, b := getViews(t, base, "", "/v1/worlds/arena"+path)
		require.Equal(t, want, st, "%s: %s", path, b)
	}
}

func TestRelayRefusesAWorldWhoseViewsTheUpstreamRefusesOrGarbles(t *testing.T) {
	for body, want := range map[string]struct {
		status int
		answer func(w http.ResponseWriter, r *http.Request)
	}{
		"forbidden": {http.StatusForbidden, refuse(http.StatusForbidden, `{"code":"forbidden","error":"not this view"}`)},
		"not json":  {http.StatusBadRequest, refuse(http.StatusOK, `{"views":`)},
		"bad rules": {http.StatusBadRequest, refuse(http.StatusOK, `{"views":{},"rules":{"views":{"v":{"kind":"median","field":"x"}}}}`)},
	} {
		t.Run(body, func(t *testing.T) {
			_, base := startRelay(t, viewsUpstream(t, want.answer), "", nil)
			st, b := getViews(t, base, "", "/v1/worlds/arena/views")
			require.Equal(t, want.status, st, "%s", b)
		})
	}
}

// The relay's segments carry its views too: each opens with the view
// frame of every view the relay serves, as a node's do.
func TestRelaySegmentsCarryItsViews(t *testing.T) {
	up := viewsUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"world":"arena","seq":0,"views":{},"rules":{"views":{"top":{"kind":"max","field":"x"}}}}`)
	})
	_, base := startRelay(t, up, "", func(c *Config) { c.Segments = shortSegments })
	m := manifestUpTo(t, base, "", 2)
	s := m.Segments[len(m.Segments)-1]
	resp, b := fetch(t, base+"/v1/worlds/arena/watch/"+s.URL)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	var top *wire.ViewFrame
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var f wire.ViewFrame
		require.NoError(t, json.Unmarshal([]byte(line), &f))
		if f.Type == wire.TypeView && f.Name == "top" {
			top = &f
		}
	}
	require.NotNil(t, top, "%s", b)
	require.Equal(t, map[string]wire.Value{"": {Kind: wire.KindInt, Int: 6}}, top.Groups)
}
