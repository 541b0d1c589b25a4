package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/gsd-dev/gsd/wire"
	"github.com/spf13/cobra"
)

// shardsCmd is `gsdctl shards` and `gsdctl shards worlds`: the shard map
// as the node asked sees it (GET /v1/cluster/shards, an admin call).
func (a *app) shardsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "shards",
		Short: "Show the shard map: shards, their voters and leaders, and the nodes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withShardMap(cmd, a.printShards)
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "worlds",
		Short: "Show the worlds the shard map lists and their shards (others hash over the shards)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withShardMap(cmd, a.printShardWorlds)
		},
	})
	return cmd
}

// placementCmd is `gsdctl placement`: how worlds and voters are spread.
func (a *app) placementCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "placement",
		Short: "Show how worlds spread over shards and voter seats over nodes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withShardMap(cmd, a.printPlacement)
		},
	}
}

// withShardMap fetches the shard map and prints it as JSON (-o json) or
// with table.
func (a *app) withShardMap(cmd *cobra.Command, table func(wire.ShardMap) error) error {
	ctx, cancel := a.context(cmd)
	defer cancel()
	m, err := a.client().Shards(ctx)
	if err != nil {
		return err
	}
	if a.output == "json" {
		return a.printJSON(m)
	}
	return table(m)
}

func source(m wire.ShardMap) string {
	if m.Meta {
		return "meta group"
	}
	return "static file"
}

func (a *app) printShards(m wire.ShardMap) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "SHARD\tVOTERS\tLEADER\tWORLDS\tPLAYERS\t(map: %s)\n", source(m))
	for _, s := range m.Shards {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t\n", s.ID, strings.Join(s.Voters, ","), dash(s.Leader), s.Worlds, s.Players)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "NODE\tRAFT\tHTTP")
	for _, n := range m.Nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", n.ID, n.Raft, n.HTTP)
	}
	return tw.Flush()
}

func (a *app) printShardWorlds(m wire.ShardMap) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WORLD\tSHARD")
	for _, w := range slices.Sorted(maps.Keys(m.Worlds)) {
		fmt.Fprintf(tw, "%s\t%d\n", w, m.Worlds[w])
	}
	return tw.Flush()
}

func (a *app) printPlacement(m wire.ShardMap) error {
	seats := map[string][]string{}
	for _, s := range m.Shards {
		for _, v := range s.Voters {
			seats[v] = append(seats[v], fmt.Sprint(s.ID))
		}
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SHARD\tWORLDS\tPLAYERS\tVOTERS")
	for _, s := range m.Shards {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\n", s.ID, s.Worlds, s.Players, len(s.Voters))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "NODE\tSEATS\tSHARDS")
	for _, n := range m.Nodes {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", n.ID, len(seats[n.ID]), dash(strings.Join(seats[n.ID], ",")))
	}
	return tw.Flush()
}
