package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// ErrSaltsNote: a salts signature that does not parse, does not verify
// under the keys given, or does not vouch for the salts file beside it.
var ErrSaltsNote = errors.New("gsd/audit: bad salts signature")

// saltsNoteHeader is the first line of a salts note, its format's name
// and version.
const saltsNoteHeader = "gsd audit salts v1"

// SaltsNote is what a node's signature over a salted world's salt table
// (GET /v1/worlds/{world}/audit/salts?signed=1, gsdctl audit fetch's
// PREFIX.salts.sig) commits to. Its text, the body of the note, is five
// lines, in this order and nothing else (a frozen format: a later one is
// "v2"):
//
//	gsd audit salts v1
//	world <world id>
//	incarnation <n>               the world incarnation of the table (0: a world from before incarnations)
//	size <n>                      the signing node's audit log size when it read the table
//	sha256 <standard base64>      SHA-256 of the salts JSON bytes exactly as served
//
// The table holds the salt of every player of the log's first size
// events whose salt was not erased by then (later erasures may be
// applied too). The digest binds the exact bytes: a verifier hashes the
// file it reads, so a salt removed, a digest added or any byte changed
// fails.
type SaltsNote struct {
	World       string
	Incarnation uint64
	Size        int64
	SHA256      [sha256.Size]byte
}

// NewSaltsNote returns the note of the salts JSON body of world's
// incarnation inc, read when its audit log had size events.
func NewSaltsNote(world string, inc uint64, size int64, body []byte) SaltsNote {
	return SaltsNote{World: world, Incarnation: inc, Size: size, SHA256: sha256.Sum256(body)}
}

// Text returns the note's text.
func (s SaltsNote) Text() string {
	return fmt.Sprintf("%s\nworld %s\nincarnation %d\nsize %d\nsha256 %s\n",
		saltsNoteHeader, s.World, s.Incarnation, s.Size, base64.StdEncoding.EncodeToString(s.SHA256[:]))
}

// ParseSaltsNote parses a salts note's text: exactly the five lines of
// SaltsNote, each in its canonical form.
func ParseSaltsNote(text string) (SaltsNote, error) {
	lines := strings.Split(text, "\n")
	if len(lines) != 6 || lines[5] != "" || lines[0] != saltsNoteHeader {
		return SaltsNote{}, fmt.Errorf("%w: want the five lines of %q", ErrSaltsNote, saltsNoteHeader)
	}
	var s SaltsNote
	var vals [4]string
	for i, key := range []string{"world", "incarnation", "size", "sha256"} {
		k, v, ok := strings.Cut(lines[i+1], " ")
		if !ok || k != key || v == "" {
			return SaltsNote{}, fmt.Errorf("%w: line %d is %q, want %s", ErrSaltsNote, i+2, lines[i+1], key)
		}
		vals[i] = v
	}
	s.World = vals[0]
	inc, err1 := strconv.ParseUint(vals[1], 10, 64)
	size, err2 := strconv.ParseInt(vals[2], 10, 64)
	sum, err3 := base64.StdEncoding.DecodeString(vals[3])
	s.Incarnation, s.Size = inc, size
	if err := errors.Join(err1, err2, err3); err != nil || size < 0 || len(sum) != sha256.Size {
		return SaltsNote{}, fmt.Errorf("%w: incarnation %q, size %q, sha256 %q", ErrSaltsNote, vals[1], vals[2], vals[3])
	}
	copy(s.SHA256[:], sum)
	if s.Text() != text { // a number with a sign or leading zeros, padding that is not canonical
		return SaltsNote{}, fmt.Errorf("%w: not in canonical form: %q", ErrSaltsNote, text)
	}
	return s, nil
}

// SignSalts signs s as a note with every signer, as SignCheckpoint does.
func SignSalts(s SaltsNote, signers ...note.Signer) ([]byte, error) {
	if s.World == "" || strings.ContainsAny(s.World, "\n") || s.Size < 0 {
		return nil, fmt.Errorf("%w: world %q, size %d", ErrSaltsNote, s.World, s.Size)
	}
	return signText(s.Text(), "salts of "+s.World, signers)
}

// OpenSalts verifies a signed salts note: at least one signature by one
// of verifiers (others are ignored), and returns it with the names of the
// keys that signed it.
func OpenSalts(msg []byte, verifiers ...note.Verifier) (SaltsNote, []string, error) {
	return openNote(msg, ErrSaltsNote, verifiers, ParseSaltsNote)
}

// Vouches checks that s is the note of the salts file body of world's
// incarnation inc: a file changed in any byte, or another world's or
// incarnation's salts, is refused.
func (s SaltsNote) Vouches(body []byte, world string, inc uint64) error {
	switch sum := sha256.Sum256(body); {
	case s.World != world || s.Incarnation != inc:
		return fmt.Errorf("%w: it signs the salts of world %s incarnation %d, not of world %s incarnation %d", ErrSaltsNote, s.World, s.Incarnation, world, inc)
	case !bytes.Equal(sum[:], s.SHA256[:]):
		return fmt.Errorf("%w: the salts file is not the one signed (its SHA-256 differs)", ErrSaltsNote)
	}
	return nil
}
