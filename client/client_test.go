package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func testAction(seq uint64) ActionRequest {
	return ActionRequest{Player: "p1", Seq: seq, Ops: []wire.Op{
		Incr("e1", "score", 1),
		ExpectVersion(Set("door", "open", wire.Bool(true)), 12),
	}}
}

func eventFor(world string, seq uint64, dup bool) wire.Event {
	return wire.Event{World: world, Seq: seq, Index: 40 + seq, Player: "p1", ClientSeq: 7,
		Priority: "critical", Status: "applied", Duplicate: dup,
		Versions: map[string]map[string]uint64{"e1": {"score": seq}}}
}

func TestActRetriesWithSameSeqAfterOutcomeUnknown(t *testing.T) {
	node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n < 3 {
			writeErr(w, http.StatusServiceUnavailable, CodeOutcomeUnknown, "leadership lost")
			return
		}
		writeJSON(w, http.StatusOK, eventFor("arena", 5, true))
	})
	c := newTestClient(t, []string{node.URL})
	ev, err := c.Act(context.Background(), "arena", testAction(7))
	require.NoError(t, err)
	require.True(t, ev.Duplicate)
	require.Equal(t, uint64(5), ev.Seq)

	reqs := node.requests()
	require.Len(t, reqs, 3)
	for _, r := range reqs {
		require.Equal(t, http.MethodPost, r.Method)
		require.Equal(t, "/v1/worlds/arena/actions", r.Path)
		require.Equal(t, reqs[0].Body, r.Body, "every attempt must carry the same payload")
	}
	var sent map[string]any
	require.NoError(t, json.Unmarshal([]byte(reqs[0].Body), &sent))
	require.Equal(t, float64(7), sent["seq"])
	require.Equal(t, "p1", sent["player"])
	ops := sent["ops"].([]any)
	require.Equal(t, map[string]any{"op": "incr", "entity": "e1", "field": "score", "by": float64(1)}, ops[0])
	require.Equal(t, map[string]any{"op": "set", "entity": "door", "field": "open", "value": true, "expect": "12"}, ops[1])
}

func TestActFailsOverToNextAddressOnNotLeader(t *testing.T) {
	follower := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeErr(w, http.StatusServiceUnavailable, CodeNotLeader, "no leader")
	})
	leader := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, http.StatusOK, eventFor("arena", uint64(n), false))
	})
	c := newTestClient(t, []string{follower.URL, leader.URL})
	_, err := c.Act(context.Background(), "arena", testAction(1))
	require.NoError(t, err)
	require.Len(t, follower.requests(), 1)
	require.Len(t, leader.requests(), 1)

	// The client remembers who answered.
	_, err = c.Act(context.Background(), "arena", testAction(2))
	require.NoError(t, err)
	require.Len(t, follower.requests(), 1)
	require.Len(t, leader.requests(), 2)
}

func TestActFailsOverOnConnectionRefused(t *testing.T) {
	node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, http.StatusOK, eventFor("arena", 1, false))
	})
	c := newTestClient(t, []string{deadAddr(t), strings.TrimPrefix(node.URL, "http://")})
	ev, err := c.Act(context.Background(), "arena", testAction(1))
	require.NoError(t, err)
	require.Equal(t, "applied", ev.Status)
	require.Len(t, node.requests(), 1)
}

func TestActRetriesAfterConnectionDroppedMidRequest(t *testing.T) {
	var calls atomic.Int32
	node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if calls.Add(1) == 1 {
			// Drop the connection after reading the request: the outcome is unknown.
			hj := w.(http.Hijacker)
			conn, _, err := hj.Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		writeJSON(w, http.StatusOK, eventFor("arena", 3, true))
	})
	c := newTestClient(t, []string{node.URL})
	ev, err := c.Act(context.Background(), "arena", testAction(9))
	require.NoError(t, err)
	require.True(t, ev.Duplicate)
	reqs := node.requests()
	require.Len(t, reqs, 2)
	require.Equal(t, reqs[0].Body, reqs[1].Body)
}

