package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// auditCmd groups the commands of the audit log (docs/ANTICHEAT.md): fetch
// asks a node; keygen and verify read and write files and talk to no node.
func (a *app) auditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Audit keys, match log exports and their offline checks",
	}
	cmd.AddCommand(a.auditKeygenCmd(), a.auditFetchCmd(), a.auditVerifyCmd(), a.auditEraseCmd())
	return cmd
}

func (a *app) auditKeygenCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "keygen NAME",
		Short: "Make an ed25519 audit key pair: NAME.key (private) and NAME.pub",
		Long: `Make an ed25519 audit key pair in the note key format
(golang.org/x/mod/sumdb/note), one line per file:

  NAME.key  PRIVATE+KEY+<name>+<hash>+<base64 key>   (mode 0600; keep it secret)
  NAME.pub  <name>+<hash>+<base64 key>               (give it to auditors)

<name>+<hash> is the key id. Existing files are never overwritten.`,
		Example: `  gsdctl audit keygen gsd-audit-2026
  gsdctl audit keygen gsd-audit-2026 --out /etc/gsd/audit`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			private, public, err := audit.GenerateKey(args[0])
			if err != nil {
				return usageError{err}
			}
			prefix := out
			if prefix == "" {
				prefix = args[0]
			}
			if err := writeNew(prefix+".key", private+"\n", 0o600); err != nil {
				return err
			}
			if err := writeNew(prefix+".pub", public+"\n", 0o644); err != nil {
				return errors.Join(err, os.Remove(prefix+".key"))
			}
			_, err = fmt.Fprintf(a.stdout, "wrote %s.key and %s.pub; key id %s\n", prefix, prefix, idOf(public))
			return err
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "path prefix of the two files (default: NAME)")
	return cmd
}

// idOf returns a public key's id: its first two +-separated parts.
func idOf(public string) string {
	v, _ := audit.ParseVerifyingKey(public) // GenerateKey made it
	return v.ID()
}

// writeNew writes a file that must not exist yet.
func writeNew(path, text string, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = f.WriteString(text)
	return errors.Join(err, f.Close())
}

// auditReport is verify's JSON output.
type auditReport struct {
	OK    bool   `json:"ok"`
	World string `json:"world"`
	// Incarnation is the world incarnation the checkpoint is of; Tombstone,
	// that it is the final checkpoint of a deleted one.
	Incarnation uint64          `json:"incarnation,omitempty"`
	Tombstone   bool            `json:"tombstone,omitempty"`
	Size        int64           `json:"size"`
	Root        string          `json:"root"`
	Signers     []string        `json:"signers"`
	Lines       int             `json:"lines"`
	Beyond      int             `json:"beyond"`
	Named       bool            `json:"named"`
	Problems    []audit.Problem `json:"problems"`
	// Leaf is the leaf version when not 1; Unchecked, a salted world's
	// events whose content is not verified, only their place (their
	// player's salt erased); AllowUnchecked, that ok accepts them;
	// Erased, events verified with the digests of erased salts: all but
	// the identities of the erased players they name.
	Leaf           byte     `json:"leaf,omitempty"`
	Unchecked      []uint64 `json:"unchecked,omitempty"`
	AllowUnchecked bool     `json:"allow_unchecked,omitempty"`
	Erased         []uint64 `json:"erased,omitempty"`
	// SaltsSigners are the audit keys that signed the --salts file (none:
	// unsigned, its erased verdicts not authenticated).
	SaltsSigners []string `json:"salts_signers,omitempty"`
}

