package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"strings"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Salted worlds' audit logs (leaf version 2, docs/ANTICHEAT.md): their
// salt table beside an export, its use by verify, and a player's erasure.

// fetchSalts returns the salt table of cp's world as the .salts file's
// bytes (exactly as the node served and signed them) and the node's
// signature over them, the .salts.sig file (nil when the node has no audit
// key or is from before signed salts: then a warning), when cp is a
// salted world's checkpoint; nil for other worlds, for a deleted
// incarnation's tombstone (its table went with it), and when the caller
// may not read it (moderators and admins only): then a warning, the other
// files being of use to whoever can fetch the salts.
func (a *app) fetchSalts(ctx context.Context, cp audit.Checkpoint) (table, sig []byte, err error) {
	if cp.Leaf != wire.AuditLeafV2 || cp.Tombstone {
		return nil, nil, nil
	}
	table, sig, err = a.client().AuditSaltsSigned(ctx, cp.Origin)
	if code := client.Code(err); code == wire.CodeForbidden || code == wire.CodeUnauthorized {
		fmt.Fprintf(a.stderr, "gsdctl: warning: the salts of %s were not fetched (%v): verify needs them (--salts), fetched by a moderator or admin\n", cp.Origin, err)
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("salts of %s: %w", cp.Origin, err)
	}
	var s wire.AuditSalts
	if err := json.Unmarshal(table, &s); err != nil {
		return nil, nil, fmt.Errorf("salts of %s: %w", cp.Origin, err)
	}
	if s.Incarnation != cp.Incarnation {
		return nil, nil, fmt.Errorf("salts of %s: incarnation %d, the checkpoint's is %d: the world was created again; fetch again", cp.Origin, s.Incarnation, cp.Incarnation)
	}
	if sig == nil {
		fmt.Fprintf(a.stderr, "gsdctl: warning: the node did not sign the salts of %s (it holds no audit key, or is older): verify will say erased verdicts are not authenticated\n", cp.Origin)
	}
	return table, sig, nil
}

// saltsCheck is how verify takes a salted world's salts: the file, the
// audit keys its signature (file + ".sig") must verify under, and
// whether salts without a signature are accepted (--allow-unsigned-salts;
// refused by default).
type saltsCheck struct {
	file          string
	verifiers     []note.Verifier
	allowUnsigned bool
	max           int64 // the largest file read (--max-salts-bytes)
}

// DefaultMaxSaltsBytes bounds the salts file verify reads by default
// (--max-salts-bytes): 64 MiB, some 600,000 salts or erased digests. The
// file is read whole and each event is checked against the erased
// digests it holds, so a file from an untrusted source must not be able
// to make verify take any memory and time it likes.
const DefaultMaxSaltsBytes = 64 << 20

// readSalts reads the salts file, refusing one larger than max bytes.
func readSalts(file string, max int64) ([]byte, error) {
	if max < 1 {
		return nil, usageError{fmt.Errorf("--max-salts-bytes %d: want 1 or more", max)}
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, usageError{err}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+min(1, math.MaxInt64-max))) // one byte more tells a larger file, but for the largest limit (no overflow)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if int64(len(b)) > max {
		return nil, usageError{fmt.Errorf("%s is larger than %d bytes (--max-salts-bytes): raise the limit to read it", file, max)}
	}
	return b, nil
}

// verifyLog checks log against cp with the salts file, if any: a salted
// world's checkpoint needs one. A salts file with a signature beside it is
// used only if the signature verifies under the audit keys and vouches
// for its bytes as cp's world and incarnation's; it returns the keys that
// signed it (none for unsigned salts, which it refuses unless
// sc.allowUnsigned, and then warns of).
func (a *app) verifyLog(log io.Reader, cp audit.Checkpoint, sc saltsCheck, leaves []tlog.Hash, earlier []audit.Checkpoint) (audit.Report, []string, error) {
	if sc.file == "" {
		if cp.Leaf == wire.AuditLeafV2 {
			return audit.Report{}, nil, usageError{errors.New("the checkpoint is a salted world's (leaf 2): give its salts with --salts")}
		}
		rep, err := audit.VerifyLog(log, cp, leaves, earlier...)
		return rep, nil, err
	}
	if cp.Leaf != wire.AuditLeafV2 {
		return audit.Report{}, nil, usageError{errors.New("--salts with a checkpoint without a \"leaf 2\" line: its leaves are not salted (or it is a tombstone written before leaf versions were kept): verify without --salts, or with a checkpoint that says leaf 2")}
	}
	b, err := readSalts(sc.file, sc.max)
	if err != nil {
		return audit.Report{}, nil, err
	}
	signers, err := a.saltsSigners(b, cp, sc)
	if err != nil {
		return audit.Report{}, nil, err
	}
	var salts wire.AuditSalts
	if err := json.Unmarshal(b, &salts); err != nil {
		return audit.Report{}, nil, fmt.Errorf("%s: %w", sc.file, err)
	}
	rep, err := audit.VerifySaltedLog(log, cp, &salts, leaves, earlier...)
	return rep, signers, err
}

// saltsSigners checks the signature of the salts file's bytes b, if it
// has one, and returns the keys that signed it.
func (a *app) saltsSigners(b []byte, cp audit.Checkpoint, sc saltsCheck) ([]string, error) {
	sig, err := os.ReadFile(sc.file + ".sig")
	switch {
	case errors.Is(err, fs.ErrNotExist) && !sc.allowUnsigned:
		return nil, fmt.Errorf("%s: unsigned (no %s.sig), refused: fetch the salts from a node with an audit key (gsdctl audit fetch), or accept them with --allow-unsigned-salts (erased verdicts then are only as trustworthy as the file)", sc.file, sc.file)
	case errors.Is(err, fs.ErrNotExist):
		fmt.Fprintf(a.stderr, "gsdctl: warning: %s is unsigned (no %s.sig), accepted by --allow-unsigned-salts: erased verdicts are not authenticated, only as trustworthy as the file\n", sc.file, sc.file)
		return nil, nil
	case err != nil:
		return nil, usageError{err}
	}
	sn, signers, err := audit.OpenSalts(sig, sc.verifiers...)
	if err != nil {
		return nil, fmt.Errorf("%s.sig: %w", sc.file, err)
	}
	if err := sn.Vouches(b, cp.Origin, cp.Incarnation); err != nil {
		return nil, fmt.Errorf("%s: %w", sc.file, err)
	}
	return signers, nil
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
