package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func (a *app) nodeDownCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "down NODE [NODE...]",
		Short: "Declare NODEs dead for good, so that their shards can be evacuated",
		Long: `down marks NODEs of the meta group's shard map (gsd --meta) as dead: the meta
group takes them out of its own members first, and from then on its version
gate (which waits for every member to read a change before it is made) no
longer waits for them. Without it, a dead node keeps the gate closed, so
node evacuate cannot replace it in its shards. A marked node stays a node of
the map and a voter of its shards until they are evacuated; it is given no
new seat and not taken back into the meta group. Then run node evacuate for
each NODE, and node remove.

The meta group refuses a NODE that answers (conflict): a node that is alive,
whatever gsd it runs, is evacuated as it is, or stopped first. Give every
dead member in one call: each closes the gate for the others. A NODE that
comes back must be added again (node add): the meta group then takes it
back once it runs a gsd that reads its log.`,
		Example: `  gsdctl --secret-file cluster.secret node down n3
  gsdctl node evacuate n3 --remove`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.markNodesDown(cmd.Context(), args)
		},
	}
}

// markNodesDown marks nodes down within --timeout and says what is next.
func (a *app) markNodesDown(ctx context.Context, nodes []string) error {
	c := a.client()
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	if err := c.MarkNodesDown(ctx, nodes); err != nil {
		return fmt.Errorf("mark %s down: %w", strings.Join(nodes, ","), err)
	}
	for _, n := range nodes {
		fmt.Fprintf(a.stdout, "node %s marked down: it left the meta group\n", n)
	}
	for _, n := range nodes {
		fmt.Fprintf(a.stdout, "next: gsdctl node evacuate %s --remove\n", n)
	}
	return nil
}
