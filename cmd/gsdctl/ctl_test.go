package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func TestCtlAgainstANode(t *testing.T) {
	addr := startNode(t)
	a := []string{"--addr", "127.0.0.1:1," + addr, "--timeout", "30s"} // the first address is dead
	with := func(args ...string) []string { return append(append([]string{}, a...), args...) }

	t.Run("status", func(t *testing.T) {
		out := mustRun(t, with("status")...)
		require.Contains(t, out, "NODE")
		require.Contains(t, out, "leader")
		require.Contains(t, out, "n1 ("+addr+")")
		require.Contains(t, out, "Voter")
		var st client.Status
		require.NoError(t, json.Unmarshal([]byte(mustRun(t, with("-o", "json", "status")...)), &st))
		require.Equal(t, "leader", st.State)
	})

	t.Run("world create and list", func(t *testing.T) {
		out := mustRun(t, with("world", "create", "arena", "--rules", `{"fields":{"score":{"policy":"counter"},"open":{"type":"bool","policy":"authoritative"}}}`)...)
		require.JSONEq(t, `{"ok":true,"id":"arena"}`, out)
		rules := filepath.Join(t.TempDir(), "rules.json")
		require.NoError(t, os.WriteFile(rules, []byte(`{"strict":true,"fields":{"hp":{"policy":"max","type":"int"}}}`), 0o600))
		mustRun(t, with("world", "create", "dungeon", "--rules", "@"+rules)...)
		code, _, errOut := ctl(t, "", with("world", "create", "arena")...)
		require.Equal(t, 1, code)
		require.Contains(t, errOut, "world_exists (HTTP 409)")

		out = mustRun(t, with("world", "list")...)
		require.Contains(t, out, "WORLD")
		require.Contains(t, out, "arena")
		require.Contains(t, out, "dungeon")
		var list struct {
			Worlds []client.World `json:"worlds"`
		}
		require.NoError(t, json.Unmarshal([]byte(mustRun(t, with("world", "ls", "-o", "json")...)), &list))
		require.Len(t, list.Worlds, 2)
		require.True(t, list.Worlds[1].Rules.Strict)
	})

	t.Run("act", func(t *testing.T) {
		action := `{"player":"p1","seq":1,"ops":[{"op":"incr","entity":"e1","field":"score","by":3}]}`
		var ev wire.Event
		require.NoError(t, json.Unmarshal([]byte(mustRun(t, with("act", "arena", "--json", action)...)), &ev))
		require.Equal(t, "applied", ev.Status)
		require.Equal(t, uint64(1), ev.Seq)

		// The same action again is the same event, marked duplicate.
		require.NoError(t, json.Unmarshal([]byte(mustRun(t, with("act", "arena", "--json", action)...)), &ev))
		require.True(t, ev.Duplicate)
		require.Equal(t, uint64(1), ev.Seq)

		// From stdin, with OCC.
		code, out, errOut := ctl(t, `{"player":"p2","seq":1,"priority":"bulk","ops":[{"op":"set","entity":"door","field":"open","value":true,"expect":"*"}]}`, with("act", "arena")...)
		require.Equal(t, 0, code, errOut)
		require.NoError(t, json.Unmarshal([]byte(out), &ev))
		require.Equal(t, "applied", ev.Status)
		require.Equal(t, "bulk", ev.Priority)

		// The same seq with another payload.
		code, _, errOut = ctl(t, "", with("act", "arena", "--json", `{"player":"p1","seq":1,"ops":[{"op":"incr","entity":"e1","field":"score","by":4}]}`)...)
		require.Equal(t, 1, code)
		require.Contains(t, errOut, "seq_reused (HTTP 409)")

		// A policy violation.
		code, _, errOut = ctl(t, "", with("act", "arena", "--json", `{"player":"p1","seq":9,"ops":[{"op":"set","entity":"e1","field":"score","value":1}]}`)...)
		require.Equal(t, 1, code)
		require.Contains(t, errOut, "HTTP 400")
	})

	t.Run("get", func(t *testing.T) {
		var e client.Entity
		require.NoError(t, json.Unmarshal([]byte(mustRun(t, with("get", "arena", "e1")...)), &e))
		require.Equal(t, float64(3), e.Fields["score"])
		require.NoError(t, json.Unmarshal([]byte(mustRun(t, with("get", "arena", "door", "--stale")...)), &e))
		require.Equal(t, true, e.Fields["open"])
		code, _, errOut := ctl(t, "", with("get", "arena", "nobody")...)
		require.Equal(t, 1, code)
		require.Contains(t, errOut, "not_found (HTTP 404)")
	})

	t.Run("hash", func(t *testing.T) {
		var now, at1 client.HashPoint
		require.NoError(t, json.Unmarshal([]byte(mustRun(t, with("hash", "arena")...)), &now))
		require.Equal(t, uint64(2), now.Seq)
		require.NoError(t, json.Unmarshal([]byte(mustRun(t, with("hash", "arena", "--seq", "1")...)), &at1))
		require.Equal(t, uint64(1), at1.Seq)
		require.NotEqual(t, now.Hash, at1.Hash)
	})

	t.Run("events", func(t *testing.T) {
		lines := strings.Split(strings.TrimSpace(mustRun(t, with("events", "arena")...)), "\n")
		require.Len(t, lines, 2)
		var ev wire.Event
		require.NoError(t, json.Unmarshal([]byte(lines[1]), &ev))
		require.Equal(t, uint64(2), ev.Seq)
		lines = strings.Split(strings.TrimSpace(mustRun(t, with("events", "arena", "--from", "2")...)), "\n")
		require.Len(t, lines, 1)
		require.Empty(t, mustRun(t, with("events", "arena", "--from", "3")...))
		require.Empty(t, mustRun(t, with("events", "dungeon", "--from", "0")...))
		code, _, errOut := ctl(t, "", with("events", "nowhere")...)
		require.Equal(t, 1, code)
		require.Contains(t, errOut, "unknown_world")
	})

	t.Run("events --follow", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		pr, pw := io.Pipe()
		done := make(chan int, 1)
		go func() {
			done <- run(ctx, with("events", "arena", "--follow", "--from", "2"), strings.NewReader(""), pw, io.Discard)
			pw.Close()
		}()
		sc := bufio.NewScanner(pr)
		require.True(t, sc.Scan())
		require.Contains(t, sc.Text(), `"seq":2`)
		mustRun(t, with("act", "arena", "--json", `{"player":"p3","seq":1,"ops":[{"op":"incr","entity":"e1","field":"score","by":1}]}`)...)
		require.True(t, sc.Scan())
		require.Contains(t, sc.Text(), `"seq":3`)
		cancel()
		go io.Copy(io.Discard, pr)
		require.Equal(t, 0, <-done)
	})

	t.Run("snapshot", func(t *testing.T) {
		var out struct{ Index uint64 }
		require.NoError(t, json.Unmarshal([]byte(mustRun(t, with("snapshot")...)), &out))
		require.Positive(t, out.Index)
	})

	t.Run("transfer-leader without a peer fails", func(t *testing.T) {
		code, _, errOut := ctl(t, "", "--addr", addr, "--timeout", "5s", "transfer-leader")
		require.Equal(t, 1, code)
		require.NotEmpty(t, errOut)
	})
}

