package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

// worldMoveCmd is `gsdctl world move W --to S` (gsd --meta; an admin
// call): the world's state moves to shard S with its seq going on.
func (a *app) worldMoveCmd() *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:     "move WORLD --to SHARD",
		Short:   "Move a world to another shard (gsd --meta); safe to run again if it failed",
		Example: `  gsdctl world move arena --to 2`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return usageError{errors.New("give the target shard with --to")}
			}
			id, err := parseShardID(to)
			if err != nil {
				return err
			}
			ctx, cancel := a.context(cmd)
			defer cancel()
			m, err := a.client().MoveWorld(ctx, args[0], id)
			if err != nil {
				return err
			}
			if a.output == "json" {
				return a.printJSON(m)
			}
			if m.Done {
				fmt.Fprintf(a.stdout, "world %s: on shard %d already\n", m.World, m.To)
				return nil
			}
			fmt.Fprintf(a.stdout, "world %s: moved from shard %d to shard %d after seq %d\n", m.World, m.From, m.To, m.Seq)
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the shard id to move the world to")
	return cmd
}
