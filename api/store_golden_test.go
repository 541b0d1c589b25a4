package api

import (
	"bufio"
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/internal/golden"

	"github.com/stretchr/testify/require"
)

// The HTTP answers of a real one-node store (raft, bolt, the FSM) behind
// the real handlers, for a fixed sequence of requests. What varies by run
// is replaced before comparison, always by the same placeholder:
//   - the node's Raft and HTTP addresses (random loopback ports) become
//     RAFT_ADDR and HTTP_ADDR;
//   - an event's "time" (the leader's wall clock) becomes "time":0.
// Raft indexes and the term are kept: the test waits until the node has
// registered itself, so every later entry has a fixed index.

// goldenNormalize replaces what varies by run in an answer of n.
func goldenNormalize(n *node, b []byte) []byte {
	s := string(b)
	s = strings.ReplaceAll(s, n.raftAddr, "RAFT_ADDR")
	s = strings.ReplaceAll(s, n.env.TS.Listener.Addr().String(), "HTTP_ADDR")
	s = goldenTimeField.ReplaceAllString(s, `"time":0`)
	return []byte(s)
}

var goldenTimeField = regexp.MustCompile(`"time":[0-9]+`)

// goldenStreamLines reads the first n lines of an event stream, raw.
func goldenStreamLines(t *testing.T, e *testEnv, path string, n int) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", e.TS.URL+path, nil)
	require.NoError(t, err)
	resp, err := e.TS.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "application/x-ndjson", resp.Header.Get("Content-Type"))
	rd := bufio.NewReader(resp.Body)
	var out []byte
	for range n {
		line, err := rd.ReadBytes('\n')
		require.NoError(t, err)
		out = append(out, line...)
	}
	return out
}

func TestGoldenHTTPAnswersOverARealStore(t *testing.T) {
	n := startLeader(t)
	require.Eventually(t, func() bool { return len(n.st.Status().Nodes) == 1 }, 10*time.Second, 10*time.Millisecond,
		"the leader registers itself first")
	e := n.env.With(t)
	steps := []struct{ name, method, path, body string }{
		{"create_world", "POST", "/v1/worlds", `{"id":"arena","rules":{"strict":true,"fields":{` +
			`"alive":{"type":"bool","policy":"authoritative"},"best":{"type":"float","policy":"max"},"hp":{"type":"int","policy":"counter"},` +
			`"name":{"type":"string","policy":"authoritative"},"tags":{"type":"string","policy":"set"},"worst":{"type":"int","policy":"min"}}}}`},
		{"action_applied", "POST", "/v1/worlds/arena/actions", `{"player":"alice","seq":1,"input_time":5,"ops":[` +
			`{"op":"set","entity":"hero","field":"name","value":"Ærwyn","expect":"*"},{"op":"set","entity":"hero","field":"alive","value":true},` +
			`{"op":"incr","entity":"hero","field":"hp","by":100},{"op":"add","entity":"hero","field":"tags","value":"red"},` +
			`{"op":"add","entity":"hero","field":"tags","value":"blue"},{"op":"set","entity":"hero","field":"best","value":9.5},` +
			`{"op":"set","entity":"hero","field":"worst","value":4}]}`},
		{"action_bulk", "POST", "/v1/worlds/arena/actions", `{"player":"bob","seq":1,"priority":"bulk","ops":[` +
			`{"op":"incr","entity":"hero","field":"hp","by":-30},{"op":"remove","entity":"hero","field":"tags","value":"red"},` +
			`{"op":"set","entity":"hero","field":"best","value":3},{"op":"set","entity":"chest","field":"name","value":"oak"}]}`},
		{"action_conflict", "POST", "/v1/worlds/arena/actions", `{"player":"bob","seq":2,"ops":[` +
			`{"op":"set","entity":"hero","field":"name","value":"Bob","expect":"*"},{"op":"add","entity":"hero","field":"tags","value":"x","expect":"1"}]}`},
		{"action_delete", "POST", "/v1/worlds/arena/actions", `{"player":"carol","seq":2,"ops":[{"op":"delete","entity":"chest","expect":"2"}]}`},
		{"action_duplicate", "POST", "/v1/worlds/arena/actions", `{"player":"bob","seq":2,"ops":[` +
			`{"op":"set","entity":"hero","field":"name","value":"Bob","expect":"*"},{"op":"add","entity":"hero","field":"tags","value":"x","expect":"1"}]}`},
		{"error_seq_reused", "POST", "/v1/worlds/arena/actions", `{"player":"bob","seq":2,"ops":[{"op":"incr","entity":"hero","field":"hp","by":1}]}`},
		{"error_undeclared_field", "POST", "/v1/worlds/arena/actions", `{"player":"carol","seq":3,"ops":[{"op":"set","entity":"hero","field":"mana","value":1}]}`},
		// One valid action: two would commit in either order.
		{"batch", "POST", "/v1/worlds/arena/actions:batch", `{"actions":[{"player":"dave","seq":1,"ops":[{"op":"incr","entity":"hero","field":"hp","by":1}]},` +
			`{"player":"dave","seq":2,"ops":[{"op":"incr","entity":"hero","field":"hp","by":"x"}]}]}`},
		{"entity", "GET", "/v1/worlds/arena/entities/hero", ""},
		{"entity_deleted", "GET", "/v1/worlds/arena/entities/chest", ""},
		{"list_worlds", "GET", "/v1/worlds", ""},
		{"hash", "GET", "/v1/worlds/arena/hash", ""},
		{"hash_at_seq", "GET", "/v1/worlds/arena/hash?seq=2", ""},
		{"error_seq_unknown", "GET", "/v1/worlds/arena/hash?seq=99", ""},
		{"status", "GET", "/v1/status", ""},
	}
	for _, s := range steps {
		golden.Text(t, "store_"+s.name+".txt", goldenNormalize(n, goldenHTTP(e, s.method, s.path, s.body)))
	}
	golden.Text(t, "store_event_stream.jsonl", goldenNormalize(n, goldenStreamLines(t, e, "/v1/worlds/arena/events?from=1", 5)))
}
