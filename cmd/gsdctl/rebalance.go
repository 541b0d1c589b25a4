package main

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/shard/meta/plan"
	"github.com/gsd-dev/gsd/wire"
	"github.com/spf13/cobra"
)

// rebalanceCmd is `gsdctl placement rebalance`: plan world moves from the
// most loaded shards to those with the most headroom (plan.Rebalance,
// the measure placement uses), then run them one at a time.
func (a *app) rebalanceCmd() *cobra.Command {
	var (
		dry      bool
		maxMoves int
	)
	cmd := &cobra.Command{
		Use:   "rebalance",
		Short: "Move worlds from the most loaded shards to those with the most headroom (gsd --meta)",
		Long: `rebalance reads the shard map, plans world moves from the most loaded
shards to those with the most headroom (fewest worlds, then players, then
events/s: placement's measure; load is reported per shard, so a world
counts for an even share of its shard's), never leaving a target busier
than its source, and runs them one at a time through the move route,
printing each (--timeout bounds each move). A failed move stops the run: moves are resumable, so finish
it with the "world move" the message names, then run rebalance again.
Only worlds the map lists are moved.`,
		Example: `  gsdctl placement rebalance --dry-run
  gsdctl placement rebalance --max-moves 4`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if maxMoves < 0 {
				return usageError{fmt.Errorf("--max-moves %d: want 0 (no limit) or more", maxMoves)}
			}
			return a.planAndMove(cmd, dry, func(m wire.ShardMap) ([]plan.Move, map[string]uint64, error) {
				steps, err := plan.Rebalance(shardLoads(m), m.Worlds, maxMoves)
				return steps, nil, err
			})
		},
	}
	cmd.Flags().BoolVar(&dry, "dry-run", false, "print the plan and move nothing")
	cmd.Flags().IntVar(&maxMoves, "max-moves", 0, "move at most this many worlds (0: no limit)")
	return cmd
}

// shardDrainCmd is `gsdctl shard drain ID`: every world the map lists on
// the shard moves to where placement would put it (plan.Drain).
func (a *app) shardDrainCmd() *cobra.Command {
	var dry bool
	cmd := &cobra.Command{
		Use:   "drain ID",
		Short: "Move every world off a shard, each to where placement would put it, so it can be removed (gsd --meta)",
		Long: `drain moves every world the shard map lists on shard ID to the other
shards, one at a time, each to the shard placement would put a new world on;
then "shard remove ID" succeeds. It refuses the last shard. A failed move
stops the run: finish it with the "world move" the message names, then run
drain again. Worlds the map does not list (created before placement, living
where their name hashes) are found by listing every node's worlds: those on
ID are moved too, and the others are listed where they are first, because
removing a shard changes where unlisted worlds hash. Such a pin applies only
while the world is still where the drain found it: a world moved or placed
meanwhile is left where the map has it (reported, and the drain goes on), so
a concurrent move is never undone. With a meta member on an older gsd the
pins are unconditional (a warning says so): run no other moves then.`,
		Example: `  gsdctl shard drain 3 --dry-run
  gsdctl shard drain 3 && gsdctl shard remove 3`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseShardID(args[0])
			if err != nil {
				return err
			}
			err = a.planAndMove(cmd, dry, func(m wire.ShardMap) ([]plan.Move, map[string]uint64, error) {
				unlisted, err := a.unlistedWorlds(cmd, m)
				if err != nil {
					return nil, nil, err
				}
				worlds, pins := maps.Clone(m.Worlds), map[string]uint64{}
				for w, g := range unlisted {
					if g == id {
						worlds[w] = g // moved, and listed by the move
					} else {
						pins[w] = g
					}
				}
				steps, err := plan.Drain(shardLoads(m), worlds, id)
				return steps, pins, err
			})
			if err != nil || dry || a.output == "json" {
				return err
			}
			// A world moved there meanwhile keeps the shard (its removal
			// is refused): say so rather than promise the removal.
			c := a.client()
			defer c.Close()
			ctx, cancel := a.context(cmd)
			m, err := c.Shards(ctx)
			cancel()
			if err != nil {
				return err
			}
			for _, s := range m.Shards {
				if s.ID == id && s.Worlds > 0 {
					fmt.Fprintf(a.stdout, "shard %d lists %d worlds again (moved or placed there meanwhile): run drain again\n", id, s.Worlds)
					return nil
				}
			}
			fmt.Fprintf(a.stdout, "shard %d lists no worlds: gsdctl shard remove %d removes it\n", id, id)
			return nil
		},
	}
	cmd.Flags().BoolVar(&dry, "dry-run", false, "print the plan and move nothing")
	return cmd
}

