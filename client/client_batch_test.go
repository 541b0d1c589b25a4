package client

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestActBatchRetriesOnlyUnsettledActions(t *testing.T) {
	node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			w.Write([]byte(`{"results":[` +
				`{"world":"arena","seq":1,"index":5,"time":1,"player":"p1","client_seq":1,"priority":"critical","status":"applied"},` +
				`{"code":"outcome_unknown","error":"timeout"},` +
				`{"code":"seq_reused","error":"different payload"}]}`))
			return
		}
		w.Write([]byte(`{"results":[{"world":"arena","seq":2,"index":6,"time":1,"player":"p1","client_seq":2,"priority":"critical","status":"applied","duplicate":true}]}`))
	})
	c := newTestClient(t, []string{node.URL})
	res, err := c.ActBatch(context.Background(), "arena", []ActionRequest{testAction(1), testAction(2), testAction(3)})
	require.NoError(t, err)
	require.Len(t, res, 3)
	require.NoError(t, res[0].Err)
	require.Equal(t, uint64(1), res[0].Event.Seq)
	require.NoError(t, res[1].Err)
	require.True(t, res[1].Event.Duplicate)
	require.Equal(t, &Error{Status: 409, Code: CodeSeqReused, Message: "different payload"}, res[2].Err)

	reqs := node.requests()
	require.Len(t, reqs, 2)
	require.Equal(t, "/v1/worlds/arena/actions:batch", reqs[0].Path)
	var second struct {
		Actions []ActionRequest `json:"actions"`
	}
	require.NoError(t, json.Unmarshal([]byte(reqs[1].Body), &second))
	require.Len(t, second.Actions, 1)
	require.Equal(t, uint64(2), second.Actions[0].Seq)
}

func TestActBatchReportsUnsettledActionsWhenAttemptsRunOut(t *testing.T) {
	node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch n {
		case 1:
			w.Write([]byte(`{"results":[{"code":"not_leader","error":"x"},{"code":"outcome_unknown","error":"y"}]}`))
		default:
			writeErr(w, http.StatusBadRequest, "malformed", "bad")
		}
	})
	c := newTestClient(t, []string{node.URL})
	res, err := c.ActBatch(context.Background(), "arena", []ActionRequest{testAction(1), testAction(2)})
	require.NoError(t, err)
	require.Equal(t, "malformed", Code(res[0].Err))
	require.Equal(t, "malformed", Code(res[1].Err))
	require.False(t, IsOutcomeUnknown(res[0].Err), "only ever answered not_leader: nothing was proposed")
	require.True(t, IsOutcomeUnknown(res[1].Err), "its first attempt may have committed")

	t.Run("first request fails", func(t *testing.T) {
		bad := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
			writeErr(w, http.StatusNotFound, CodeUnknownWorld, "nope")
		})
		_, err := newTestClient(t, []string{bad.URL}).ActBatch(context.Background(), "x", []ActionRequest{testAction(1)})
		require.Equal(t, CodeUnknownWorld, Code(err))
	})
	t.Run("wrong result count", func(t *testing.T) {
		bad := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
			w.Write([]byte(`{"results":[]}`))
		})
		_, err := newTestClient(t, []string{bad.URL}).ActBatch(context.Background(), "x", []ActionRequest{testAction(1)})
		require.ErrorContains(t, err, "answered 0 results")
	})
	t.Run("attempts cap", func(t *testing.T) {
		busy := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 1 {
				w.Write([]byte(`{"results":[{"code":"overloaded","error":"x"},7]}`))
				return
			}
			w.Write([]byte(`{"results":[{"code":"overloaded","error":"x"}]}`))
		})
		res, err := newTestClient(t, []string{busy.URL}, WithMaxAttempts(2)).ActBatch(context.Background(), "x", []ActionRequest{testAction(1), testAction(2)})
		require.NoError(t, err)
		require.Equal(t, CodeOverloaded, Code(res[0].Err))
		require.Equal(t, http.StatusTooManyRequests, StatusCode(res[0].Err))
		require.ErrorContains(t, res[1].Err, "decode batch")
		require.Len(t, busy.requests(), 2)
	})
	t.Run("context ends while waiting", func(t *testing.T) {
		busy := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
			w.Write([]byte(`{"results":[{"code":"outcome_unknown","error":"x"}]}`))
		})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		c := newTestClient(t, []string{busy.URL}, WithBackoff(time.Second, time.Second))
		res, err := c.ActBatch(ctx, "x", []ActionRequest{testAction(1)})
		require.NoError(t, err)
		require.ErrorIs(t, res[0].Err, context.DeadlineExceeded)
		require.True(t, IsOutcomeUnknown(res[0].Err))
	})
}

func TestActBatchKeepsAnEarlierUnknownOutcomeAcrossAttempts(t *testing.T) {
	node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			w.Write([]byte(`{"results":[{"code":"outcome_unknown","error":"x"}]}`))
			return
		}
		w.Write([]byte(`{"results":[{"code":"not_leader","error":"y"}]}`))
	})
	res, err := newTestClient(t, []string{node.URL}, WithMaxAttempts(2)).ActBatch(context.Background(), "x", []ActionRequest{testAction(1)})
	require.NoError(t, err)
	require.Equal(t, CodeNotLeader, Code(res[0].Err))
	require.True(t, IsOutcomeUnknown(res[0].Err))
}
