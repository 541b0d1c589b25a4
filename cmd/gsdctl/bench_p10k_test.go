package main

import (
	"testing"

	"github.com/gsd-dev/gsd/loadgen"
	"github.com/stretchr/testify/require"
)

func TestPlayers10kGivesTheLocalNodesAnInterestGrid(t *testing.T) {
	o := &benchOptions{p10k: loadgen.DefaultPlayers10kParams()}
	require.Nil(t, p10kNodeArgs(o, []string{"play"}), "other scenarios keep the nodes' defaults")
	require.Equal(t, []string{"--play-interest-cell=100", "--play-interest-radius=1"}, p10kNodeArgs(o, []string{players10k}))
	o.gsdArgs = []string{"--play-interest-cell=40"}
	require.Nil(t, p10kNodeArgs(o, []string{players10k}), "the caller's own grid wins")

	require.True(t, knownScenario(players10k))
	require.True(t, knownScenario("battle"))
	require.False(t, knownScenario("nope"))
	require.Contains(t, scenarioNames(), players10k)
	require.NotContains(t, benchScenarios, players10k, "not in the default suite: it runs for minutes")
}
