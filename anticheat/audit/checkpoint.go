package audit

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// ErrCheckpoint: a checkpoint that does not parse, or whose signature does
// not verify under the keys given.
var ErrCheckpoint = errors.New("gsd/audit: bad checkpoint")

// Checkpoint is a log's state at one size: what a signed note commits to.
// Its text is the transparency-log checkpoint form (c2sp.org/tlog-checkpoint):
//
//	<origin>
//	<size, decimal>
//	<root hash, standard base64>
//
// gsd's origin is the world's id. Extension lines follow, in this order:
//
//	incarnation <n>                 the world incarnation whose tree it is (not written for 0)
//	leaf <v>                        the tree's leaf version when not 1 (2: salted, wire.AppendAuditLeafV2)
//	tombstone <last index> <time>   the final checkpoint of a deleted incarnation
//
// A world deleted and created again (fsm.WorldInfo.Incarnation) starts a
// new tree; the incarnation line tells the trees apart, and a checkpoint
// of incarnation 0 (a world from before incarnations, and every
// checkpoint signed before them) reads as it always did. A tombstone is a
// distinct kind of checkpoint: the tree ended there because the world was
// deleted; it still verifies a match log as any checkpoint does.
type Checkpoint struct {
	Origin      string
	Size        int64
	Root        tlog.Hash
	Incarnation uint64
	// Leaf is the version of the tree's leaves when not 1 (0: version
	// 1, and no line): 2 for a salted world.
	Leaf byte
	// Tombstone: the incarnation was deleted and its tree ends at Size.
	// LastIndex and LastTime are the log index and leader time of its last
	// logged event (0 when the node that signed it did not see it: the
	// delete came while it was down, or the tree is empty); the delete's
	// own index is not in the committed feed.
	Tombstone bool
	LastIndex uint64
	LastTime  int64
}

// Text returns the checkpoint's text, the body of its note.
func (c Checkpoint) Text() string {
	s := fmt.Sprintf("%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root[:]))
	if c.Incarnation != 0 {
		s += fmt.Sprintf("incarnation %d\n", c.Incarnation)
	}
	if c.Leaf != 0 {
		s += fmt.Sprintf("leaf %d\n", c.Leaf)
	}
	if c.Tombstone {
		s += fmt.Sprintf("tombstone %d %d\n", c.LastIndex, c.LastTime)
	}
	return s
}

// ParseCheckpoint parses a checkpoint's text. Lines after the third are
// extensions: gsd's (incarnation, leaf, tombstone) are parsed, others
// ignored.
func ParseCheckpoint(text string) (Checkpoint, error) {
	lines := strings.SplitAfter(text, "\n")
	if len(lines) < 4 || !strings.HasSuffix(text, "\n") {
		return Checkpoint{}, fmt.Errorf("%w: want origin, size and root hash lines", ErrCheckpoint)
	}
	origin := strings.TrimSuffix(lines[0], "\n")
	size, err := strconv.ParseInt(strings.TrimSuffix(lines[1], "\n"), 10, 64)
	if origin == "" || err != nil || size < 0 || strconv.FormatInt(size, 10) != strings.TrimSuffix(lines[1], "\n") {
		return Checkpoint{}, fmt.Errorf("%w: origin %q, size %q", ErrCheckpoint, origin, strings.TrimSuffix(lines[1], "\n"))
	}
	root, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(lines[2], "\n"))
	if err != nil || len(root) != tlog.HashSize {
		return Checkpoint{}, fmt.Errorf("%w: root hash %q", ErrCheckpoint, strings.TrimSuffix(lines[2], "\n"))
	}
	c := Checkpoint{Origin: origin, Size: size, Root: tlog.Hash(root)}
	for _, l := range lines[3:] {
		l = strings.TrimSuffix(l, "\n")
		var ok bool
		switch kind, rest, _ := strings.Cut(l, " "); kind {
		case "incarnation":
			c.Incarnation, err = strconv.ParseUint(rest, 10, 64)
			ok = err == nil && c.Incarnation != 0 && strconv.FormatUint(c.Incarnation, 10) == rest
		case "leaf":
			var v uint64
			v, err = strconv.ParseUint(rest, 10, 8)
			c.Leaf = byte(v)
			ok = err == nil && v >= 2 && strconv.FormatUint(v, 10) == rest
		case "tombstone":
			c.Tombstone = true
			_, err = fmt.Sscanf(rest, "%d %d", &c.LastIndex, &c.LastTime)
			ok = err == nil && fmt.Sprintf("%d %d", c.LastIndex, c.LastTime) == rest
		default:
			continue
		}
		if !ok {
			return Checkpoint{}, fmt.Errorf("%w: extension line %q", ErrCheckpoint, l)
		}
	}
	return c, nil
}

// SignCheckpoint signs c as a note with every signer: during a key
// rotation the old and the new audit key both sign.
func SignCheckpoint(c Checkpoint, signers ...note.Signer) ([]byte, error) {
	if c.Origin == "" || strings.ContainsAny(c.Origin, "\n") {
		return nil, fmt.Errorf("%w: origin %q", ErrCheckpoint, c.Origin)
	}
	return signText(c.Text(), "checkpoint of "+c.Origin, signers)
}

// OpenCheckpoint verifies a signed checkpoint: at least one signature by
// one of verifiers (signatures by other keys are ignored), and returns it
// with the names of the keys that signed it.
func OpenCheckpoint(msg []byte, verifiers ...note.Verifier) (Checkpoint, []string, error) {
	return openNote(msg, ErrCheckpoint, verifiers, ParseCheckpoint)
}

// signText signs text as a note with every signer; what names it in
// errors.
func signText(text, what string, signers []note.Signer) ([]byte, error) {
	msg, err := note.Sign(&note.Note{Text: text}, signers...)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", what, err)
	}
	return msg, nil
}

// openNote verifies a note, at least one signature by one of verifiers,
// parses its text and returns it with the ids, <name>+<hash>, of the keys
// that signed it; a note that does not verify is bad.
func openNote[T any](msg []byte, bad error, verifiers []note.Verifier, parse func(string) (T, error)) (T, []string, error) {
	var zero T
	n, err := note.Open(msg, note.VerifierList(verifiers...))
	if err != nil {
		return zero, nil, fmt.Errorf("%w: %v", bad, err)
	}
	v, err := parse(n.Text)
	if err != nil {
		return zero, nil, err
	}
	names := make([]string, len(n.Sigs))
	for i, s := range n.Sigs {
		names[i] = fmt.Sprintf("%s+%08x", s.Name, s.Hash)
	}
	return v, names, nil
}
