package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) worldRulesCmd() *cobra.Command {
	var expect uint64
	cmd := &cobra.Command{
		Use:   "rules WORLD RULES",
		Short: "Replace a world's rules (admin; docs/RULES.md)",
		Example: `  gsdctl world rules arena '{"strict":true,"fields":{"score":{"policy":"counter"}}}'
  gsdctl world rules arena @rules.json --expect 1`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := a.readArg(args[1])
			if err != nil {
				return fmt.Errorf("rules: %w", err)
			}
			if !json.Valid(b) {
				return usageError{errors.New("rules: not JSON")}
			}
			ctx, cancel := a.context(cmd)
			defer cancel()
			v, err := a.client().UpdateRules(ctx, args[0], b, expect)
			if err != nil {
				return err
			}
			return a.printJSON(map[string]any{"world": args[0], "rules_version": v})
		},
	}
	cmd.Flags().Uint64Var(&expect, "expect", 0, "the rules version being replaced (0: any)")
	return cmd
}
