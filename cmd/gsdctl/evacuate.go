package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
	"github.com/spf13/cobra"
)

// evacuatePoll is how often evacuate reads the map while a shard's
// replacement is carried out.
const evacuatePoll = 200 * time.Millisecond

func (a *app) nodeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Act on a node of the shard map held by the meta group (gsd --meta)"}
	var dryRun, remove bool
	evacuate := &cobra.Command{
		Use:   "evacuate NODE",
		Short: "Replace NODE's voter in every shard it votes in, one shard at a time",
		Long: `evacuate replaces NODE (a node id of the shard map) in every shard it is a
voter of, one shard at a time: the meta group picks the node that takes its
seat (the fewest seats, spread over regions, never a voter of the shard), that
node joins the shard and catches up, becomes a voter, and only then does NODE
leave the shard and stop its group (deleting its data). So a shard never has
fewer voters than before. evacuate waits, for each shard, until the map no
longer lists NODE among its voters (at most --timeout per shard), and stops
at the first shard that fails; running it again resumes where it stopped.
It refuses before changing anything when a shard has no node to take the
seat (a shard needs more nodes than voters). NODE stays a node of the map
and holds no shard afterwards; with --remove, evacuate then removes it from
the map (as node remove does).`,
		Example: `  gsdctl --addr 10.0.0.1:7070 --secret-file cluster.secret node evacuate n3 --dry-run
  gsdctl node evacuate n3 --timeout 2m --remove`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.evacuate(cmd.Context(), args[0], dryRun, remove)
		},
	}
	evacuate.Flags().BoolVar(&dryRun, "dry-run", false, "print the shards NODE would leave and change nothing")
	evacuate.Flags().BoolVar(&remove, "remove", false, "after every shard is evacuated, remove NODE from the shard map")
	cmd.AddCommand(evacuate, a.nodeRemoveCmd(), a.nodeAddCmd(), a.nodeDownCmd())
	return cmd
}

// evacuate runs gsdctl node evacuate; with remove, it then removes the
// node from the map.
func (a *app) evacuate(ctx context.Context, node string, dryRun, remove bool) error {
	c := a.client()
	defer c.Close()
	m, err := a.readMap(ctx, c)
	if err != nil {
		return err
	}
	if !m.Meta {
		return usageError{errors.New("the shard map is a static file (gsd --shard-map without --meta): voters change through the meta group only")}
	}
	shards, err := evacuationPlan(m, node)
	if err != nil {
		return err
	}
	if len(shards) == 0 && !remove {
		fmt.Fprintf(a.stdout, "node %s votes in no shard: nothing to do\n", node)
	}
	for _, s := range shards {
		if s.ID == 0 {
			// gsd's membership group: it holds the node table, and its
			// members change by join and remove (the meta group refuses).
			fmt.Fprintf(a.stdout, "shard 0: the membership group: not replaced (gsdctl remove %s takes the node out of it)\n", node)
			continue
		}
		if dryRun {
			fmt.Fprintf(a.stdout, "shard %d: would replace %s (voters %s) with a node the meta group picks\n",
				s.ID, node, strings.Join(s.Voters, ","))
			continue
		}
		if err := a.evacuateShard(ctx, c, s.ID, node); err != nil {
			return fmt.Errorf("shard %d: %w (run evacuate again to resume)", s.ID, err)
		}
	}
	switch {
	case !remove:
		return nil
	case slices.ContainsFunc(shards, func(s wire.ShardInfo) bool { return s.ID == 0 }):
		// The map's shard 0 lists the membership group's voters as
		// seeded; no replacement changes them, so the map keeps NODE.
		return fmt.Errorf("not removed from the shard map: it lists %s as a voter of shard 0, the membership group, which evacuate does not replace", node)
	case dryRun:
		fmt.Fprintf(a.stdout, "would remove %s from the shard map\n", node)
		return nil
	}
	return a.removeMapNode(ctx, c, node)
}

