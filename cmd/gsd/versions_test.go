package main

import (
	"testing"

	"github.com/gsd-dev/gsd/fsm"
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