func (a *app) auditVerifyCmd() *cobra.Command {
	var logFile, leavesFile, saltsFile string
	var keyFiles, cpFiles []string
	var allowUnchecked, allowUnsigned, requireSigned bool
	var maxSalts int64
	cmd := &cobra.Command{
		Use:   "verify --log FILE --checkpoint FILE --key FILE",
		Short: "Check an exported match log against a signed checkpoint, offline",
		Long: `Check an exported match log (NDJSON, one event per line, as the event
stream sends it, from seq 1) against a signed checkpoint of its world, with
the audit public key(s) that may have signed it. Every event up to the
checkpoint's size must be there once, in order, unchanged; events after it
are counted, not checked.

Removed, inserted (a repeated seq) and reordered events are named by seq. A
changed event is found by the root hash; earlier checkpoints of the world
(--checkpoint again) narrow down where; to name it, give --leaves, the
log's leaf hashes (32 bytes each, in seq order) from any copy of the log:
they are checked against the signed root first. The largest checkpoint is
the one the log is checked against.

A salted world's log (leaf version 2: its checkpoints say "leaf 2") needs
the world's salts (--salts, from gsdctl audit fetch): its leaves commit to
HMAC-SHA256(salt, id) in place of each player id. An event that names a
player whose salt was erased is recomputed with the digests of erased
salts that the salts carry (kept by erasures once every voter reads log
version 14): a match verifies its content and place, not the erased
player's identity, and it is listed as erased (the log still verifies).
The salts are signed: gsdctl audit fetch writes FILE.sig beside the
--salts FILE, the node's audit key's signature of its exact bytes, its
world and incarnation. When FILE.sig is there it must verify under --key
and name the checkpoint's world and incarnation, or the salts are refused:
a live player's salt deleted and its digest added to erased (to pass the
player's events, renamed, as erased), or any byte changed, fails it.
Without FILE.sig (salts from a node without an audit key, or an older
one) verify refuses the salts: erased verdicts would not be
authenticated, only as trustworthy as the file. --allow-unsigned-salts
accepts them (with a warning). --require-signed-salts, which refused
them when accepting was the default, is deprecated: it changes nothing
(and contradicts --allow-unsigned-salts). Even unsigned, a file whose
erased digests hold a live player's salted id is refused.
Names of erased players in other players' events are tried with the
digests only with --leaves. An event whose player's salt was erased
without a kept digest is verified by its leaf hash only (with --leaves;
listed as unchecked): its place in the log is checked, its content is
not, so anything may be written in it (any event whose player is missing
from the salts, with no digest that matches, is taken as such). The log
then does not verify unless --allow-unchecked is given.

Exit status 0: the log matches. 1: it does not (each problem is listed),
it has unchecked events and --allow-unchecked was not given, or an input
could not be read.`,
		Example: `  gsdctl events arena > match.ndjson
  gsdctl audit verify --log match.ndjson --checkpoint match.checkpoint --key gsd-audit-2026.pub
  gsdctl audit verify --log match.ndjson --checkpoint match.checkpoint --key old.pub --key new.pub --leaves match.leaves -o json
  gsdctl audit verify --log match.ndjson --checkpoint at-1000.checkpoint --checkpoint at-500.checkpoint --key gsd-audit-2026.pub`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if logFile == "" || len(cpFiles) == 0 || len(keyFiles) == 0 {
				return usageError{errors.New("--log, --checkpoint and --key are required")}
			}
			if requireSigned && allowUnsigned {
				return usageError{errors.New("--require-signed-salts and --allow-unsigned-salts contradict each other (--require-signed-salts is deprecated: refusing unsigned salts is the default)")}
			}
			if requireSigned {
				fmt.Fprintln(a.stderr, "gsdctl: warning: --require-signed-salts is deprecated and changes nothing: unsigned salts are refused by default (--allow-unsigned-salts accepts them)")
			}
			var verifiers []note.Verifier
			for _, f := range keyFiles {
				b, err := os.ReadFile(f)
				if err != nil {
					return usageError{err}
				}
				v, err := audit.ParseVerifyingKey(string(b))
				if err != nil {
					return usageError{fmt.Errorf("%s: %w", f, err)}
				}
				verifiers = append(verifiers, v)
			}
			// The largest checkpoint first: the log is checked against it.
			var cps []audit.Checkpoint
			var signers []string
			for _, f := range cpFiles {
				msg, err := os.ReadFile(f)
				if err != nil {
					return usageError{err}
				}
				cp, names, err := audit.OpenCheckpoint(msg, verifiers...)
				if err != nil {
					return fmt.Errorf("%s: %w", f, err)
				}
				cps = append(cps, cp)
				if cp.Size >= cps[0].Size {
					cps[0], cps[len(cps)-1] = cp, cps[0]
					signers = names
				}
			}
			var leaves []tlog.Hash
			if leavesFile != "" {
				b, err := os.ReadFile(leavesFile)
				if err != nil {
					return usageError{err}
				}
				if leaves, err = audit.DecodeLeafHashes(b); err != nil {
					return fmt.Errorf("%s: %w", leavesFile, err)
				}
			}
			var log io.Reader = a.stdin
			if logFile != "-" {
				f, err := os.Open(logFile)
				if err != nil {
					return usageError{err}
				}
				defer f.Close()
				log = f
			}
			rep, saltsSigners, err := a.verifyLog(log, cps[0], saltsCheck{saltsFile, verifiers, allowUnsigned, maxSalts}, leaves, cps[1:])
			if err != nil {
				return fmt.Errorf("%s: %w", logFile, err)
			}
			rep.AllowUnchecked = allowUnchecked
			if err := a.printAuditReport(rep, signers, saltsSigners); err != nil {
				return err
			}
			if len(rep.Problems) == 0 && !rep.OK() {
				return fmt.Errorf("%s: content not verified of %d event(s) of players missing from the salts; --allow-unchecked accepts them", logFile, len(rep.Unchecked))
			}
			if !rep.OK() {
				return fmt.Errorf("%s does not match the checkpoint: %d problem(s)", logFile, len(rep.Problems))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&logFile, "log", "", "the exported match log (NDJSON, e.g. from gsdctl events WORLD), or - for stdin")
	f.StringArrayVar(&cpFiles, "checkpoint", nil, "a signed checkpoint (a note); repeat with earlier ones to narrow down a change")
	f.StringArrayVar(&keyFiles, "key", nil, "an audit public key file (repeat during a key rotation)")
	f.StringVar(&leavesFile, "leaves", "", "the log's leaf hashes, to name changed events")
	f.StringVar(&saltsFile, "salts", "", "a salted world's salt table (JSON, from gsdctl audit fetch)")
	f.Int64Var(&maxSalts, "max-salts-bytes", DefaultMaxSaltsBytes, "with --salts: the largest salts file read (a larger one is refused; every event is checked against each erased digest it holds)")
	f.BoolVar(&allowUnsigned, "allow-unsigned-salts", false, "with --salts: accept salts without a signature (no FILE.sig: from a node without an audit key), whose erased verdicts are not authenticated")
	f.BoolVar(&requireSigned, "require-signed-salts", false, "deprecated, changes nothing: salts without a signature are refused by default")
	f.BoolVar(&allowUnchecked, "allow-unchecked", false, "with --salts: accept events of players missing from the salts (erased), whose content is not verified")
	return cmd
}

func (a *app) printAuditReport(rep audit.Report, signers, saltsSigners []string) error {
	root := base64.StdEncoding.EncodeToString(rep.Checkpoint.Root[:])
	if a.output == "json" {
		problems := rep.Problems
		if problems == nil {
			problems = []audit.Problem{}
		}
		return a.printJSON(auditReport{OK: rep.OK(), World: rep.Checkpoint.Origin, Incarnation: rep.Checkpoint.Incarnation,
			Tombstone: rep.Checkpoint.Tombstone, Size: rep.Checkpoint.Size, Root: root,
			Signers: signers, Lines: rep.Lines, Beyond: rep.Beyond, Named: rep.Named, Problems: problems,
			Leaf: rep.Checkpoint.Leaf, Unchecked: rep.Unchecked, AllowUnchecked: rep.AllowUnchecked, Erased: rep.Erased,
			SaltsSigners: saltsSigners})
	}
	w := a.stdout
	cp := rep.Checkpoint
	inc := ""
	if cp.Incarnation != 0 {
		inc = fmt.Sprintf(" incarnation %d", cp.Incarnation)
	}
	fmt.Fprintf(w, "checkpoint: world %s%s, %d events, root %s, signed by %v\n", cp.Origin, inc, cp.Size, root, signers)
	if cp.Tombstone {
		fmt.Fprintf(w, "tombstone: the world%s was deleted; its log ended at %d events (last event: log index %d, time %d; 0: not seen by the signer)\n",
			inc, cp.Size, cp.LastIndex, cp.LastTime)
	}
	fmt.Fprintf(w, "log: %d events", rep.Lines)
	if rep.Beyond > 0 {
		fmt.Fprintf(w, ", %d after the checkpoint (not covered)", rep.Beyond)
	}
	fmt.Fprintln(w)
	if len(saltsSigners) > 0 {
		fmt.Fprintf(w, "salts: signed by %v\n", saltsSigners)
	}
	if len(rep.Erased) > 0 {
		fmt.Fprintf(w, "erased: %d event(s) verified with the digests of erased players' salts (content and place verified, the erased players' identities not): seqs %v\n", len(rep.Erased), rep.Erased)
	}
	if len(rep.Unchecked) > 0 {
		fmt.Fprintf(w, "unchecked: %d event(s) of players missing from the salts (erased), content not verified (only their place in the log): seqs %v\n", len(rep.Unchecked), rep.Unchecked)
		if !rep.AllowUnchecked {
			fmt.Fprintln(w, "not ok: unchecked events (--allow-unchecked accepts them)")
		}
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(w, p.String())
	}
	if rep.OK() {
		_, err := fmt.Fprintln(w, "ok")
		return err
	}
	return nil
}
