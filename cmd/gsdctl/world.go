package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
	"github.com/spf13/cobra"
)

func (a *app) worldCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "world",
		Short: "Create, list, delete and move worlds, and replace their rules",
	}
	cmd.AddCommand(a.worldCreateCmd(), a.worldListCmd(), a.worldDeleteCmd(), a.worldRulesCmd(), a.worldMoveCmd())
	return cmd
}

func (a *app) worldCreateCmd() *cobra.Command {
	var rulesArg string
	var leaf int
	cmd := &cobra.Command{
		Use:   "create ID",
		Short: "Create a world",
		Example: `  gsdctl world create arena
  gsdctl world create arena --rules '{"strict":true,"fields":{"score":{"policy":"counter"}}}'
  gsdctl world create arena --rules @rules.json
  gsdctl world create arena --audit-leaf 2`,
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
			create := a.client().CreateWorld
			switch leaf {
			case 1:
			case 2:
				create = a.client().CreateSaltedWorld
			default:
				return usageError{fmt.Errorf("--audit-leaf must be 1 or 2, got %d", leaf)}
			}
			ctx, cancel := a.context(cmd)
			defer cancel()
			if err := create(ctx, args[0], rules); err != nil {
				return err
			}
			return a.printJSON(map[string]any{"ok": true, "id": args[0]})
		},
	}
	cmd.Flags().StringVar(&rulesArg, "rules", "", "the world's rules as JSON, @FILE or - (stdin)")
	cmd.Flags().IntVar(&leaf, "audit-leaf", 1, "the audit leaf version: 2 salts the players' ids per player (docs/ANTICHEAT.md)")
	return cmd
}

func (a *app) worldListCmd() *cobra.Command {
	var (
		f          client.WorldFilter
		labels     []string
		hasCap     string
		minP, maxP int
	)
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the worlds a node knows, filtered as a matchmaker asks",
		Example: `  gsdctl world list
  gsdctl world list --mode duel --label map:dust --has-capacity true
  gsdctl world list --limit 100 --cursor arena-42`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, l := range labels {
				k, v, ok := strings.Cut(l, ":")
				if !ok || k == "" {
					return usageError{fmt.Errorf("--label must be key:value, got %q", l)}
				}
				if f.Labels == nil {
					f.Labels = make(map[string]string)
				}
				f.Labels[k] = v
			}
			if hasCap != "" {
				b, err := strconv.ParseBool(hasCap)
				if err != nil {
					return usageError{fmt.Errorf("--has-capacity must be true or false, got %q", hasCap)}
				}
				f.HasCapacity = &b
			}
			if cmd.Flags().Changed("min-players") {
				f.MinPlayers = &minP
			}
			if cmd.Flags().Changed("max-players") {
				f.MaxPlayers = &maxP
			}
			ctx, cancel := a.context(cmd)
			defer cancel()
			worlds, next, err := a.client().FindWorlds(ctx, f)
			if err != nil {
				return err
			}
			if a.output == "json" {
				out := map[string]any{"worlds": worlds}
				if next != "" {
					out["next"] = next
				}
				return a.printJSON(out)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "WORLD\tSEQ\tENTITIES\tPLAYERS\tSESSIONS\tHASH\tSTRICT\tFIELDS\tINCARNATION")
			for _, w := range worlds {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%t\t%d\t%d\n", w.ID, w.Seq, w.Entities, w.Players, w.Sessions, w.Hash, w.Rules.Strict, len(w.Rules.Fields), w.Incarnation)
			}
			if next != "" {
				fmt.Fprintf(tw, "(more: --cursor %s)\n", next)
			}
			return tw.Flush()
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Mode, "mode", "", "only worlds whose rules' mode is this")
	fl.StringArrayVar(&labels, "label", nil, "only worlds with this rules label, key:value (repeat: all must match)")
	fl.StringVar(&hasCap, "has-capacity", "", "true: only worlds with room for one more session; false: only full ones")
	fl.IntVar(&minP, "min-players", 0, "only worlds with at least this many sessions")
	fl.IntVar(&maxP, "max-players", 0, "only worlds with at most this many sessions")
	fl.IntVar(&f.Limit, "limit", 0, "at most this many worlds (1..1000; 0: all); the answer names the cursor of the rest")
	fl.StringVar(&f.Cursor, "cursor", "", "list the worlds after this one (a previous page's next)")
	return cmd
}

func (a *app) worldDeleteCmd() *cobra.Command {
	var incarnation uint64
	cmd := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a world: its state, sessions and archived events, on every node (admin)",
		Example: `  gsdctl world delete arena
  gsdctl world delete arena --incarnation 1234`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := a.context(cmd)
			defer cancel()
			w, err := a.client().DeleteWorld(ctx, args[0], incarnation)
			if err != nil {
				return err
			}
			return a.printJSON(map[string]any{"ok": true, "id": w.ID, "incarnation": w.Incarnation, "seq": w.Seq})
		},
	}
	cmd.Flags().Uint64Var(&incarnation, "incarnation", 0, "delete only this incarnation of the world (gsdctl world list -o json shows it)")
	return cmd
}
