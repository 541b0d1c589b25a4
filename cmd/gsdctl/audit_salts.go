package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/tlog"
)

// Salted worlds' audit logs (leaf version 2, docs/ANTICHEAT.md): their
// salt table beside an export, its use by verify, and a player's erasure.

// fetchSalts returns the salt table of cp's world as the .salts file's
// bytes when cp is a salted world's checkpoint; nil for other worlds, for
// a deleted incarnation's tombstone (its table went with it), and when the
// caller may not read it (moderators and admins only): then a warning, the
// other files being of use to whoever can fetch the salts.
func (a *app) fetchSalts(ctx context.Context, cp audit.Checkpoint) ([]byte, error) {
	if cp.Leaf != wire.AuditLeafV2 || cp.Tombstone {
		return nil, nil
	}
	s, err := a.client().AuditSalts(ctx, cp.Origin)
	if code := client.Code(err); code == wire.CodeForbidden || code == wire.CodeUnauthorized {
		fmt.Fprintf(a.stderr, "gsdctl: warning: the salts of %s were not fetched (%v): verify needs them (--salts), fetched by a moderator or admin\n", cp.Origin, err)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("salts of %s: %w", cp.Origin, err)
	}
	if s.Incarnation != cp.Incarnation {
		return nil, fmt.Errorf("salts of %s: incarnation %d, the checkpoint's is %d: the world was created again; fetch again", cp.Origin, s.Incarnation, cp.Incarnation)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	return append(b, '\n'), err
}

// verifyLog checks log against cp with the salts file, if any: a salted
// world's checkpoint needs one.
func verifyLog(log io.Reader, cp audit.Checkpoint, saltsFile string, leaves []tlog.Hash, earlier []audit.Checkpoint) (audit.Report, error) {
	if saltsFile == "" {
		if cp.Leaf == wire.AuditLeafV2 {
			return audit.Report{}, usageError{errors.New("the checkpoint is a salted world's (leaf 2): give its salts with --salts")}
		}
		return audit.VerifyLog(log, cp, leaves, earlier...)
	}
	if cp.Leaf != wire.AuditLeafV2 {
		return audit.Report{}, usageError{errors.New("--salts with a checkpoint without a \"leaf 2\" line: its leaves are not salted (or it is a tombstone written before leaf versions were kept): verify without --salts, or with a checkpoint that says leaf 2")}
	}
	b, err := os.ReadFile(saltsFile)
	if err != nil {
		return audit.Report{}, usageError{err}
	}
	var salts wire.AuditSalts
	if err := json.Unmarshal(b, &salts); err != nil {
		return audit.Report{}, fmt.Errorf("%s: %w", saltsFile, err)
	}
	return audit.VerifySaltedLog(log, cp, &salts, leaves, earlier...)
}

func (a *app) auditEraseCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "erase WORLD PLAYER",
		Short: "Erase a player's audit salt in a salted world (admin)",
		Long: `Delete PLAYER's salt from a salted world's salt table (leaf version 2):
its leaves commit to HMAC-SHA256(salt, id), so once the salt is gone (from
the state and the snapshots: each node keeps two, so the salt leaves the
disk at the second snapshot after the erasure, "gsdctl snapshot" twice on
every node to hasten it; the log entries and archive records that
carried it go with their retention) nobody can link the player's id to the
audit log, while the log stays verifiable: once every voter reads log
version 14 the world keeps the salt's digest HMAC-SHA256(salt, id) and the
seqs it salted (no id, no salt; in the salts moderators fetch), with which
the player's events verify but for their identity; an erasure made while a
voter reads log 13 keeps nothing, and the player's events then verify by
their leaf hashes only. A later action of the player draws a new salt.

Erasing is idempotent: a player with no salt (erased already, e.g. by an
erase whose answer was lost and that the client retried, or that never
acted in the world) exits 0 with a note on stderr.`,
		Example: `  gsdctl audit erase arena 7f3c9e`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := a.context(cmd)
			defer cancel()
			err := a.client().EraseAuditSalt(ctx, args[0], args[1])
			// fsm's not_found for a player with no salt (a route a node
			// does not have is not_found too: "no such route").
			if client.Code(err) == client.CodeNotFound && strings.Contains(err.Error(), "no salt for player") {
				fmt.Fprintf(a.stderr, "gsdctl: %s has no salt in %s: erased already (or never drawn)\n", args[1], args[0])
				err = nil
			}
			if err != nil {
				return err
			}
			return a.printJSON(wire.SaltErased{World: args[0], Player: args[1]})
		},
	}
}
