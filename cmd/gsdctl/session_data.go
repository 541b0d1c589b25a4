package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/gsd-dev/gsd/wire"
	"github.com/spf13/cobra"
)

// sessionDataCmd writes one player's critical data as a game server does
// (PATCH /v1/worlds/{world}/players/{player}/data): keys merge, null
// deletes, all or none.
func (a *app) sessionDataCmd() *cobra.Command {
	var (
		jsonArg string
		expect  uint64
	)
	cmd := &cobra.Command{
		Use:   "data WORLD PLAYER",
		Short: "Write keys of a player's critical data (merge; null deletes) and print the result",
		Long: `Write keys of one player's critical data, as a game server does.

The keys given are set (a value) or deleted (null); the player's other
keys stay. All keys apply or none. With --expect-version the write applies
only if the player's data version is that number (409 data_conflict
otherwise, nothing changed): read the version from the previous write's
answer or from 'gsdctl session export'. Needs the cluster secret or a
server or admin token; players write their own keys over play.`,
		Example: `  gsdctl session data arena ann --json '{"gold":40,"title":null}'
  echo '{"loadout":"sniper"}' | gsdctl session data arena ann --expect-version 1733500000000000001`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := a.readJSONFlag(jsonArg, "data")
			if err != nil {
				return err
			}
			data, err := parseDataKeys(b)
			if err != nil {
				return usageError{err}
			}
			ctx, cancel := a.context(cmd)
			defer cancel()
			out, err := a.client().WritePlayerData(ctx, args[0], args[1], data, expect)
			if err != nil {
				return err
			}
			return a.printJSON(out)
		},
	}
	cmd.Flags().StringVar(&jsonArg, "json", "", `the keys as a JSON object ({"key":value,"gone":null}), @FILE or - (default: read stdin)`)
	cmd.Flags().Uint64Var(&expect, "expect-version", 0, "apply only if the player's data version is this (0: any)")
	return cmd
}

// parseDataKeys decodes one JSON object of data keys and refuses an empty
// one and trailing data.
func parseDataKeys(b []byte) (map[string]wire.Value, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, errors.New("no data given: pass --json or write a JSON object to stdin")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var data map[string]wire.Value
	if err := dec.Decode(&data); err != nil {
		return nil, fmt.Errorf("data JSON (an object of keys): %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data JSON: trailing data after the object")
	}
	if len(data) == 0 {
		return nil, errors.New("data JSON: no keys to write")
	}
	return data, nil
}
