package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
	"github.com/spf13/cobra"
)

// flagsCmd groups the review of anti-cheat flags (docs/API.md,
// "Moderation"): list, show, confirm, dismiss, appeal. A moderator sends
// its token (--token-file); an admin the cluster secret or an admin token.
func (a *app) flagsCmd() *cobra.Command {
	var tokenFile string
	cmd := &cobra.Command{
		Use:   "flags",
		Short: "List and review anti-cheat flags (confirm, dismiss, appeal); nothing is banned",
	}
	cmd.PersistentFlags().StringVar(&tokenFile, "token-file", "", "file holding a token of role moderator (or an admin token), sent as Authorization: Bearer")
	c := func() (*client.Client, error) {
		opts := a.tls.options()
		if a.secret != "" {
			opts = append(opts, client.WithClusterSecret(a.secret))
		}
		if tokenFile != "" {
			b, err := os.ReadFile(tokenFile)
			if err != nil {
				return nil, usageError{fmt.Errorf("--token-file: %w", err)}
			}
			opts = append(opts, client.WithHeader("Authorization", "Bearer "+strings.TrimSpace(string(b))))
		}
		return client.New(a.addrs, opts...), nil
	}
	cmd.AddCommand(a.flagsListCmd(c), a.flagsShowCmd(c))
	for _, op := range []struct{ name, short string }{
		{"confirm", "Confirm an open (or appealed) flag: a record, not a ban"},
		{"dismiss", "Dismiss an open (or appealed) flag"},
		{"appeal", "Appeal a confirmed flag"},
	} {
		cmd.AddCommand(a.flagsReviewCmd(c, op.name, op.short))
	}
	return cmd
}

func (a *app) flagsListCmd(c func() (*client.Client, error)) *cobra.Command {
	var (
		f      client.FlagFilter
		cursor string
		limit  int
		all    bool
	)
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List flags, oldest first: a page (--limit, --cursor), or every page with --all",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if all && cursor != "" {
				return usageError{fmt.Errorf("--all lists from the first page: leave out --cursor")}
			}
			cl, err := c()
			if err != nil {
				return err
			}
			ctx, cancel := a.context(cmd)
			defer cancel()
			var page wire.FlagList
			if all {
				page.Flags, err = cl.Flags(ctx, f)
			} else {
				page, err = cl.FlagsPage(ctx, f, cursor, limit)
			}
			if err != nil {
				return err
			}
			if a.output == "json" {
				return a.printJSON(page)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tDETECTOR\tPLAYERS\tSCORE\tWORLD\tSTATE\tREVIEWS")
			for _, f := range page.Flags {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%.3g\t%s\t%s\t%d\n", f.ID, f.Detector, strings.Join(f.Players, ","), f.Score, f.World, f.State, len(f.History))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if page.NextCursor != "" {
				fmt.Fprintf(a.stdout, "more: --cursor %s (or --all)\n", page.NextCursor)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.World, "world", "", "only flags found in this world")
	fl.StringVar(&f.Detector, "detector", "", "only this detector's flags")
	fl.StringVar(&f.Player, "player", "", "only flags naming this player")
	fl.StringVar(&f.State, "state", "", "only flags in this state: open, confirmed, dismissed or appealed")
	fl.IntVar(&limit, "limit", 0, "flags per page, 1 to 1000 (0: the server's default, 100)")
	fl.StringVar(&cursor, "cursor", "", "the page after this cursor (a previous list's next cursor)")
	fl.BoolVar(&all, "all", false, "list every page")
	return cmd
}

func (a *app) flagsShowCmd(c func() (*client.Client, error)) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show one flag: its evidence (world and seqs) and its reviews",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c()
			if err != nil {
				return err
			}
			ctx, cancel := a.context(cmd)
			defer cancel()
			f, err := cl.Flag(ctx, args[0])
			if err != nil {
				return err
			}
			return a.printJSON(f)
		},
	}
}

func (a *app) flagsReviewCmd(c func() (*client.Client, error), op, short string) *cobra.Command {
	var by, reason string
	cmd := &cobra.Command{
		Use:   op + " ID --reason WHY",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if reason == "" {
				return usageError{fmt.Errorf("%s needs --reason", op)}
			}
			cl, err := c()
			if err != nil {
				return err
			}
			ctx, cancel := a.context(cmd)
			defer cancel()
			out, err := cl.ReviewFlag(ctx, args[0], op, by, reason)
			if err != nil {
				return err
			}
			return a.printJSON(out)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (kept in the flag's history)")
	cmd.Flags().StringVar(&by, "by", "", "the moderator's name (with a token: the token's subject)")
	return cmd
}
