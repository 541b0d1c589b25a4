package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func TestNodeReportsItsVersionsOnlyAsAMemberWhoseEntryLacksThem(t *testing.T) {
	self := fsm.NodeInfo{ID: "n2", RaftAddr: "r2", HTTPAddr: "h2", Versions: fsm.Supported()}
	other := fsm.NodeInfo{ID: "n1", RaftAddr: "r1", HTTPAddr: "h1"}
	bare := self
	bare.Versions = fsm.Versions{}
	moved := bare
	moved.RaftAddr = "r9"
	require.False(t, needsReport(nil, self), "not a member yet: joining adds it first")
	require.False(t, needsReport([]fsm.NodeInfo{other}, self))
	require.True(t, needsReport([]fsm.NodeInfo{other, bare}, self))
	old := bare
	old.Versions = fsm.Baseline()
	require.True(t, needsReport([]fsm.NodeInfo{old}, self), "an upgraded binary reports again")
	require.False(t, needsReport([]fsm.NodeInfo{self}, self))
	require.False(t, needsReport([]fsm.NodeInfo{moved}, self), "other addresses: a join, not a report")
}

func TestRunNodesReportTheirVersionsSoRulesUpdatesPassTheGate(t *testing.T) {
	t.Parallel()
	n1 := startNode(t, "n1", t.TempDir())
	n1.waitLeader(t)
	n2 := startNode(t, "n2", t.TempDir(), "--join", n1.http)
	n2.waitStatus(t, "every node reported its versions", func(s client.Status) bool {
		if len(s.Nodes) != 2 {
			return false
		}
		for _, n := range s.Nodes {
			if n.Versions != fsm.Supported() {
				return false
			}
		}
		return true
	})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := n2.client(t) // a follower forwards to the leader
	require.NoError(t, c.CreateWorld(ctx, "arena", wire.Rules{}))
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+n2.http+"/v1/worlds/arena/rules", strings.NewReader(`{"rules":{"strict":true}}`))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	require.JSONEq(t, `{"world":"arena","rules_version":2}`, string(body))
	require.Equal(t, 0, n2.stop(t))
	require.Equal(t, 0, n1.stop(t))
}
