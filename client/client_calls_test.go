package client

import (
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func TestCreateWorld(t *testing.T) {
	t.Run("sends id and rules", func(t *testing.T) {
		node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
			writeJSON(w, http.StatusCreated, map[string]string{"id": "arena"})
		})
		c := newTestClient(t, []string{node.URL})
		rules := wire.Rules{Strict: true, Fields: map[string]wire.FieldRule{"score": {Type: "int", Policy: wire.PolicyCounter}}}
		require.NoError(t, c.CreateWorld(context.Background(), "arena", rules))
		r := node.requests()[0]
		require.Equal(t, "POST /v1/worlds", r.Method+" "+r.Path)
		require.JSONEq(t, `{"id":"arena","rules":{"strict":true,"fields":{"score":{"type":"int","policy":"counter"}}}}`, r.Body)
	})
	t.Run("is retried when nothing was done", func(t *testing.T) {
		node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 1 {
				writeErr(w, http.StatusServiceUnavailable, CodeNotLeader, "election")
				return
			}
			writeErr(w, http.StatusConflict, CodeWorldExists, "arena exists")
		})
		c := newTestClient(t, []string{node.URL})
		err := c.CreateWorld(context.Background(), "arena", wire.Rules{})
		require.Equal(t, CodeWorldExists, Code(err))
		require.Len(t, node.requests(), 2)
	})
	t.Run("is not retried when it may have been applied", func(t *testing.T) {
		node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
			writeErr(w, http.StatusServiceUnavailable, CodeOutcomeUnknown, "timeout")
		})
		c := newTestClient(t, []string{node.URL})
		err := c.CreateWorld(context.Background(), "arena", wire.Rules{})
		require.Equal(t, CodeOutcomeUnknown, Code(err))
		require.Len(t, node.requests(), 1)
	})
}

func TestReadsAndAdminCalls(t *testing.T) {
	node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch r.Method + " " + r.URL.Path {
		case "GET /v1/worlds":
			w.Write([]byte(`{"worlds":[{"id":"arena","seq":12,"entities":3,"players":2,"hash":"00000000000000ff","rules":{"strict":false}}]}`))
		case "GET /v1/worlds/arena/entities/door 1":
			w.Write([]byte(`{"id":"door 1","version":9,"seq":12,"fields":{"open":true,"hp":9007199254740993,"tags":["a","b"],"speed":1.5},"versions":{"open":9,"hp":3}}`))
		case "GET /v1/worlds/arena/hash":
			w.Write([]byte(`{"world":"arena","seq":12,"index":40,"hash":255}`))
		case "GET /v1/status":
			w.Write([]byte(`{"id":"n1","state":"leader","leader":"n1","leader_http":"127.0.0.1:7070","term":3,"applied_index":40,"commit_index":40,"last_index":41,"region":"local","servers":[{"id":"n1","address":"127.0.0.1:7071","suffrage":"Voter"}],"nodes":[{"id":"n1","raft_addr":"127.0.0.1:7071","http_addr":"127.0.0.1:7070","region":"local"}]}`))
		case "POST /v1/cluster/join", "DELETE /v1/cluster/nodes/n2", "POST /v1/cluster/transfer-leadership":
			w.WriteHeader(http.StatusNoContent)
		case "POST /v1/cluster/snapshot":
			w.Write([]byte(`{"index":41}`))
		default:
			writeErr(w, http.StatusNotFound, "not_found", r.URL.Path)
		}
	})
	c := newTestClient(t, []string{node.URL + "/"})
	ctx := context.Background()

	worlds, err := c.Worlds(ctx)
	require.NoError(t, err)
	require.Equal(t, []World{{ID: "arena", Seq: 12, Entities: 3, Players: 2, Hash: "00000000000000ff"}}, worlds)

	e, err := c.Entity(ctx, "arena", "door 1", Stale)
	require.NoError(t, err)
	require.Equal(t, uint64(9), e.Version)
	require.Equal(t, uint64(12), e.Seq)
	require.Equal(t, true, e.Fields["open"])
	hp, ok := e.Int("hp")
	require.True(t, ok)
	require.Equal(t, int64(9007199254740993), hp, "numbers keep int64 precision")
	_, ok = e.Int("speed")
	require.False(t, ok)
	_, ok = e.Int("open")
	require.False(t, ok)
	require.Equal(t, []any{"a", "b"}, e.Fields["tags"])
	require.Equal(t, map[string]uint64{"open": 9, "hp": 3}, e.Versions)

	_, err = c.Entity(ctx, "arena", "door 1", "")
	require.NoError(t, err)

	h, err := c.Hash(ctx, "arena", 12)
	require.NoError(t, err)
	require.Equal(t, HashPoint{World: "arena", Seq: 12, Index: 40, Hash: "00000000000000ff"}, h)
	_, err = c.Hash(ctx, "arena", 0)
	require.NoError(t, err)

	st, err := c.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, "leader", st.State)
	require.Equal(t, []Server{{ID: "n1", Address: "127.0.0.1:7071", Suffrage: "Voter"}}, st.Servers)
	require.Equal(t, []wire.NodeInfo{{ID: "n1", RaftAddr: "127.0.0.1:7071", HTTPAddr: "127.0.0.1:7070", Region: "local"}}, st.Nodes)

	require.NoError(t, c.Join(ctx, wire.NodeInfo{ID: "n2", RaftAddr: "127.0.0.1:7073", HTTPAddr: "127.0.0.1:7072", Region: "eu"}))
	require.NoError(t, c.Remove(ctx, "n2"))
	require.NoError(t, c.TransferLeadership(ctx))
	idx, err := c.Snapshot(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(41), idx)

	reqs := node.requests()
	require.Equal(t, "consistency=stale", reqs[1].Query)
	require.Equal(t, "/v1/worlds/arena/entities/door%201", reqs[1].Path)
	require.Equal(t, "", reqs[2].Query)
	require.Equal(t, "seq=12", reqs[3].Query)
	require.Equal(t, "", reqs[4].Query)
	require.JSONEq(t, `{"id":"n2","raft_addr":"127.0.0.1:7073","http_addr":"127.0.0.1:7072","region":"eu"}`, reqs[6].Body)
	require.Equal(t, []string{"http://127.0.0.1:1", "https://x:2"}, New([]string{"127.0.0.1:1", "https://x:2/"}).Addrs())
}

func TestHashDecodesStringsAndNumbers(t *testing.T) {
	for in, want := range map[string]Hash{`"abc"`: "abc", `255`: "00000000000000ff", `null`: ""} {
		var h Hash
		require.NoError(t, json.Unmarshal([]byte(in), &h))
		require.Equal(t, want, h)
	}
	var h Hash
	require.Error(t, json.Unmarshal([]byte(`-1`), &h))
	require.Error(t, json.Unmarshal([]byte(`"x`), &h))
}

func TestWithHeaderIsSent(t *testing.T) {
	var got atomic.Value
	node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		got.Store(r.Header.Get("Authorization"))
		writeJSON(w, http.StatusOK, Status{})
	})
	c := newTestClient(t, []string{node.URL}, WithHeader("Authorization", "Bearer t"), WithAttemptTimeout(0))
	_, err := c.Status(context.Background())
	require.NoError(t, err)
	require.Equal(t, "Bearer t", got.Load())
}
