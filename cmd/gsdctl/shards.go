package main

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
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
	cmd := &cobra.Command{
		Use:   "placement",
		Short: "Show how worlds spread over shards and voter seats over nodes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withShardMap(cmd, a.printPlacement)
		},
	}
	cmd.AddCommand(a.rebalanceCmd())
	return cmd
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
	var down []string
	for _, n := range m.Nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", n.ID, n.Raft, n.HTTP)
		if n.Down {
			down = append(down, n.ID)
		}
	}
	if len(down) > 0 {
		fmt.Fprintf(tw, "marked down (gsdctl node down; evacuate and remove them): %s\n", strings.Join(down, ","))
	}
	if len(m.MetaMembers) > 0 {
		var voters, nonvoters []string
		for _, mm := range m.MetaMembers {
			if mm.Voter {
				voters = append(voters, mm.ID)
			} else {
				nonvoters = append(nonvoters, mm.ID)
			}
		}
		fmt.Fprintln(tw)
		fmt.Fprintf(tw, "meta group: voters %s; nonvoters %s\n", dash(strings.Join(voters, ",")), dash(strings.Join(nonvoters, ",")))
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
	fmt.Fprintln(tw, "SHARD\tWORLDS\tPLAYERS\tEVENTS/S\tVOTERS")
	for _, s := range m.Shards {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\n", s.ID, s.Worlds, s.Players, s.Events, len(s.Voters))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "NODE\tSEATS\tSHARDS")
	for _, n := range m.Nodes {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", n.ID, len(seats[n.ID]), dash(strings.Join(seats[n.ID], ",")))
	}
	return tw.Flush()
}

// shardCmd is `gsdctl shard create|remove|place|drain`: changes to the meta
// group's shard map (gsd --meta; admin calls).
func (a *app) shardCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "shard", Short: "Change the shard map held by the meta group (gsd --meta)"}
	var replicas int
	var voters []string
	create := &cobra.Command{
		Use:   "create ID",
		Short: "Add a shard: its voters (--voters), or how many the meta group spreads over the nodes (--replicas)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseShardID(args[0])
			if err != nil {
				return err
			}
			if (len(voters) == 0) == (replicas == 0) {
				return usageError{errors.New("give either --voters or --replicas")}
			}
			ctx, cancel := a.context(cmd)
			defer cancel()
			info, err := a.client().CreateShard(ctx, wire.ShardCreate{ID: id, Voters: voters, Replicas: replicas})
			if err != nil {
				return err
			}
			if a.output == "json" {
				return a.printJSON(info)
			}
			fmt.Fprintf(a.stdout, "shard %d: voters %s\n", info.ID, strings.Join(info.Voters, ","))
			return nil
		},
	}
	create.Flags().IntVar(&replicas, "replicas", 0, "number of voters the meta group picks (spread over nodes and regions)")
	create.Flags().StringSliceVar(&voters, "voters", nil, "node ids of the shard's voters, comma-separated")
	remove := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a shard from the map (refused while the map lists worlds on it; its voters keep their data)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseShardID(args[0])
			if err != nil {
				return err
			}
			ctx, cancel := a.context(cmd)
			defer cancel()
			if err := a.client().RemoveShard(ctx, id); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "shard %d removed\n", id)
			return nil
		},
	}
	var on string
	place := &cobra.Command{
		Use:   "place WORLD",
		Short: "Place a world before creating it: on the shard with the most headroom, or on --on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var target *uint64
			if on != "" {
				id, err := parseShardID(on)
				if err != nil {
					return err
				}
				target = &id
			}
			ctx, cancel := a.context(cmd)
			defer cancel()
			got, err := a.client().PlaceWorld(ctx, args[0], target)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "world %s: shard %d\n", args[0], got)
			return nil
		},
	}
	place.Flags().StringVar(&on, "on", "", "the shard id to put the world on (default: the meta group places it)")
	cmd.AddCommand(create, remove, place, a.shardDrainCmd())
	return cmd
}

func parseShardID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, usageError{fmt.Errorf("shard id %q: want a non-negative integer", s)}
	}
	return id, nil
}
