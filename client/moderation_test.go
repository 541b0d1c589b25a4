package client

import (
	"context"
	"net/http"
	"testing"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func TestModerationCalls(t *testing.T) {
	flag := `{"id":"flag-1","detector":"speed","players":["ann"],"score":0.5,"evidence":[{"world":"arena","seq":3}],"world":"arena","incarnation":2,"raised_by":"n1","raised":4,"state":"open","history":[]}`
	reviews := 0
	node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch r.Method + " " + r.URL.Path {
		case "GET /v1/moderation/flags":
			switch r.URL.Query().Get("cursor") {
			case "":
				w.Write([]byte(`{"flags":[` + flag + `]}`))
			case "c1": // a second page of a paged list
				w.Write([]byte(`{"flags":[{"id":"flag-3"}],"next_cursor":"c2"}`))
			case "c2":
				w.Write([]byte(`{"flags":[{"id":"flag-4"}]}`))
			default:
				writeErr(w, http.StatusBadRequest, "malformed", "cursor")
			}
		case "GET /v1/moderation/flags/flag-1":
			w.Write([]byte(flag))
		case "POST /v1/moderation/flags/flag-1/confirm":
			reviews++
			if reviews == 1 {
				writeErr(w, http.StatusServiceUnavailable, CodeOutcomeUnknown, "timeout")
				return
			}
			writeErr(w, http.StatusConflict, "illegal_transition", "confirm a flag that is confirmed")
		case "POST /v1/moderation/flags/flag-1/appeal":
			w.Write([]byte(`{"flag":{"id":"flag-1","state":"appealed"},"review":{"n":2,"op":"appeal","from":"confirmed","to":"appealed","by":"mia","reason":"lag","at":"2026-12-06T10:00:00Z"}}`))
		case "POST /v1/moderation/flags":
			w.Write([]byte(`{"id":"flag-2","created":true}`))
		default:
			writeErr(w, http.StatusNotFound, "not_found", r.URL.Path)
		}
	})
	c := newTestClient(t, []string{node.URL})
	ctx := context.Background()

	all, err := c.Flags(ctx, FlagFilter{World: "arena", State: "open"})
	require.NoError(t, err)
	require.Equal(t, []wire.Flag{{ID: "flag-1", Detector: "speed", Players: []string{"ann"}, Score: 0.5, Evidence: []wire.FlagRef{{World: "arena", Seq: 3}},
		World: "arena", Incarnation: 2, RaisedBy: "n1", Raised: 4, State: "open", History: []wire.FlagReview{}}}, all)
	require.Equal(t, "state=open&world=arena", node.requests()[0].Query)
	_, err = c.Flags(ctx, FlagFilter{})
	require.NoError(t, err)
	require.Equal(t, "", node.requests()[1].Query)

	// Flags follows the pages; FlagsPage asks for one.
	p, err := c.FlagsPage(ctx, FlagFilter{Player: "ann"}, "c1", 1)
	require.NoError(t, err)
	require.Equal(t, wire.FlagList{Flags: []wire.Flag{{ID: "flag-3"}}, NextCursor: "c2"}, p)
	require.Equal(t, "cursor=c1&limit=1&player=ann", node.requests()[2].Query)
	_, err = c.FlagsPage(ctx, FlagFilter{}, "bad", 0)
	require.Equal(t, "malformed", Code(err))
	paged := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch r.URL.Query().Get("cursor") {
		case "":
			w.Write([]byte(`{"flags":[{"id":"flag-1"},{"id":"flag-2"}],"next_cursor":"c1"}`))
		case "c1":
			w.Write([]byte(`{"flags":[{"id":"flag-3"}]}`))
		default:
			writeErr(w, http.StatusBadRequest, "malformed", "cursor")
		}
	})
	pc := newTestClient(t, []string{paged.URL})
	all, err = pc.Flags(ctx, FlagFilter{})
	require.NoError(t, err)
	require.Equal(t, []wire.Flag{{ID: "flag-1"}, {ID: "flag-2"}, {ID: "flag-3"}}, all)
	failing := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeErr(w, http.StatusBadRequest, "malformed", "cursor")
	})
	_, err = newTestClient(t, []string{failing.URL}).Flags(ctx, FlagFilter{})
	require.Equal(t, "malformed", Code(err))

	f, err := c.Flag(ctx, "flag-1")
	require.NoError(t, err)
	require.Equal(t, "speed", f.Detector)

	// A review that may have been applied is not sent again.
	_, err = c.ReviewFlag(ctx, "flag-1", "confirm", "mia", "aimbot")
	require.Equal(t, CodeOutcomeUnknown, Code(err))
	_, err = c.ReviewFlag(ctx, "flag-1", "confirm", "mia", "aimbot")
	require.Equal(t, "illegal_transition", Code(err))
	require.Equal(t, 2, reviews)
	rv, err := c.ReviewFlag(ctx, "flag-1", "appeal", "", "lag")
	require.NoError(t, err)
	require.Equal(t, "appealed", rv.Review.To)
	reqs := node.requests()
	require.JSONEq(t, `{"reason":"lag"}`, reqs[len(reqs)-1].Body)

	raised, err := c.RaiseFlag(ctx, wire.FlagRaise{Detector: "jump", Players: []string{"bob"}, RaisedBy: "ops"})
	require.NoError(t, err)
	require.Equal(t, wire.FlagRaised{ID: "flag-2", Created: true}, raised)
	reqs = node.requests()
	require.JSONEq(t, `{"detector":"jump","players":["bob"],"score":0,"evidence":null,"world":"","incarnation":0,"raised_by":"ops"}`, reqs[len(reqs)-1].Body)
}
