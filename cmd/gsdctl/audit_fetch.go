package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/wire"
	"github.com/spf13/cobra"
)

func (a *app) auditFetchCmd() *cobra.Command {
	var out string
	var sign bool
	var inc int64
	cmd := &cobra.Command{
		Use:   "fetch WORLD",
		Short: "Export a world's match log with its signed checkpoint and leaf hashes",
		Long: `Fetch from a node what gsdctl audit verify checks: the world's newest
signed audit checkpoint (PREFIX.checkpoint), its events from seq 1 up to the
checkpoint's size as NDJSON (PREFIX.ndjson) and the audit tree's leaf hashes
of those events (PREFIX.leaves). Any node serves them: every replica keeps
the same tree. With --sign the node signs a checkpoint of its log now
(an admin call) instead of answering its newest one.

A world deleted and created again has a tree per incarnation (the log
index of its creation, in gsdctl worlds). --incarnation N fetches that
incarnation's: for a deleted one, its tombstone (the final checkpoint of
its tree) and its leaf hashes only, since the cluster no longer holds its
events: check the match log exported before the delete against it. The
node no longer knows a deleted incarnation's rules (they may have hidden
fields), so it answers only a caller who sees everything: an admin or
server token, or the cluster secret (anyone when auth is off and no
secret is set); others get unknown_world.

A salted world's (its checkpoint says "leaf 2") also gets PREFIX.salts, its
salt table (moderators and admins only), which verify needs, and
PREFIX.salts.sig, the node's signature of those exact bytes with its audit
key (the one that signs checkpoints), which verify checks: edit no byte of
PREFIX.salts. A node without an audit key (or older) serves the salts
unsigned: a warning says so, and no PREFIX.salts.sig is written (an
earlier one is removed); verify refuses such salts unless given
--allow-unsigned-salts. Without the moderator role the other files are
written and a warning says the salts were not.
A deleted incarnation's salts are gone with it (the cluster keeps no table
of a deleted incarnation): fetch them before the delete.

Nothing is checked here: check the files with the audit public key, on
this machine or any other, with gsdctl audit verify.`,
		Example: `  gsdctl audit fetch arena --out match
  gsdctl audit verify --log match.ndjson --checkpoint match.checkpoint --leaves match.leaves --key gsd-audit-2026.pub
  gsdctl audit fetch arena --incarnation 1042 --out old-match`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			world := args[0]
			prefix := out
			if prefix == "" {
				prefix = world
			}
			ctx, cancel := a.context(cmd)
			defer cancel()
			c := a.client()
			var msg []byte
			var err error
			switch {
			case sign && inc >= 0:
				return usageError{errors.New("--sign signs the current incarnation's checkpoint: not with --incarnation")}
			case sign:
				msg, err = c.SignAuditCheckpoint(ctx, world)
			case inc >= 0:
				msg, err = c.AuditCheckpointOf(ctx, world, uint64(inc))
			default:
				msg, err = c.AuditCheckpoint(ctx, world)
			}
			if err != nil {
				return err
			}
			cp, err := checkpointText(msg)
			if err != nil {
				return err
			}
			var log bytes.Buffer
			if cp.Size > 0 && !cp.Tombstone {
				stop := errors.New("done")
				enc := json.NewEncoder(&log)
				err = c.Follow(ctx, world, 1, func(ev wire.Event) error {
					if err := enc.Encode(ev); err != nil {
						return err
					}
					if int64(ev.Seq) >= cp.Size {
						return stop
					}
					return nil
				})
				if !errors.Is(err, stop) {
					return fmt.Errorf("export events 1 to %d: %w", cp.Size, err)
				}
			}
			var leaves []byte
			if cp.Size > 0 {
				if inc >= 0 {
					leaves, err = c.AuditLeavesOf(ctx, world, uint64(inc), 1, uint64(cp.Size))
				} else {
					leaves, err = c.AuditLeaves(ctx, world, 1, uint64(cp.Size))
				}
				if err != nil {
					return fmt.Errorf("leaf hashes 1 to %d: %w", cp.Size, err)
				}
			}
			type file struct {
				ext string
				b   []byte
			}
			files := []file{{".checkpoint", msg}, {".ndjson", log.Bytes()}, {".leaves", leaves}}
			salts, sig, err := a.fetchSalts(ctx, cp)
			if err != nil {
				return err
			}
			if salts != nil {
				files = append(files, file{".salts", salts})
			}
			if sig != nil {
				files = append(files, file{".salts.sig", sig})
			} else if salts != nil { // an earlier fetch's signature would not vouch for these salts
				if err := os.Remove(prefix + ".salts.sig"); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
			}
			if cp.Tombstone { // no events to export: never overwrite an earlier export
				files = []file{files[0], files[2]}
			}
			for _, f := range files {
				if err := os.WriteFile(prefix+f.ext, f.b, 0o644); err != nil {
					return err
				}
			}
			if cp.Tombstone {
				_, err = fmt.Fprintf(a.stdout, "wrote %[1]s.checkpoint (the tombstone of world %[2]s incarnation %[3]d, deleted at %[4]d events) and %[1]s.leaves\n",
					prefix, cp.Origin, cp.Incarnation, cp.Size)
				return err
			}
			if sig != nil {
				_, err = fmt.Fprintf(a.stdout, "wrote %[1]s.checkpoint (world %[2]s, %[3]d events, salted leaves), %[1]s.ndjson, %[1]s.leaves, %[1]s.salts and %[1]s.salts.sig (the node's signature of the salts)\n", prefix, cp.Origin, cp.Size)
				return err
			}
			if salts != nil {
				_, err = fmt.Fprintf(a.stdout, "wrote %[1]s.checkpoint (world %[2]s, %[3]d events, salted leaves), %[1]s.ndjson, %[1]s.leaves and %[1]s.salts (unsigned)\n", prefix, cp.Origin, cp.Size)
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "wrote %[1]s.checkpoint (world %[2]s, %[3]d events), %[1]s.ndjson and %[1]s.leaves\n", prefix, cp.Origin, cp.Size)
			return err
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "path prefix of the three files (default: WORLD)")
	cmd.Flags().BoolVar(&sign, "sign", false, "have the node sign a checkpoint now (admin) rather than fetch its newest")
	cmd.Flags().Int64Var(&inc, "incarnation", -1, "the world incarnation whose tree to fetch (default: the current one)")
	return cmd
}

// checkpointText reads a signed checkpoint's text without checking its
// signatures (gsdctl audit verify does, with the public key).
func checkpointText(msg []byte) (audit.Checkpoint, error) {
	i := bytes.Index(msg, []byte("\n\n"))
	if i < 0 {
		return audit.Checkpoint{}, fmt.Errorf("%w: not a signed note", audit.ErrCheckpoint)
	}
	return audit.ParseCheckpoint(string(msg[:i+1]))
}