// shardLoads is the map's shards as the planner weighs them.
func shardLoads(m wire.ShardMap) []plan.Load {
	out := make([]plan.Load, len(m.Shards))
	for i, s := range m.Shards {
		out[i] = plan.Load{ID: s.ID, Worlds: s.Worlds, Players: s.Players, Events: s.Events}
	}
	return out
}

// gsdRecords starts the names of gsd's own record worlds (gsd.sinks,
// gsd.moderation, gsd.relays): gsd keeps them in the groups it writes
// them to, so a drain neither moves nor lists them.
const gsdRecords = "gsd."

// unlistedWorlds asks every node of m for the worlds it holds and
// returns those m does not list (gsd's own records aside), each with the
// shard its name hashes to.
// A node lists the worlds of the groups it runs that live there (moved
// worlds' fenced copies are not listed), so every world is on some
// voter. A node that does not answer fails the call: a world missed
// there would be stranded by the shard's removal.
func (a *app) unlistedWorlds(cmd *cobra.Command, m wire.ShardMap) (map[string]uint64, error) {
	ids := make([]uint64, len(m.Shards))
	for i, s := range m.Shards {
		ids[i] = s.ID
	}
	out := map[string]uint64{}
	for _, n := range m.Nodes {
		c := a.clientFor([]string{n.HTTP})
		ctx, cancel := a.context(cmd)
		worlds, err := c.Worlds(ctx)
		cancel()
		c.Close()
		if err != nil {
			return nil, fmt.Errorf("list the worlds of node %s (to find those the map does not list): %w", n.ID, err)
		}
		for _, w := range worlds {
			if strings.HasPrefix(w.ID, gsdRecords) {
				continue
			}
			if _, listed := m.Worlds[w.ID]; !listed {
				out[w.ID], _ = plan.Hashed(w.ID, ids)
			}
		}
	}
	return out, nil
}

// planAndMove reads the shard map, plans with makePlan, prints the plan
// (dry) or runs it, printing each step: it first lists the pinned worlds
// on the shard they live on (a pin moves nothing), then runs the moves
// one at a time; the first failure stops the run. With -o json it prints
// the plan (dry) or the moves made. --timeout bounds reading the map, and
// then each call.
func (a *app) planAndMove(cmd *cobra.Command, dry bool, makePlan func(wire.ShardMap) ([]plan.Move, map[string]uint64, error)) error {
	c := a.client()
	ctx, cancel := a.context(cmd)
	m, err := c.Shards(ctx)
	cancel()
	if err != nil {
		return err
	}
	if !m.Meta {
		return errors.New("the shard map is a static file: moving worlds needs gsd --meta")
	}
	steps, pins, err := makePlan(m)
	if err != nil {
		return err
	}
	pinned := slices.Sorted(maps.Keys(pins))
	if dry {
		if a.output == "json" {
			return a.printJSON(planJSON(steps, pins))
		}
		for _, w := range pinned {
			fmt.Fprintf(a.stdout, "would list world %s on shard %d, where its name hashes now\n", w, pins[w])
		}
		if len(steps) == 0 {
			fmt.Fprintln(a.stdout, "nothing to move")
		}
		for i, s := range steps {
			fmt.Fprintf(a.stdout, "%d/%d: would move world %s from shard %d to shard %d (%s; %s)\n",
				i+1, len(steps), s.World, s.From, s.To, loadText(s.FromAfter), loadText(s.ToAfter))
		}
		return nil
	}
	if len(pinned) > 0 {
		// Listing the nodes took a while: a world listed meanwhile (moved,
		// placed) stays where the map has it now.
		ctx, cancel := a.context(cmd)
		now, err := c.Shards(ctx)
		cancel()
		if err != nil {
			return err
		}
		pinned = slices.DeleteFunc(pinned, func(w string) bool { _, listed := now.Worlds[w]; return listed })
	}
	for _, w := range pinned {
		g := pins[w]
		err := a.pin(cmd, c, w, g)
		switch {
		case client.Code(err) == wire.CodeConflict:
			// Listed elsewhere since (a move or a placement): it no longer
			// hashes, which is what the pin was for; the drain goes on.
			if a.output != "json" {
				fmt.Fprintf(a.stdout, "world %s: not listed on shard %d: it is no longer there (moved or placed meanwhile), left where the map has it\n", w, g)
			}
		case err != nil:
			return fmt.Errorf("list world %s on shard %d, where its name hashes: %w", w, g, err)
		case a.output != "json":
			fmt.Fprintf(a.stdout, "world %s: listed on shard %d, where its name hashes\n", w, g)
		}
	}
	done := []wire.WorldMoved{}
	for i, s := range steps {
		ctx, cancel := a.context(cmd)
		moved, err := c.MoveWorld(ctx, s.World, s.To)
		cancel()
		if client.Code(err) == wire.CodeNotSupported {
			// A world that cannot move (one that salts its audit leaves)
			// stays where it is, fenced nothing; the others go on.
			fmt.Fprintf(a.stderr, "%d/%d: world %s left on shard %d: %v\n", i+1, len(steps), s.World, s.From, err)
			continue
		}
		if err != nil {
			return fmt.Errorf("move %d/%d, world %s from shard %d to shard %d: %w\n%s",
				i+1, len(steps), s.World, s.From, s.To, err, resumeHint(err, s))
		}
		done = append(done, moved)
		if a.output == "json" {
			continue
		}
		if moved.Done {
			fmt.Fprintf(a.stdout, "%d/%d: world %s on shard %d already\n", i+1, len(steps), s.World, s.To)
			continue
		}
		fmt.Fprintf(a.stdout, "%d/%d: world %s moved from shard %d to shard %d after seq %d\n",
			i+1, len(steps), s.World, moved.From, moved.To, moved.Seq)
	}
	if a.output == "json" {
		return a.printJSON(done)
	}
	if len(steps) == 0 {
		fmt.Fprintln(a.stdout, "nothing to move")
	}
	return nil
}

