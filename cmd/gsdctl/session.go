package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
	"github.com/spf13/cobra"
)

// sessionCmd groups the session admin commands: presence, kick, ban, and
// the export and import of players' critical data.
func (a *app) sessionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "session",
		Short: "List, kick and ban players' sessions; export, import and write their data",
	}
	cmd.AddCommand(a.sessionListCmd(), a.sessionKickCmd(), a.sessionBanCmd(), a.sessionUnbanCmd(),
		a.sessionBansCmd(), a.sessionExportCmd(), a.sessionImportCmd(), a.sessionDataCmd())
	return cmd
}

func (a *app) sessionListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list WORLD",
		Aliases: []string{"ls"},
		Short:   "List the open sessions of a world (presence)",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := a.context(cmd)
			defer cancel()
			all, err := a.client().Sessions(ctx, args[0])
			if err != nil {
				return err
			}
			if a.output == "json" {
				return a.printJSON(map[string]any{"world": args[0], "sessions": all})
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SESSION\tPLAYER\tNODE\tACKED\tEPOCH\tSEEN\tKICKED")
			for _, s := range all {
				seen := time.Unix(0, s.Seen).UTC().Format(time.RFC3339)
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", s.ID, s.Player, s.Node, s.Acked, s.Epoch, seen, s.Kicked)
			}
			return tw.Flush()
		},
	}
}

func (a *app) sessionKickCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "kick WORLD SESSION",
		Short: "Close a session wherever its connection is",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := a.context(cmd)
			defer cancel()
			s, err := a.client().Kick(ctx, args[0], args[1], reason)
			if err != nil {
				return err
			}
			return a.printJSON(s)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (shown to the player in the close reason)")
	return cmd
}

func (a *app) sessionBanCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "ban WORLD PLAYER",
		Short: "Ban a player from a world (kicks their session)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if reason == "" {
				return usageError{errors.New("--reason is required")}
			}
			ctx, cancel := a.context(cmd)
			defer cancel()
			if err := a.client().Ban(ctx, args[0], args[1], reason); err != nil {
				return err
			}
			return a.printJSON(ok)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (required)")
	return cmd
}

func (a *app) sessionUnbanCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "unban WORLD PLAYER",
		Short: "Lift a player's ban",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := a.context(cmd)
			defer cancel()
			if err := a.client().Unban(ctx, args[0], args[1]); err != nil {
				return err
			}
			return a.printJSON(ok)
		},
	}
}

func (a *app) sessionBansCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "bans WORLD",
		Short: "List a world's banned players",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := a.context(cmd)
			defer cancel()
			bans, err := a.client().Bans(ctx, args[0])
			if err != nil {
				return err
			}
			return a.printJSON(map[string]any{"world": args[0], "bans": bans})
		},
	}
}

func (a *app) sessionExportCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "export WORLD",
		Short:   "Write every player's critical data in a world as JSON (gsd.players.v1)",
		Example: `  gsdctl session export arena > arena-players.json`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := a.context(cmd)
			defer cancel()
			f, err := a.client().ExportPlayerData(ctx, args[0])
			if err != nil {
				return err
			}
			return a.printJSON(f)
		},
	}
}

func (a *app) sessionImportCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "import WORLD",
		Short: "Set players' critical data from JSON (gsd.players.v1); idempotent",
		Example: `  gsdctl session import arena < arena-players.json
  gsdctl session import arena --file @arena-players.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := a.readArg(file)
			if err != nil {
				return fmt.Errorf("--file: %w", err)
			}
			var f client.PlayerDataFile
			if err := json.Unmarshal(b, &f); err != nil {
				return usageError{fmt.Errorf("player data: %w", err)}
			}
			ctx, cancel := a.context(cmd)
			defer cancel()
			ans, err := a.client().ImportPlayerDataAnswer(ctx, args[0], f)
			if err != nil {
				return err
			}
			rep := importReport(args[0], f, ans)
			if rep.behind > 0 {
				fmt.Fprintf(a.stderr, "gsdctl: %d player(s) behind: their data was set, but at a lower data version than the file's "+
					"(the exporting cluster's clock ran ahead); a mirror (the PostgreSQL sink) holding the file's version keeps its copy "+
					"until the player's data changes again\n", rep.behind)
			}
			return a.printJSON(rep)
		},
	}
	cmd.Flags().StringVar(&file, "file", "-", "the JSON: @FILE, or - (stdin)")
	return cmd
}

// importOutput is what session import prints: the route's count and, per
// player of the file, "applied", or "behind" when the cluster holds its
// data at a lower data version than the file's (wire.ImportAnswer.Behind).
type importOutput struct {
	OK       bool           `json:"ok"`
	World    string         `json:"world"`
	Imported int            `json:"imported"`
	Players  []importedData `json:"players"`
	behind   int
}

// importedData is one player's line of importOutput.
type importedData struct {
	Player string `json:"player"`
	Data   string `json:"data"` // applied or behind
}

func importReport(world string, f client.PlayerDataFile, ans wire.ImportAnswer) importOutput {
	behind := make(map[string]bool, len(ans.Behind))
	for _, p := range ans.Behind {
		behind[p] = true
	}
	out := importOutput{OK: true, World: world, Imported: ans.Imported, Players: make([]importedData, 0, len(f.Players))}
	for _, p := range f.Players {
		d := importedData{Player: p.Player, Data: "applied"}
		if behind[p.Player] {
			d.Data = "behind"
			out.behind++
		}
		out.Players = append(out.Players, d)
	}
	return out
}