func (a *app) nodeRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "remove NODE",
		Short: "Remove NODE, a voter of no shard (evacuate it first), from the shard map",
		Long: `remove takes NODE out of the meta group's shard map (gsd --meta), so the meta
group no longer places voters on it. The map refuses while NODE is a voter
of a shard or joining one (it names the shards: run node evacuate NODE
first). It does not take NODE out of gsd's membership group (group 0): it
prints the commands that do. NODE also leaves the meta group: its leader
takes it out of the group's members at its next report (handing the
leadership on first when NODE leads, and promoting a caught-up member first
when NODE votes; gsd --meta-voters).`,
		Example: `  gsdctl --secret-file cluster.secret node remove n3`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := a.client()
			defer c.Close()
			return a.removeMapNode(cmd.Context(), c, args[0])
		},
	}
}

// removeMapNode removes node from the shard map within --timeout and
// says what is left to take it out of the cluster. It does not remove
// the node from group 0 itself: that is safe only when the node is
// neither group 0's leader nor its last voter, which gsdctl remove's
// operator checks (gsdctl status).
func (a *app) removeMapNode(ctx context.Context, c *client.Client, node string) error {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	if err := c.RemoveMapNode(ctx, node); err != nil {
		return fmt.Errorf("remove %s from the shard map: %w", node, err)
	}
	fmt.Fprintf(a.stdout, "node %s removed from the shard map\n", node)
	fmt.Fprintf(a.stdout, "the meta group's leader takes it out of the meta group's members (unless gsd runs with --meta-voters 0)\n")
	fmt.Fprintf(a.stdout, "it is still a member of group 0: check gsdctl status (if %s leads, run gsdctl transfer-leader first), then run gsdctl remove %s\n", node, node)
	return nil
}

// evacuationPlan returns the shards node votes in, in id order, or an
// error when node is not in the map or a shard has no node to take its
// seat (every node votes in it).
func evacuationPlan(m wire.ShardMap, node string) ([]wire.ShardInfo, error) {
	if !slices.ContainsFunc(m.Nodes, func(n wire.ShardNode) bool { return n.ID == node }) {
		return nil, usageError{fmt.Errorf("no node %q in the shard map", node)}
	}
	var out []wire.ShardInfo
	var errs []error
	live := 0 // a node marked down takes no seat
	for _, n := range m.Nodes {
		if !n.Down {
			live++
		}
	}
	for _, s := range m.Shards {
		if !slices.Contains(s.Voters, node) {
			continue
		}
		// The seat goes to a live node that is not a voter of the shard.
		free := live
		for _, v := range s.Voters {
			if slices.ContainsFunc(m.Nodes, func(n wire.ShardNode) bool { return n.ID == v && !n.Down }) {
				free--
			}
		}
		if free < 1 && s.ID != 0 {
			down := ""
			if live < len(m.Nodes) {
				down = fmt.Sprintf(" (%d marked down)", len(m.Nodes)-live)
			}
			errs = append(errs, fmt.Errorf("shard %d has %d voters on %d nodes%s: no node can take %s's seat (add a node first)",
				s.ID, len(s.Voters), len(m.Nodes), down, node))
		}
		out = append(out, s)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b wire.ShardInfo) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// evacuateShard replaces node in shard id and waits, within --timeout,
// until the map no longer lists it among the shard's voters.
func (a *app) evacuateShard(ctx context.Context, c *client.Client, id uint64, node string) error {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	res, err := c.ReplaceVoter(ctx, id, node, "")
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "shard %d: %s takes %s's seat\n", id, res.New, node)
	t := time.NewTicker(evacuatePoll)
	defer t.Stop()
	for {
		m, err := c.Shards(ctx)
		if err == nil {
			for _, s := range m.Shards {
				if s.ID == id && !slices.Contains(s.Voters, node) {
					fmt.Fprintf(a.stdout, "shard %d: done, voters %s\n", id, strings.Join(s.Voters, ","))
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s is still a voter after %s: %w", node, a.timeout, ctx.Err())
		case <-t.C:
		}
	}
}

// readMap reads the shard map within --timeout.
func (a *app) readMap(ctx context.Context, c *client.Client) (wire.ShardMap, error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	return c.Shards(ctx)
}