func TestActGivesUpAfterMaxAttemptsWithOutcomeUnknown(t *testing.T) {
	node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeErr(w, http.StatusServiceUnavailable, CodeOutcomeUnknown, "timeout")
	})
	c := newTestClient(t, []string{node.URL}, WithMaxAttempts(4))
	_, err := c.Act(context.Background(), "arena", testAction(1))
	require.Error(t, err)
	require.Len(t, node.requests(), 4)
	require.True(t, IsOutcomeUnknown(err))
	require.True(t, IsRetryable(err))
	require.Equal(t, CodeOutcomeUnknown, Code(err))
	require.Equal(t, http.StatusServiceUnavailable, StatusCode(err))
	require.ErrorIs(t, err, ErrOutcomeUnknown)
}

func TestActUntilContextEnds(t *testing.T) {
	t.Run("after an unknown outcome the error says so", func(t *testing.T) {
		node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 1 {
				writeErr(w, http.StatusServiceUnavailable, CodeOutcomeUnknown, "timeout")
				return
			}
			writeErr(w, http.StatusServiceUnavailable, CodeNotLeader, "election")
		})
		c := newTestClient(t, []string{node.URL})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := c.Act(ctx, "arena", testAction(1))
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.True(t, IsOutcomeUnknown(err))
		require.Greater(t, len(node.requests()), 2)
	})
	t.Run("when nothing was proposed the outcome is known", func(t *testing.T) {
		node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
			writeErr(w, http.StatusServiceUnavailable, CodeNotLeader, "election")
		})
		// The context ends during the pause after the answer (a context
		// that ends while a request is in flight leaves it unknown).
		c := newTestClient(t, []string{node.URL}, WithBackoff(time.Hour, time.Hour))
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := c.Act(ctx, "arena", testAction(1))
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.False(t, IsOutcomeUnknown(err))
		require.Equal(t, CodeNotLeader, Code(err))

		_, err = newTestClient(t, []string{node.URL}, WithMaxAttempts(3)).Act(context.Background(), "arena", testAction(1))
		require.False(t, IsOutcomeUnknown(err))
		require.Equal(t, CodeNotLeader, Code(err))
	})
	t.Run("a cancelled context stops before sending", func(t *testing.T) {
		node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {})
		c := newTestClient(t, []string{node.URL})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := c.Act(ctx, "arena", testAction(1))
		require.ErrorIs(t, err, context.Canceled)
		require.Empty(t, node.requests())
	})
}

func TestActDoesNotRetryDefiniteErrors(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   string
	}{
		{http.StatusConflict, CodeSeqReused},
		{http.StatusConflict, CodeSeqExpired},
		{http.StatusNotFound, CodeUnknownWorld},
		{http.StatusBadRequest, "malformed"},
		{http.StatusRequestEntityTooLarge, "too_large"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
				writeErr(w, tc.status, tc.code, "no: "+tc.code)
			})
			c := newTestClient(t, []string{node.URL, node.URL})
			_, err := c.Act(context.Background(), "arena", testAction(1))
			var e *Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, &Error{Status: tc.status, Code: tc.code, Message: "no: " + tc.code}, e)
			require.False(t, IsRetryable(err))
			require.False(t, IsOutcomeUnknown(err))
			require.Len(t, node.requests(), 1)
		})
	}
}

func TestActRetriesOverloadedOnTheSameNode(t *testing.T) {
	node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			writeErr(w, http.StatusTooManyRequests, CodeOverloaded, "queue full")
			return
		}
		writeJSON(w, http.StatusOK, eventFor("arena", 1, false))
	})
	c := newTestClient(t, []string{node.URL})
	_, err := c.Act(context.Background(), "arena", testAction(1))
	require.NoError(t, err)
	require.Len(t, node.requests(), 2)
}

func TestActAbandonsAHungNodeAfterTheAttemptTimeout(t *testing.T) {
	release := make(chan struct{})
	hung := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	live := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, http.StatusOK, eventFor("arena", 1, false))
	})
	c := newTestClient(t, []string{hung.URL, live.URL}, WithAttemptTimeout(50*time.Millisecond))
	_, err := c.Act(context.Background(), "arena", testAction(1))
	require.NoError(t, err)
	require.Len(t, live.requests(), 1)
}

