package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/spf13/cobra"
)

// relayAddCmd is `gsdctl relay add ID --url URL`: registers a relay
// (an admin call; an operator's record never goes stale).
func (a *app) relayAddCmd() *cobra.Command {
	var r client.Relay
	var worlds string
	cmd := &cobra.Command{
		Use:   "add ID --url URL",
		Short: "Register a relay in the cluster's relay registry (replacing one of the same id)",
		Example: `  gsdctl relay add eu-1 --url https://relay-eu-1.example:7080 --region eu --capacity 10000
  gsdctl relay add lobby-1 --url http://10.0.0.9:7080 --worlds lobby,arena`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r.ID, r.Worlds = args[0], splitList(worlds)
			if r.URL == "" {
				return usageError{errors.New("--url is required")}
			}
			ctx, cancel := a.context(cmd)
			defer cancel()
			out, err := a.client().PutRelay(ctx, r)
			if err != nil {
				return err
			}
			if a.output == "json" {
				return a.printJSON(out)
			}
			fmt.Fprintf(a.stdout, "relay %s registered: %s\n", out.ID, out.URL)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&r.URL, "url", "", "the relay's public URL, where viewers reach it")
	f.StringVar(&r.Region, "region", "", "the relay's region")
	f.StringVar(&worlds, "worlds", "", "worlds it serves, comma-separated (default: all)")
	f.IntVar(&r.Capacity, "capacity", 0, "viewers it takes (0: not said)")
	return cmd
}

// relayListCmd is `gsdctl relay list`: every registered relay.
func (a *app) relayListCmd() *cobra.Command {
	var world string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the registered relays (stale: a relay that registered itself and stopped saying it lives)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := a.context(cmd)
			defer cancel()
			var (
				rs  []client.Relay
				err error
			)
			if world != "" {
				rs, err = a.client().WorldRelays(ctx, world)
			} else {
				rs, err = a.client().Relays(ctx)
			}
			if err != nil {
				return err
			}
			if a.output == "json" {
				return a.printJSON(rs)
			}
			a.printRelays(rs)
			return nil
		},
	}
	cmd.Flags().StringVar(&world, "world", "", "only the relays to watch this world through, least loaded first")
	return cmd
}

// printRelays writes rs as a table.
func (a *app) printRelays(rs []client.Relay) {
	tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tURL\tREGION\tWORLDS\tVIEWERS\tCAPACITY\tHEARTBEAT\tSTATE")
	for _, r := range rs {
		worlds := "all"
		if len(r.Worlds) > 0 {
			worlds = strings.Join(r.Worlds, ",")
		}
		capacity, hb, state := "-", "-", "ok"
		if r.Capacity > 0 {
			capacity = strconv.Itoa(r.Capacity)
		}
		if r.HeartbeatMs > 0 {
			hb = time.UnixMilli(r.HeartbeatMs).UTC().Format(time.RFC3339)
		}
		if r.Stale {
			state = "stale"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", r.ID, r.URL, orDash(r.Region), worlds, r.Viewers, capacity, hb, state)
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// relayRemoveCmd is `gsdctl relay remove ID`.
func (a *app) relayRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a relay from the relay registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := a.context(cmd)
			defer cancel()
			if err := a.client().RemoveRelay(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "relay %s removed\n", args[0])
			return nil
		},
	}
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// registration is how a relay run with --register keeps itself in the
// registry.
type registration struct {
	on        bool
	id        string
	url       string
	region    string
	worlds    string
	heartbeat time.Duration
}

// validate checks reg's flags for a relay listening on listen.
func (reg *registration) validate(listen string) error {
	switch {
	case !reg.on:
		return nil
	case reg.heartbeat <= 0:
		return errors.New("--heartbeat must be positive")
	case reg.url == "" && (strings.HasPrefix(listen, ":") || strings.HasPrefix(listen, "0.0.0.0:") || strings.HasPrefix(listen, "[::]:")):
		return errors.New("--register needs --public-url when --listen names no host viewers can reach")
	}
	return nil
}

// complete gives reg the URL of addr, where the relay listens, and an id
// from its URL, when they were not given.
func (reg *registration) complete(addr string) {
	if reg.url == "" {
		reg.url = "http://" + addr
	}
	if reg.id == "" {
		host := strings.TrimPrefix(strings.TrimPrefix(reg.url, "https://"), "http://")
		reg.id = strings.Trim(strings.Map(func(c rune) rune {
			if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' {
				return c
			}
			return '-'
		}, host), "-")
	}
}

// run puts the relay in the registry now and at each heartbeat with its
// viewers, until ctx ends; then it removes it. A failed put is logged and
// tried again at the next heartbeat.
func (reg registration) run(ctx context.Context, c *client.Client, capacity int, viewers func() int, log *slog.Logger) {
	r := client.Relay{ID: reg.id, URL: reg.url, Region: reg.region, Worlds: splitList(reg.worlds), Capacity: capacity, Live: true}
	t := time.NewTicker(reg.heartbeat)
	defer t.Stop()
	for {
		r.Viewers = viewers()
		pctx, cancel := context.WithTimeout(ctx, reg.heartbeat)
		_, err := c.PutRelay(pctx, r)
		cancel()
		if err != nil && ctx.Err() == nil {
			log.Warn("relay registry: put failed", "id", r.ID, "err", err)
		}
		select {
		case <-ctx.Done():
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := c.RemoveRelay(rctx, r.ID); err != nil {
				log.Warn("relay registry: remove failed", "id", r.ID, "err", err)
			}
			cancel()
			return
		case <-t.C:
		}
	}
}
