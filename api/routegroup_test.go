package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// groupRouter is a TableRouter that can follow a forwarding node's group
// (edge.GroupRouter): Groups answers by group, else the table answers.
type groupRouter struct {
	*apitest.TableRouter
	Groups map[string]edge.Route
	Hints  []string // the groups RouteGroup was asked with
}

func (r *groupRouter) RouteGroup(world string, kind edge.Kind, group string) (edge.Route, error) {
	r.Hints = append(r.Hints, group)
	if rt, ok := r.Groups[group]; ok {
		return rt, nil
	}
	return r.Route(world, kind)
}

// A world placed a moment ago is in the forwarding node's shard map and
// not yet in the receiver's, which would route it by its name's hash to
// another of its groups: the forward names the group the sender chose,
// and the receiver runs the action there. A client's own request names
// none that counts: the header is only followed on forwarded requests.
func TestAForwardedActionRunsOnTheGroupTheSenderChose(t *testing.T) {
	t.Parallel()
	placed, hashed, backend := apitest.NewFake(), apitest.NewFake(), apitest.NewFake()
	for _, f := range []*apitest.Fake{placed, hashed, backend} {
		require.NoError(t, f.CreateWorld(context.Background(), "fresh", fsm.Rules{}))
	}
	gr := &groupRouter{
		TableRouter: &apitest.TableRouter{Routes: map[string]edge.Route{"fresh": {GroupID: "1", Group: hashed}}},
		Groups:      map[string]edge.Route{"2": {GroupID: "2", Group: placed}},
	}
	rs, err := New(testConfig(), backend, gr, nil)
	require.NoError(t, err)
	t.Cleanup(rs.Close)
	rts := httptest.NewServer(rs.Handler())
	t.Cleanup(rts.Close)

	tr := &apitest.TableRouter{Routes: map[string]edge.Route{"fresh": {GroupID: "2", Node: "n2", Addr: rts.Listener.Addr().String()}}}
	ss, sf := routedEnv(t, tr)
	require.NoError(t, sf.CreateWorld(context.Background(), "fresh", fsm.Rules{}))
	sts := httptest.NewServer(ss.Handler())
	t.Cleanup(sts.Close)

	resp, err := http.Post(sts.URL+"/v1/worlds/fresh/actions", "application/json", strings.NewReader(incrBody))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, 1, placed.Acts, "run on the group the sender chose")
	require.Zero(t, hashed.Acts)
	require.Equal(t, []string{"2"}, gr.Hints)

	// Straight from a client, a group header is not a forward's.
	req, err := http.NewRequest(http.MethodPost, rts.URL+"/v1/worlds/fresh/actions", strings.NewReader(incrBody))
	require.NoError(t, err)
	req.Header.Set(edge.HeaderGroup, "2")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, 1, hashed.Acts, "the receiver's own route")
	require.Equal(t, []string{"2"}, gr.Hints, "no hint followed")
}
