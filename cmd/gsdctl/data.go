package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
	"github.com/spf13/cobra"
)

func (a *app) actCmd() *cobra.Command {
	var jsonArg string
	cmd := &cobra.Command{
		Use:   "act WORLD",
		Short: "Submit an action (JSON from --json or stdin) and print its event",
		Long: `Submit one action and print its committed event.

The action is JSON: {"player":"p1","seq":7,"priority":"critical","ops":[...]}.
It must carry a seq: with the world and the player it is the action's
idempotency key, and gsdctl retries with the same seq when the outcome is
unknown. A repeat prints the original event with "duplicate": true.`,
		Example: `  gsdctl act arena --json '{"player":"p1","seq":1,"ops":[{"op":"incr","entity":"e1","field":"score","by":1}]}'
  echo '{"player":"p1","seq":2,"ops":[{"op":"set","entity":"door","field":"open","value":true,"expect":"*"}]}' | gsdctl act arena`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := a.readJSONFlag(jsonArg, "action")
			if err != nil {
				return err
			}
			act, err := parseAction(b)
			if err != nil {
				return usageError{err}
			}
			ctx, cancel := a.context(cmd)
			defer cancel()
			ev, err := a.client().Act(ctx, args[0], act)
			if err != nil {
				return err
			}
			return a.printJSON(ev)
		},
	}
	cmd.Flags().StringVar(&jsonArg, "json", "", "the action as JSON, @FILE or - (default: read stdin)")
	return cmd
}

// parseAction decodes an action and insists on a seq.
func parseAction(b []byte) (client.ActionRequest, error) {
	var act client.ActionRequest
	if len(bytes.TrimSpace(b)) == 0 {
		return act, errors.New("no action given: pass --json or write it to stdin")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&act); err != nil {
		return act, fmt.Errorf("action JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return act, errors.New("action JSON: trailing data after the action")
	}
	if act.Seq == 0 {
		return act, errors.New(`the action has no "seq": give it a client seq > 0 (with the world and player it is the idempotency key, so a retry is never applied twice)`)
	}
	if act.Player == "" {
		return act, errors.New(`the action has no "player"`)
	}
	return act, nil
}

func (a *app) getCmd() *cobra.Command {
	var stale bool
	cmd := &cobra.Command{
		Use:   "get WORLD ENTITY",
		Short: "Read an entity (linearizable unless --stale)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := client.Linearizable
			if stale {
				c = client.Stale
			}
			ctx, cancel := a.context(cmd)
			defer cancel()
			e, err := a.client().Entity(ctx, args[0], args[1], c)
			if err != nil {
				return err
			}
			return a.printJSON(e)
		},
	}
	cmd.Flags().BoolVar(&stale, "stale", false, "read the answering node's applied state (any node, may lag)")
	return cmd
}

func (a *app) hashCmd() *cobra.Command {
	var seq uint64
	cmd := &cobra.Command{
		Use:   "hash WORLD",
		Short: "Show a node's state hash of a world, now or after event --seq",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := a.context(cmd)
			defer cancel()
			h, err := a.client().Hash(ctx, args[0], seq)
			if err != nil {
				return err
			}
			return a.printJSON(h)
		},
	}
	cmd.Flags().Uint64Var(&seq, "seq", 0, "the event seq to hash at (default: now)")
	return cmd
}

func (a *app) eventsCmd() *cobra.Command {
	var (
		from   uint64
		follow bool
	)
	cmd := &cobra.Command{
		Use:   "events WORLD",
		Short: "Print a world's committed events as NDJSON",
		Long: `Print a world's committed events, one JSON object per line.

Without --follow it prints the events from --from up to the world's seq when
the command started, then exits. With --follow it keeps printing new events
until interrupted, reconnecting (to any --addr) without gaps or repeats;
--from 0 then starts at the next event committed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			world := args[0]
			c := a.client()
			enc := json.NewEncoder(a.stdout)
			if follow {
				err := c.Follow(cmd.Context(), world, from, func(ev wire.Event) error { return enc.Encode(ev) })
				if cmd.Context().Err() != nil {
					return nil // interrupted: the normal end of --follow
				}
				return err
			}
			ctx, cancel := a.context(cmd)
			defer cancel()
			head, err := worldSeq(ctx, c, world)
			if err != nil {
				return err
			}
			if from == 0 {
				from = 1
			}
			if head < from {
				return nil
			}
			stop := errors.New("done")
			err = c.Follow(ctx, world, from, func(ev wire.Event) error {
				if err := enc.Encode(ev); err != nil {
					return err
				}
				if ev.Seq >= head {
					return stop
				}
				return nil
			})
			if errors.Is(err, stop) {
				return nil
			}
			return err
		},
	}
	cmd.Flags().Uint64Var(&from, "from", 1, "the first event seq to print")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events until interrupted")
	return cmd
}

// worldSeq returns the world's current seq as the answering node sees it.
func worldSeq(ctx context.Context, c *client.Client, world string) (uint64, error) {
	worlds, err := c.Worlds(ctx)
	if err != nil {
		return 0, err
	}
	for _, w := range worlds {
		if w.ID == world {
			return w.Seq, nil
		}
	}
	return 0, &client.Error{Status: http.StatusNotFound, Code: client.CodeUnknownWorld, Message: "no world " + world}
}
