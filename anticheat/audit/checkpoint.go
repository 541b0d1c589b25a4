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
// gsd's origin is the world's id.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
}

// Text returns the checkpoint's text, the body of its note.
func (c Checkpoint) Text() string {
	return fmt.Sprintf("%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root[:]))
}

// ParseCheckpoint parses a checkpoint's text. Lines after the third
// (extensions) are allowed and ignored.
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
	return Checkpoint{Origin: origin, Size: size, Root: tlog.Hash(root)}, nil
}

// SignCheckpoint signs c as a note with every signer: during a key
// rotation the old and the new audit key both sign.
func SignCheckpoint(c Checkpoint, signers ...note.Signer) ([]byte, error) {
	if c.Origin == "" || strings.ContainsAny(c.Origin, "\n") {
		return nil, fmt.Errorf("%w: origin %q", ErrCheckpoint, c.Origin)
	}
	msg, err := note.Sign(&note.Note{Text: c.Text()}, signers...)
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint of %s: %w", c.Origin, err)
	}
	return msg, nil
}

// OpenCheckpoint verifies a signed checkpoint: at least one signature by
// one of verifiers (signatures by other keys are ignored), and returns it
// with the names of the keys that signed it.
func OpenCheckpoint(msg []byte, verifiers ...note.Verifier) (Checkpoint, []string, error) {
	n, err := note.Open(msg, note.VerifierList(verifiers...))
	if err != nil {
		return Checkpoint{}, nil, fmt.Errorf("%w: %v", ErrCheckpoint, err)
	}
	c, err := ParseCheckpoint(n.Text)
	if err != nil {
		return Checkpoint{}, nil, err
	}
	names := make([]string, len(n.Sigs))
	for i, s := range n.Sigs {
		names[i] = fmt.Sprintf("%s+%08x", s.Name, s.Hash)
	}
	return c, names, nil
}