func TestCtlMembershipCommandsSendTheRightRequests(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" "+string(b))
		mu.Unlock()
		w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	a := []string{"--addr", srv.URL}
	require.JSONEq(t, `{"ok":true}`, mustRun(t, append(a, "join", "n2", "127.0.0.1:7073", "127.0.0.1:7072", "--region", "eu")...))
	mustRun(t, append(a, "remove", "n2")...)
	mustRun(t, append(a, "transfer-leader")...)
	require.Equal(t, []string{
		`POST /v1/cluster/join {"id":"n2","raft_addr":"127.0.0.1:7073","http_addr":"127.0.0.1:7072","region":"eu"}`,
		"DELETE /v1/cluster/nodes/n2 ",
		"POST /v1/cluster/transfer-leadership ",
	}, got)
}

// TestCtlJoinSendsWhatTheJoiningNodeReads: join asks the joining node's
// status for the versions it reads and sends them with the join (the group
// refuses a node below its members' floor, and one that reports nothing
// counts as the oldest binary); a node that does not answer as itself is
// joined without them, with a warning.
func TestCtlJoinSendsWhatTheJoiningNodeReads(t *testing.T) {
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/v1/status", r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":"n2","versions":{"log":14,"snapshot":10,"wire":3}}`))
	}))
	defer node.Close()
	var body []byte
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ = io.ReadAll(r.Body)
		w.Write([]byte(`{"ok":true}`))
	}))
	defer leader.Close()
	nodeAddr := strings.TrimPrefix(node.URL, "http://")
	mustRun(t, "--addr", leader.URL, "join", "n2", "127.0.0.1:7073", nodeAddr)
	require.JSONEq(t, `{"id":"n2","raft_addr":"127.0.0.1:7073","http_addr":"`+nodeAddr+`","versions":{"log":14,"snapshot":10,"wire":3}}`, string(body))

	code, _, stderr := ctl(t, "", "--addr", leader.URL, "join", "n3", "127.0.0.1:7074", nodeAddr)
	require.Zero(t, code)
	require.Contains(t, stderr, `answers as node "n2", not "n3"`)
	require.JSONEq(t, `{"id":"n3","raft_addr":"127.0.0.1:7074","http_addr":"`+nodeAddr+`"}`, string(body))
}

func TestCtlRejectsBadUsage(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"unknown command", "", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown flag", "", []string{"status", "--bogus"}, "unknown flag: --bogus"},
		{"missing args", "", []string{"join", "n2"}, "accepts 3 arg(s)"},
		{"bad output", "", []string{"-o", "yaml", "status"}, `--output "yaml"`},
		{"no addresses", "", []string{"--addr", " ", "status"}, "--addr needs at least one address"},
		{"zero timeout", "", []string{"--timeout", "0s", "status"}, "--timeout must be positive"},
		{"bad rules", "", []string{"world", "create", "w", "--rules", `{"fields":{"x":{"policy":"nope"}}}`}, "--rules"},
		{"missing rules file", "", []string{"world", "create", "w", "--rules", "@/does/not/exist"}, "--rules"},
		{"act without seq", `{"player":"p1","ops":[{"op":"incr","entity":"e","field":"f","by":1}]}`, []string{"act", "w"}, `no "seq"`},
		{"act without player", `{"seq":1,"ops":[]}`, []string{"act", "w"}, `no "player"`},
		{"act with nothing", "", []string{"act", "w"}, "no action given"},
		{"act with unknown field", `{"player":"p","seq":1,"sequence":2}`, []string{"act", "w"}, "unknown field"},
		{"act with trailing data", `{"player":"p","seq":1} {}`, []string{"act", "w"}, "trailing data"},
		{"act from a missing file", "", []string{"act", "w", "--json", "@/does/not/exist"}, "read action"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := ctl(t, tc.stdin, tc.args...)
			require.Equal(t, 1, code)
			require.Contains(t, errOut, tc.want)
		})
	}
}

func TestCtlReportsAnUnreachableCluster(t *testing.T) {
	code, _, errOut := ctl(t, "", "--addr", freeAddr(t), "--timeout", "200ms", "status")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "context deadline exceeded")
	require.Contains(t, errOut, "connection refused")
}

func TestCtlDescribesServerErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/status" {
			http.Error(w, "teapot", http.StatusTeapot)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"code":"outcome_unknown","error":"leadership lost"}`))
	}))
	defer srv.Close()
	code, _, errOut := ctl(t, "", "--addr", srv.URL, "status")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "HTTP 418: teapot")
	code, _, errOut = ctl(t, "", "--addr", srv.URL, "--timeout", "3s", "act", "w", "--json", `{"player":"p","seq":1,"ops":[{"op":"incr","entity":"e","field":"f","by":1}]}`)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "outcome_unknown (HTTP 503): leadership lost")
	require.Contains(t, errOut, "outcome unknown")
}

func TestCtlHelp(t *testing.T) {
	code, out, _ := ctl(t, "", "--help")
	require.Equal(t, 0, code)
	for _, c := range []string{"status", "join", "remove", "transfer-leader", "snapshot", "world", "act", "get", "events", "hash"} {
		require.Contains(t, out, c)
	}
}