func TestActRejectsAMissingSeq(t *testing.T) {
	c := newTestClient(t, []string{"127.0.0.1:1"})
	_, err := c.Act(context.Background(), "arena", ActionRequest{Player: "p1", Ops: []wire.Op{Incr("e", "f", 1)}})
	require.ErrorContains(t, err, "seq")
	_, err = c.ActBatch(context.Background(), "arena", []ActionRequest{testAction(1), {Player: "p"}})
	require.ErrorContains(t, err, "action 1 needs a seq")
}

func TestNoAddressesIsAnError(t *testing.T) {
	c := New([]string{" ", ""})
	_, err := c.Status(context.Background())
	require.ErrorContains(t, err, "no addresses")
}

func TestErrorDecoding(t *testing.T) {
	t.Run("a body that is not JSON becomes the message", func(t *testing.T) {
		node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
			http.Error(w, "boom", http.StatusInternalServerError)
		})
		c := newTestClient(t, []string{node.URL})
		_, err := c.Status(context.Background())
		var e *Error
		require.ErrorAs(t, err, &e)
		require.Equal(t, &Error{Status: 500, Message: "boom"}, e)
		require.Equal(t, "gsd: 500 Internal Server Error: boom", e.Error())
		require.False(t, IsRetryable(err))
	})
	t.Run("a gateway error without a code is retried", func(t *testing.T) {
		node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 1 {
				http.Error(w, strings.Repeat("x", 600), http.StatusBadGateway)
				return
			}
			writeJSON(w, http.StatusOK, Status{ID: "n1"})
		})
		c := newTestClient(t, []string{node.URL})
		st, err := c.Status(context.Background())
		require.NoError(t, err)
		require.Equal(t, "n1", st.ID)
	})
	t.Run("a long message is cut", func(t *testing.T) {
		node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
			http.Error(w, strings.Repeat("x", 600), http.StatusBadGateway)
		})
		c := newTestClient(t, []string{node.URL}, WithMaxAttempts(1))
		_, err := c.Status(context.Background())
		var e *Error
		require.ErrorAs(t, err, &e)
		require.Len(t, e.Message, 515)
		require.True(t, IsOutcomeUnknown(err), "a gateway does not say whether it forwarded")
	})
	t.Run("a malformed success body is a decode error", func(t *testing.T) {
		node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
			w.Write([]byte("{not json"))
		})
		c := newTestClient(t, []string{node.URL})
		_, err := c.Status(context.Background())
		require.ErrorContains(t, err, "decode GET /v1/status answer")
		require.Len(t, node.requests(), 1)
	})
	t.Run("redirects are not followed", func(t *testing.T) {
		target := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
			writeJSON(w, http.StatusOK, Status{})
		})
		node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
			http.Redirect(w, r, target.URL+"/v1/status", http.StatusTemporaryRedirect)
		})
		c := newTestClient(t, []string{node.URL}, WithHTTPClient(&http.Client{}))
		_, err := c.Status(context.Background())
		require.Equal(t, http.StatusTemporaryRedirect, StatusCode(err))
		require.ErrorContains(t, err, "not followed")
		require.Empty(t, target.requests())
	})
}

