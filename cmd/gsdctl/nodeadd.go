package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/gsd-dev/gsd/wire"
	"github.com/spf13/cobra"
)

func (a *app) nodeAddCmd() *cobra.Command {
	var n wire.ShardNode
	cmd := &cobra.Command{
		Use:   "add NODE --raft HOST:PORT --http ADDR",
		Short: "Add NODE to the shard map held by the meta group; the meta group takes it into its own members",
		Long: `add puts NODE into the meta group's shard map (gsd --meta), with the
address its Raft groups listen on (--raft), its HTTP address (--http,
host:port or an https:// base URL) and an optional region label for voter
placement. Adding a node again changes its addresses, and keeps its
region unless --region is given (--region "" clears it). The meta group's
leader then adds NODE to the meta group's own members, as a voter once it
caught up while the group has fewer voters than it keeps (gsd
--meta-voters). Start NODE first with gsd --meta --meta-join (and --join for
group 0), its --shard-map file listing it: it waits to be added instead of
forming a meta group of its own. Placement may then give it shard voters
(gsdctl shard create, node evacuate).`,
		Example: `  gsdctl --secret-file cluster.secret node add n4 --raft 10.0.0.4:7000 --http 10.0.0.4:8080 --region eu`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n.ID = args[0]
			return a.addMapNode(cmd.Context(), n, cmd.Flags().Changed("region"))
		},
	}
	cmd.Flags().StringVar(&n.Raft, "raft", "", "NODE's Raft address, host:port (required)")
	cmd.Flags().StringVar(&n.HTTP, "http", "", "NODE's HTTP address, host:port or an https:// base URL (required)")
	cmd.Flags().StringVar(&n.Region, "region", "", "a region label: voters spread over regions")
	_ = cmd.MarkFlagRequired("raft")
	_ = cmd.MarkFlagRequired("http")
	return cmd
}

// addMapNode adds n to the shard map within --timeout. Unless region
// was given, a node the map holds keeps its region: add_node sets every
// field, so adding a node again to change an address cleared it.
func (a *app) addMapNode(ctx context.Context, n wire.ShardNode, region bool) error {
	c := a.client()
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	if !region {
		m, err := c.Shards(ctx)
		if err != nil {
			return fmt.Errorf("add %s to the shard map: read its region: %w", n.ID, err)
		}
		if i := slices.IndexFunc(m.Nodes, func(o wire.ShardNode) bool { return o.ID == n.ID }); i >= 0 && m.Nodes[i].Region != "" {
			n.Region = m.Nodes[i].Region
			fmt.Fprintf(a.stdout, "node %s keeps its region %s\n", n.ID, n.Region)
		}
	}
	if err := c.AddMapNode(ctx, n); err != nil {
		return fmt.Errorf("add %s to the shard map: %w", n.ID, err)
	}
	fmt.Fprintf(a.stdout, "node %s added to the shard map\n", n.ID)
	fmt.Fprintf(a.stdout, "the meta group's leader takes it into the meta group's members (unless gsd runs with --meta-voters 0)\n")
	return nil
}
