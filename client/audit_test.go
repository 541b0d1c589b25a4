package client

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// leafHash is the fake node's leaf hash of seq: 32 bytes of seq's low byte.
func leafHash(seq uint64) []byte { return bytes.Repeat([]byte{byte(seq)}, 32) }

func TestAuditCallsUseTheirRoutesAndPageTheLeaves(t *testing.T) {
	f := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		q := r.URL.Query()
		switch {
		case !strings.HasPrefix(r.URL.Path, "/v1/worlds/arena/"):
			writeErr(w, 404, CodeUnknownWorld, "no world")
		case strings.HasSuffix(r.URL.Path, "/audit/checkpoint") && r.Method == http.MethodGet:
			w.Write([]byte("arena\n3\nroot\n\n— k sig\n"))
		case strings.HasSuffix(r.URL.Path, "/audit/checkpoint"):
			w.Write([]byte("arena\n4\nroot\n\n— k sig\n"))
		case strings.HasSuffix(r.URL.Path, "/audit/proof"):
			seq, _ := strconv.ParseUint(q.Get("seq"), 10, 64)
			size, _ := strconv.ParseInt(q.Get("size"), 10, 64)
			writeJSON(w, 200, wire.AuditProof{World: "arena", Seq: seq, Size: size, Proof: [][]byte{leafHash(1)}})
		case strings.HasSuffix(r.URL.Path, "/audit/consistency"):
			from, _ := strconv.ParseInt(q.Get("from"), 10, 64)
			to, _ := strconv.ParseInt(q.Get("to"), 10, 64)
			writeJSON(w, 200, wire.AuditConsistency{World: "arena", From: from, To: to, Proof: [][]byte{leafHash(2)}})
		case strings.HasSuffix(r.URL.Path, "/audit/leaves"):
			from, _ := strconv.ParseUint(q.Get("from"), 10, 64)
			to, _ := strconv.ParseUint(q.Get("to"), 10, 64)
			if to-from+1 > auditLeavesPage {
				writeErr(w, 400, "malformed", "too many leaves")
				return
			}
			for s := from; s <= to; s++ {
				w.Write(leafHash(s))
			}
		default:
			writeErr(w, 404, "not_found", "no route")
		}
	})
	c := newTestClient(t, []string{strings.TrimPrefix(f.URL, "http://")})
	ctx := context.Background()

	cp, err := c.AuditCheckpoint(ctx, "arena")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(cp), "arena\n3\n"))
	cp, err = c.SignAuditCheckpoint(ctx, "arena")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(cp), "arena\n4\n"))
	p, err := c.AuditProof(ctx, "arena", 2, 3)
	require.NoError(t, err)
	require.Equal(t, wire.AuditProof{World: "arena", Seq: 2, Size: 3, Proof: [][]byte{leafHash(1)}}, p)
	cons, err := c.AuditConsistency(ctx, "arena", 1, 3)
	require.NoError(t, err)
	require.Equal(t, wire.AuditConsistency{World: "arena", From: 1, To: 3, Proof: [][]byte{leafHash(2)}}, cons)

	// More leaves than one answer holds: two pages, in order.
	n := uint64(auditLeavesPage + 3)
	leaves, err := c.AuditLeaves(ctx, "arena", 1, n)
	require.NoError(t, err)
	require.Len(t, leaves, int(n)*32)
	for _, s := range []uint64{1, auditLeavesPage, auditLeavesPage + 1, n} {
		require.Equal(t, leafHash(s), leaves[(s-1)*32:s*32], "seq %d", s)
	}
	reqs := f.requests()
	require.Equal(t, "/v1/worlds/arena/audit/leaves", reqs[len(reqs)-1].Path)
	require.Equal(t, "from=65537&to=65539", reqs[len(reqs)-1].Query)

	// Another incarnation's: the parameter goes along.
	_, err = c.AuditCheckpointOf(ctx, "arena", 7)
	require.NoError(t, err)
	reqs = f.requests()
	require.Equal(t, "incarnation=7", reqs[len(reqs)-1].Query)
	leaves, err = c.AuditLeavesOf(ctx, "arena", 7, 2, 3)
	require.NoError(t, err)
	require.Equal(t, append(leafHash(2), leafHash(3)...), leaves)
	reqs = f.requests()
	require.Equal(t, "from=2&incarnation=7&to=3", reqs[len(reqs)-1].Query)

	_, err = c.AuditCheckpoint(ctx, "lobby")
	require.ErrorAs(t, err, new(*Error))
	_, err = c.AuditLeaves(ctx, "lobby", 1, 2)
	require.Error(t, err)
}

func TestAuditRawAnswersFailOverADeadNode(t *testing.T) {
	f := newFakeNode(t, func(w http.ResponseWriter, _ *http.Request, _ int) { w.Write([]byte("note")) })
	c := newTestClient(t, []string{deadAddr(t), strings.TrimPrefix(f.URL, "http://")}, WithAttemptTimeout(5e9))
	b, err := c.AuditCheckpoint(context.Background(), "arena")
	require.NoError(t, err)
	require.Equal(t, "note", string(b))
}

func TestSignedAuditSaltsComeAsServedAndOlderNodesAnswerUnsigned(t *testing.T) {
	const table = `{"world":"arena","salts":[]}`
	var answer string
	f := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.URL.Path != "/v1/worlds/arena/audit/salts" || r.URL.Query().Get("signed") != "1" {
			writeErr(w, 404, "not_found", "no route")
			return
		}
		w.Write([]byte(answer))
	})
	c := newTestClient(t, []string{strings.TrimPrefix(f.URL, "http://")})
	ctx := context.Background()
	for _, tc := range []struct{ answer, note string }{
		{`{"table":` + table + `,"note":"gsd audit salts v1\n"}` + "\n", "gsd audit salts v1\n"},
		{`{"table":` + table + `}` + "\n", ""}, // a node without an audit key
		{table + "\n", ""},                     // a node from before signed salts
	} {
		answer = tc.answer
		got, note, err := c.AuditSaltsSigned(ctx, "arena")
		require.NoError(t, err)
		require.Equal(t, table, string(got), tc.answer)
		require.Equal(t, tc.note, string(note))
	}
	answer = "not json"
	_, _, err := c.AuditSaltsSigned(ctx, "arena")
	require.ErrorContains(t, err, "salts of arena")
	_, _, err = c.AuditSaltsSigned(ctx, "lobby")
	require.Error(t, err)
}
