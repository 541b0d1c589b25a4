package main

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"

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
			return a.planAndMove(cmd, dry, func(m wire.ShardMap) ([]plan.Move, error) {
				return plan.Rebalance(shardLoads(m), m.Worlds, maxMoves)
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
drain again. Worlds the map does not list (created before placement, on the
shard their name hashes to) are not seen and not moved.`,
		Example: `  gsdctl shard drain 3 --dry-run
  gsdctl shard drain 3 && gsdctl shard remove 3`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseShardID(args[0])
			if err != nil {
				return err
			}
			err = a.planAndMove(cmd, dry, func(m wire.ShardMap) ([]plan.Move, error) {
				return plan.Drain(shardLoads(m), m.Worlds, id)
			})
			if err == nil && !dry && a.output != "json" {
				fmt.Fprintf(a.stdout, "shard %d lists no worlds: gsdctl shard remove %d removes it\n", id, id)
			}
			return err
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

// planAndMove reads the shard map, plans with makePlan, prints the plan
// (dry) or runs its moves one at a time, printing each; the first failed
// move stops the run. With -o json it prints the plan (dry) or the moves
// made. --timeout bounds reading the map, and then each move.
func (a *app) planAndMove(cmd *cobra.Command, dry bool, makePlan func(wire.ShardMap) ([]plan.Move, error)) error {
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
	steps, err := makePlan(m)
	if err != nil {
		return err
	}
	if dry {
		if a.output == "json" {
			return a.printJSON(planJSON(steps))
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
	done := []wire.WorldMoved{}
	for i, s := range steps {
		ctx, cancel := a.context(cmd)
		moved, err := c.MoveWorld(ctx, s.World, s.To)
		cancel()
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

// planStep is one step of a plan as -o json prints it.
type planStep struct {
	World string `json:"world"`
	From  uint64 `json:"from"`
	To    uint64 `json:"to"`
}

func planJSON(steps []plan.Move) []planStep {
	out := make([]planStep, len(steps))
	for i, s := range steps {
		out[i] = planStep{World: s.World, From: s.From, To: s.To}
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
