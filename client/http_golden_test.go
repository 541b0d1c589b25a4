package client

import (
	"context"
	"fmt"
	"github.com/gsd-dev/gsd/internal/golden"
	"net/http"
	"strings"
	"testing"
	"time"

	"encoding/json"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// The request bodies the Go client sends, as a fake node records them:
// method, escaped path, query and the body as sent (its length first, so
// a trailing newline shows), one request per block.

// goldenAction carries every op kind, value kind and expect mode, an input
// time and the bulk priority.
func goldenAction(seq uint64) ActionRequest {
	return ActionRequest{Player: "ann", Seq: seq, InputTime: 1_700_000_000_100_000_000, Priority: "bulk", Ops: []wire.Op{
		ExpectVersion(Set("hero", "name", wire.String("Ærwyn <\"x\">")), 0),
		ExpectVersion(Set("hero", "x", wire.Float(-12.375)), 41),
		Set("hero", "alive", wire.Bool(true)),
		Set("hero", "level", wire.Int(-9_000_000_000)),
		Incr("hero", "hp", -17),
		Add("hero", "tags", wire.String("red")),
		Remove("hero", "nums", wire.Int(7)),
		ExpectVersion(Delete("chest"), 12),
	}}
}

// goldenAnswer answers each request with a body the client can decode.
func goldenAnswer(w http.ResponseWriter, r *http.Request, _ int) {
	switch {
	case strings.HasSuffix(r.URL.Path, "/actions:batch"):
		writeJSON(w, 200, map[string]any{"results": []any{
			map[string]any{"world": "arena", "seq": 1, "status": "applied"},
			map[string]any{"code": "malformed", "error": "bad"},
		}})
	case strings.HasSuffix(r.URL.Path, "/actions"):
		writeJSON(w, 200, map[string]any{"world": "arena", "seq": 1, "status": "applied"})
	case strings.HasSuffix(r.URL.Path, "/sessions:import"):
		writeJSON(w, 200, map[string]any{"world": "arena", "imported": 2})
	default:
		writeJSON(w, 200, map[string]any{"ok": true})
	}
}

// goldenRequests renders the recorded requests.
func goldenRequests(reqs []recorded) []byte {
	var sb strings.Builder
	for _, r := range reqs {
		fmt.Fprintf(&sb, "%s %s", r.Method, r.Path)
		if r.Query != "" {
			fmt.Fprintf(&sb, "?%s", r.Query)
		}
		fmt.Fprintf(&sb, "\nbody %d bytes:\n%s\n\n", len(r.Body), r.Body)
	}
	return []byte(sb.String())
}

func TestGoldenClientRequestBodies(t *testing.T) {
	node := newFakeNode(t, goldenAnswer)
	c := newTestClient(t, []string{node.URL}, WithMaxAttempts(1))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rules wire.Rules
	require.NoError(t, json.Unmarshal([]byte(`{"strict":true,"fair_window":"30ms","fields":{"hp":{"type":"int","policy":"counter"},"tags":{"type":"string","policy":"set"}}}`), &rules))

	require.NoError(t, c.CreateWorld(ctx, "arena", rules))
	_, err := c.Act(ctx, "arena", goldenAction(300))
	require.NoError(t, err)
	_, err = c.Act(ctx, "w/ü", ActionRequest{Player: "bob", Seq: 1, Ops: []wire.Op{Incr("e", "n", 1)}})
	require.NoError(t, err)
	_, err = c.ActBatch(ctx, "arena", []ActionRequest{goldenAction(301), {Player: "bob", Seq: 2, Ops: []wire.Op{Set("e", "s", wire.String(""))}}})
	require.NoError(t, err)
	require.NoError(t, c.Join(ctx, wire.NodeInfo{ID: "n3", RaftAddr: "10.0.0.3:7000", HTTPAddr: "10.0.0.3:8080", Region: "eu-west"}))
	_, err = c.Kick(ctx, "arena", "s-bob", "afk")
	require.NoError(t, err)
	_, err = c.Kick(ctx, "arena", "s-bob", "")
	require.NoError(t, err)
	require.NoError(t, c.Ban(ctx, "arena", "mallory", "cheating"))
	require.NoError(t, c.Unban(ctx, "arena", "mallory"))
	_, err = c.ImportPlayerData(ctx, "arena", PlayerDataFile{Format: "gsd.players.v1", World: "arena", Players: []PlayerDataRecord{
		{Player: "alice", Data: map[string]wire.Value{"coins": wire.Int(250), "title": wire.String("Sir"), "ratio": wire.Float(0.5), "vip": wire.Bool(true)}},
		{Player: "erin", Data: map[string]wire.Value{"rank": wire.Int(3)}},
	}})
	require.NoError(t, err)
	require.NoError(t, c.TransferLeadership(ctx))
	require.NoError(t, c.Remove(ctx, "n3"))
	_, err = c.Entity(ctx, "arena", "hero", Stale)
	require.NoError(t, err)
	_, err = c.Hash(ctx, "arena", 5)
	require.NoError(t, err)

	golden.Text(t, "requests.txt", goldenRequests(node.requests()))
}
