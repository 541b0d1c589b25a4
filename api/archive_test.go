package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

// archivedStore is a one-node store holding world arena with n events.
func archivedStore(t *testing.T, n uint64) *store.Store {
	t.Helper()
	st := apitest.StartStore(t)
	ctx := context.Background()
	require.NoError(t, st.CreateWorld(ctx, "arena", fsm.Rules{}))
	for seq := uint64(1); seq <= n; seq++ {
		_, _, err := st.Act(ctx, &fsm.Action{World: "arena", Player: "p1", Seq: seq,
			Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e1", Field: "score", By: 1}}})
		require.NoError(t, err)
	}
	return st
}

// A node serves its archived events to the nodes of its cluster, a page at
// a time, in the bytes it stores; the edge's peer client decodes them.
func TestArchiveRouteServesStoredEventsToOtherNodes(t *testing.T) {
	t.Parallel()
	st := archivedStore(t, 5)
	ctx := context.Background()
	e := newEnvFor(t, st, withSecret)
	node := []string{edge.HeaderForwarded, "1", edge.HeaderClusterKey, testSecret}

	code, _, b := e.Do("GET", edge.InternalArchivePath("arena", 2, 3), "", node...)
	require.Equal(t, 200, code, "%s", b)
	var page edge.ArchivePage
	require.NoError(t, json.Unmarshal(b, &page))
	require.Equal(t, "arena", page.World)
	require.Equal(t, uint64(2), page.From)
	require.Len(t, page.Events, 3)
	_, want, err := st.ArchiveRecords("arena", 2, 3, 1<<20)
	require.NoError(t, err)
	require.Equal(t, want, page.Events, "the stored bytes")

	code, _, b = e.Do("GET", edge.InternalWorldPath("arena", "/archive")+"?from=1", "", node...)
	require.Equal(t, 200, code, "%s", b)
	require.NoError(t, json.Unmarshal(b, &page))
	require.Len(t, page.Events, 5, "default limit")
	code, _, b = e.Do("GET", edge.InternalArchivePath("arena", 6, 3), "", node...)
	require.Equal(t, 200, code, "%s", b)
	require.JSONEq(t, `{"world":"arena","from":6,"events":[]}`, string(b), "not held: an empty page")

	for _, q := range []string{"", "?from=0", "?from=x", "?from=1&limit=0", "?from=1&limit=1025", "?from=1&limit=x"} {
		m := e.RequireError(400, fsm.CodeMalformed, "GET", edge.InternalWorldPath("arena", "/archive")+q, "", node...)
		require.Regexp(t, "from|limit", m["error"], q)
	}
	e.RequireError(400, fsm.CodeMalformed, "GET", edge.InternalArchivePath(strings.Repeat("w", fsm.MaxNameLen+1), 1, 1), "", node...)
	e.RequireError(401, edge.CodeUnauthorized, "GET", edge.InternalArchivePath("arena", 1, 1), "", edge.HeaderForwarded, "1")

	// The peer client.
	addr := e.TS.Listener.Addr().String()
	evs, err := e.srv.FetchArchive(ctx, fsm.NodeInfo{ID: "n1", HTTPAddr: addr}, "arena", 4, 10)
	require.NoError(t, err)
	require.Len(t, evs, 2)
	require.Equal(t, uint64(4), evs[0].Seq)
	require.Equal(t, uint64(5), evs[1].Seq)
	_, err = e.srv.FetchArchive(ctx, fsm.NodeInfo{ID: "n1"}, "arena", 1, 10)
	require.ErrorIs(t, err, edge.ErrUnavailable)
	_, err = e.srv.FetchArchive(ctx, fsm.NodeInfo{ID: "n1", HTTPAddr: addr}, "arena", 1, 5000)
	require.ErrorContains(t, err, "limit")
}

func TestArchiveRouteOverABackendWithoutArchiveIsNotSupported(t *testing.T) {
	t.Parallel()
	e := newEnv(t, apitest.NewFake())
	e.RequireError(422, fsm.CodeNotSupported, "GET", edge.InternalArchivePath("arena", 1, 1), "", edge.HeaderForwarded, "1")
}

func TestArchiveClientRefusesUndecodablePages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, apitest.NewFake())
	for name, body := range map[string]string{
		"not json":  `{"events":`,
		"bad event": `{"world":"arena","from":1,"events":["AQ=="]}`,
	} {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(body)) }))
		_, err := e.srv.FetchArchive(context.Background(), fsm.NodeInfo{ID: "n2", HTTPAddr: ts.Listener.Addr().String()}, "arena", 1, 1)
		require.Error(t, err, name)
		ts.Close()
	}
}

func TestAdminArchiveRoutesShowWhatTheArchiveLacks(t *testing.T) {
	t.Parallel()
	st := apitest.StartStore(t)
	require.NoError(t, st.CreateWorld(context.Background(), "arena", fsm.Rules{}))
	e := newEnvFor(t, st, withSecret)
	admin := []string{edge.HeaderClusterKey, testSecret}
	code, _, b := e.Do("GET", "/v1/node/archive", "", admin...)
	require.Equal(t, 200, code, "%s", b)
	var status map[string]any
	require.NoError(t, json.Unmarshal(b, &status))
	require.Equal(t, float64(0), status["missing_events"])
	code, _, b = e.Do("POST", "/v1/node/archive:check", "", admin...)
	require.Equal(t, 200, code, "%s", b)
	require.Contains(t, string(b), `"missing":[]`)
	require.Contains(t, string(b), `"checked":`)
	e.RequireError(401, edge.CodeUnauthorized, "GET", "/v1/node/archive", "")
	e.RequireError(401, edge.CodeUnauthorized, "POST", "/v1/node/archive:check", "")

	fake := newEnv(t, apitest.NewFake())
	fake.RequireError(422, fsm.CodeNotSupported, "GET", "/v1/node/archive", "")
	fake.RequireError(422, fsm.CodeNotSupported, "POST", "/v1/node/archive:check", "")
}