func TestIsRetryable(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		retryable bool
		unknown   bool
	}{
		{"nil", nil, false, false},
		{"plain", errors.New("x"), false, false},
		{"not leader", &Error{Status: 503, Code: CodeNotLeader}, true, false},
		{"outcome unknown", &Error{Status: 503, Code: CodeOutcomeUnknown}, true, true},
		{"wrapped outcome unknown", errors.Join(errors.New("ctx"), &Error{Status: 503, Code: CodeOutcomeUnknown}), true, true},
		{"overloaded", &Error{Status: 429, Code: CodeOverloaded}, true, false},
		{"bare 429", &Error{Status: 429}, true, false},
		{"bare 503", &Error{Status: 503}, true, false},
		{"bare 504", &Error{Status: 504}, true, true},
		{"seq reused", &Error{Status: 409, Code: CodeSeqReused}, false, false},
		{"unsalted", &Error{Status: 409, Code: CodeUnsalted}, true, false},
		{"shutting down", &Error{Status: 503, Code: CodeUnavailable}, true, false},
		{"no leader yet", &Error{Status: 503, Code: CodeNotReady}, true, false},
		{"read timeout", &Error{Status: 503, Code: CodeTimeout}, true, false},
		{"bare 500", &Error{Status: 500}, false, false},
		{"internal", &Error{Status: 500, Code: "internal"}, false, false},
		{"archive gap", &Error{Status: 410, Code: CodeArchiveGap}, false, false},
		{"world moved", &Error{Status: 421, Code: CodeWorldMoved}, true, false},
		{"dial", &connError{addr: "a", err: errors.New("refused")}, true, false},
		{"reset after send", &connError{addr: "a", sent: true, err: errors.New("reset")}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.retryable, IsRetryable(tc.err))
			require.Equal(t, tc.unknown, IsOutcomeUnknown(tc.err))
		})
	}
	require.True(t, failover(&Error{Status: 421, Code: CodeWorldMoved}), "another node may know the world's new home")
	require.False(t, failover(&Error{Status: 503, Code: CodeOverloaded}))
	require.True(t, IsConnError(&connError{err: errors.New("x")}))
	require.Equal(t, "gsd: a: x", (&connError{addr: "a", err: errors.New("x")}).Error())
	require.Equal(t, "gsd: archive_gap: old", (&Error{Code: CodeArchiveGap, Message: "old"}).Error())
	require.Equal(t, "", Code(errors.New("x")))
	require.Equal(t, 0, StatusCode(errors.New("x")))
}

func TestOpConstructorsMatchTheWireForm(t *testing.T) {
	ops := []wire.Op{
		Add("bag", "items", wire.String("shield")), Remove("bag", "items", wire.String("sword")), Delete("bag"),
		ExpectVersion(Set("door", "open", wire.Bool(false)), 0),
	}
	b, err := json.Marshal(ops)
	require.NoError(t, err)
	require.JSONEq(t, `[
		{"op":"add","entity":"bag","field":"items","value":"shield"},
		{"op":"remove","entity":"bag","field":"items","value":"sword"},
		{"op":"delete","entity":"bag"},
		{"op":"set","entity":"door","field":"open","value":false,"expect":"*"}]`, string(b))
}

// An unknown outcome stays unknown until a success settles it: a later
// not_leader or a refusal of the retry says nothing about the first attempt.
func TestActKeepsAnEarlierUnknownOutcomeWhenARetryIsRefused(t *testing.T) {
	for _, later := range []struct {
		status int
		code   string
	}{{http.StatusConflict, "seq_expired"}, {http.StatusServiceUnavailable, "not_leader"}, {http.StatusInternalServerError, "internal"}} {
		node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 1 {
				writeErr(w, http.StatusServiceUnavailable, CodeOutcomeUnknown, "timeout")
				return
			}
			writeErr(w, later.status, later.code, "later")
		})
		_, err := newTestClient(t, []string{node.URL}, WithMaxAttempts(2)).Act(context.Background(), "arena", testAction(1))
		require.Equal(t, later.code, Code(err))
		require.True(t, IsOutcomeUnknown(err), later.code)
	}
}

// TestActRetriesAnActionRefusedUnsalted: a salted world refuses an action
// whose player's salt was erased while it was sent, before it takes a
// seq; the retry, same body, draws a new salt.
func TestActRetriesAnActionRefusedUnsalted(t *testing.T) {
	node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			writeErr(w, http.StatusConflict, CodeUnsalted, "player p1 in world arena")
			return
		}
		writeJSON(w, http.StatusOK, eventFor("arena", 3, false))
	})
	c := newTestClient(t, []string{node.URL})
	ev, err := c.Act(context.Background(), "arena", testAction(9))
	require.NoError(t, err)
	require.Equal(t, uint64(3), ev.Seq)
	reqs := node.requests()
	require.Len(t, reqs, 2)
	require.Equal(t, reqs[0].Body, reqs[1].Body)
}
