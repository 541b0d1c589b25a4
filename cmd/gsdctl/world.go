package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/gsd-dev/gsd/wire"
	"github.com/spf13/cobra"
)

func (a *app) worldCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "world",
		Short: "Create and list worlds, and replace their rules",
	}
	cmd.AddCommand(a.worldCreateCmd(), a.worldListCmd(), a.worldRulesCmd())
	return cmd
}

func (a *app) worldCreateCmd() *cobra.Command {
	var rulesArg string
	cmd := &cobra.Command{
		Use:   "create ID",
		Short: "Create a world",
		Example: `  gsdctl world create arena
  gsdctl world create arena --rules '{"strict":true,"fields":{"score":{"policy":"counter"}}}'
  gsdctl world create arena --rules @rules.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var rules wire.Rules
			if rulesArg != "" {
				b, err := a.readArg(rulesArg)
				if err != nil {
					return fmt.Errorf("--rules: %w", err)
				}
				if err := json.Unmarshal(b, &rules); err != nil {
					return usageError{fmt.Errorf("--rules: %w", err)}
				}
				if err := rules.Check(); err != nil {
					return usageError{fmt.Errorf("--rules: %w", err)}
				}
			}
			ctx, cancel := a.context(cmd)
			defer cancel()
			if err := a.client().CreateWorld(ctx, args[0], rules); err != nil {
				return err
			}
			return a.printJSON(map[string]any{"ok": true, "id": args[0]})
		},
	}
	cmd.Flags().StringVar(&rulesArg, "rules", "", "the world's rules as JSON, @FILE or - (stdin)")
	return cmd
}

func (a *app) worldListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the worlds a node knows",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := a.context(cmd)
			defer cancel()
			worlds, err := a.client().Worlds(ctx)
			if err != nil {
				return err
			}
			if a.output == "json" {
				return a.printJSON(map[string]any{"worlds": worlds})
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "WORLD\tSEQ\tENTITIES\tPLAYERS\tHASH\tSTRICT\tFIELDS")
			for _, w := range worlds {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%t\t%d\n", w.ID, w.Seq, w.Entities, w.Players, w.Hash, w.Rules.Strict, len(w.Rules.Fields))
			}
			return tw.Flush()
		},
	}
}