// codeVersionGate is the edge's answer to a change some member's binary
// does not read (api/edge's CodeVersionGate).
const codeVersionGate = "version_gate"

// pin lists world on shard g, where it lives, only while it is still
// there (a conditional assign: a move published since is not undone,
// and the pin answers conflict). When the cluster cannot take the
// condition yet (a meta member on an older gsd: version_gate; the node
// asked on an older gsd: malformed, about the expect field), it pins
// unconditionally, as gsdctl did before, and says so on stderr: a move
// run concurrently could then be overwritten.
func (a *app) pin(cmd *cobra.Command, c *client.Client, world string, g uint64) error {
	ctx, cancel := a.context(cmd)
	_, err := c.AssignWorldIf(ctx, world, g, g)
	cancel()
	code := client.Code(err)
	if code != codeVersionGate && (code != wire.CodeMalformed || !strings.Contains(err.Error(), `"expect"`)) {
		return err
	}
	fmt.Fprintf(a.stderr, "gsdctl: world %s: the cluster cannot pin it conditionally yet (%v); pinning it unconditionally: run no other moves during the drain\n", world, err)
	ctx, cancel = a.context(cmd)
	defer cancel()
	_, err = c.PlaceWorld(ctx, world, &g)
	return err
}

// planStep is one step of a plan as -o json prints it.
type planStep struct {
	World string `json:"world"`
	From  uint64 `json:"from"`
	To    uint64 `json:"to"`
}

// planOut is a plan as -o json prints it: the moves, and the worlds
// listed where they are (a drain's pins).
type planOut struct {
	Moves []planStep        `json:"moves"`
	Pins  map[string]uint64 `json:"pins,omitempty"`
}

func planJSON(steps []plan.Move, pins map[string]uint64) planOut {
	out := planOut{Moves: make([]planStep, len(steps)), Pins: pins}
	for i, s := range steps {
		out.Moves[i] = planStep{World: s.World, From: s.From, To: s.To}
	}
	return out
}

// loadText is a shard's expected load after a step.
func loadText(l plan.Load) string {
	return fmt.Sprintf("then shard %d: %d worlds, %d players, %d events/s", l.ID, l.Worlds, l.Players, l.Events)
}

// fencedTo finds the shard in a world_moved refusal's message
// ("... W moved to shard S at seq N").
var fencedTo = regexp.MustCompile(`moved to shard (\d+) at seq`)

// resumeHint tells how to finish a failed step. A world fenced towards
// another shard (an earlier move that did not finish, which a re-run's
// plan sent elsewhere) can only go there.
func resumeHint(err error, s plan.Move) string {
	to := strconv.FormatUint(s.To, 10)
	if client.Code(err) == client.CodeWorldMoved {
		to = "SHARD"
		if m := fencedTo.FindStringSubmatch(err.Error()); m != nil {
			to = m[1]
		}
		return fmt.Sprintf("an earlier move fenced world %s towards shard %s: finish it with `gsdctl world move %s --to %s`, then run this again",
			s.World, to, s.World, to)
	}
	return fmt.Sprintf("moves are resumable: finish it with `gsdctl world move %s --to %s`, then run this again", s.World, to)
}