// groupArchive is a backend that serves its one store's archive as group
// 7's, as a shard.Backend serves the replica of the group a request
// names.
type groupArchive struct{ *store.Store }

func (g groupArchive) GroupArchiveRecords(group uint64, world string, from uint64, limit, maxBytes int) (uint64, [][]byte, error) {
	if group != 7 {
		return 0, nil, fmt.Errorf("%w: no group %d here", fsm.ErrNotSupported, group)
	}
	return g.ArchiveRecords(world, from, limit, maxBytes)
}

// A shard's refill names the group it refills: the route reads that
// group's replica and names it back; the peer client refuses, as not
// served, a node that does not run the group, has no such route, or
// answers without naming the group (a gsd from before group addressing).
func TestArchiveRouteServesTheGroupARequestNames(t *testing.T) {
	t.Parallel()
	st := archivedStore(t, 3)
	ctx := context.Background()
	e := newEnvFor(t, groupArchive{st}, withSecret)
	node := []string{edge.HeaderForwarded, "1", edge.HeaderClusterKey, testSecret}
	code, _, b := e.Do("GET", edge.InternalArchivePath("arena", 1, 2), "", append(node, edge.HeaderGroup, "7")...)
	require.Equal(t, 200, code, "%s", b)
	var page edge.ArchivePage
	require.NoError(t, json.Unmarshal(b, &page))
	require.Equal(t, "7", page.Group)
	require.Len(t, page.Events, 2)
	e.RequireError(422, fsm.CodeNotSupported, "GET", edge.InternalArchivePath("arena", 1, 2), "", append(node, edge.HeaderGroup, "8")...)
	for _, g := range []string{"x", "-1", "07", "+7"} {
		m := e.RequireError(400, fsm.CodeMalformed, "GET", edge.InternalArchivePath("arena", 1, 2), "", append(node, edge.HeaderGroup, g)...)
		require.Contains(t, m["error"], "group", g)
	}

	addr := e.TS.Listener.Addr().String()
	evs, err := e.srv.FetchGroupArchive(ctx, 7, fsm.NodeInfo{ID: "n1", HTTPAddr: addr}, "arena", 2, 10)
	require.NoError(t, err)
	require.Len(t, evs, 2)
	require.Equal(t, uint64(2), evs[0].Seq)
	_, err = e.srv.FetchGroupArchive(ctx, 8, fsm.NodeInfo{ID: "n1", HTTPAddr: addr}, "arena", 1, 10)
	require.ErrorIs(t, err, store.ErrNotServed, "a node without the group")
	_, err = e.srv.FetchGroupArchive(ctx, 7, fsm.NodeInfo{ID: "n1"}, "arena", 1, 10)
	require.ErrorIs(t, err, edge.ErrUnavailable)
	require.NotErrorIs(t, err, store.ErrNotServed)

	// A single-group node serves no archive by group.
	single := newEnvFor(t, st, withSecret)
	single.RequireError(422, fsm.CodeNotSupported, "GET", edge.InternalArchivePath("arena", 1, 2), "", append(node, edge.HeaderGroup, "0")...)
	_, err = single.srv.FetchGroupArchive(ctx, 0, fsm.NodeInfo{ID: "n1", HTTPAddr: single.TS.Listener.Addr().String()}, "arena", 1, 10)
	require.ErrorIs(t, err, store.ErrNotServed)

	// Older nodes: no such route, or a page that does not name the group.
	rec := base64.StdEncoding.EncodeToString(fsm.EncodeEvent(evs[0]))
	for name, answer := range map[string]func(http.ResponseWriter){
		"no route": func(w http.ResponseWriter) {
			w.WriteHeader(404)
			_, _ = w.Write([]byte(`{"code":"not_found","error":"no such route"}`))
		},
		"unknown world": func(w http.ResponseWriter) {
			w.WriteHeader(404)
			_, _ = w.Write([]byte(`{"code":"unknown_world","error":"unknown world"}`))
		},
		"no group": func(w http.ResponseWriter) {
			_, _ = w.Write([]byte(`{"world":"arena","from":2,"events":["` + rec + `"]}`))
		},
		"another group": func(w http.ResponseWriter) {
			_, _ = w.Write([]byte(`{"group":"3","world":"arena","from":2,"events":["` + rec + `"]}`))
		},
	} {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { answer(w) }))
		evs, err := e.srv.FetchGroupArchive(ctx, 7, fsm.NodeInfo{ID: "old", HTTPAddr: ts.Listener.Addr().String()}, "arena", 2, 10)
		require.ErrorIs(t, err, store.ErrNotServed, name)
		require.Nil(t, evs, name)
		// The error, which the refiller logs, says which: a node without
		// the world in the group, or one that does not serve it.
		if name == "unknown world" {
			require.ErrorIs(t, err, fsm.ErrUnknownWorld)
			require.ErrorContains(t, err, "holds no world arena in group 7")
		} else {
			require.NotErrorIs(t, err, fsm.ErrUnknownWorld, name)
			require.NotContains(t, err.Error(), "holds no world", name)
		}
		ts.Close()
	}
}
