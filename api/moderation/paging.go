package moderation

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// The list's page size: DefaultLimit flags unless the query's limit asks
// for 1 to MaxLimit.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// cursor is where a page ended: the last flag's Raised (the seq of the
// moderation world's event that recorded it) and id. Flags recorded later
// have a higher Raised, so they come after any cursor: paging returns
// every flag that exists when it starts exactly once, and those recorded
// meanwhile at most once (in the pages still to come).
type cursor struct {
	raised uint64
	id     string
}

// before reports whether f comes after c in the list's order.
func (c cursor) before(f wire.Flag) bool {
	return cmp.Or(cmp.Compare(c.raised, f.Raised), strings.Compare(c.id, f.ID)) < 0
}

// String encodes c as the opaque next_cursor.
func (c cursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatUint(c.raised, 10) + "/" + c.id))
}

// parseCursor decodes a next_cursor; "" is the list's start.
func parseCursor(s string) (cursor, error) {
	if s == "" {
		return cursor{}, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	raised, id, ok := strings.Cut(string(b), "/")
	var n uint64
	if err == nil && ok {
		n, err = strconv.ParseUint(raised, 10, 64)
	}
	if err != nil || !ok {
		return cursor{}, fmt.Errorf("%w: cursor %q: not a next_cursor of this list", fsm.ErrMalformed, s)
	}
	return cursor{n, id}, nil
}

// parseLimit reads the query's limit: DefaultLimit when "".
func parseLimit(s string) (int, error) {
	if s == "" {
		return DefaultLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxLimit {
		return 0, fmt.Errorf("%w: limit %q: want 1 to %d", fsm.ErrMalformed, s, MaxLimit)
	}
	return n, nil
}

// page returns the flags of sorted (in the list's order) after c, at most
// limit of them, and the cursor of the next page ("" when none is left).
func page(sorted []wire.Flag, c cursor, limit int) ([]wire.Flag, string) {
	i := 0
	for i < len(sorted) && !c.before(sorted[i]) {
		i++
	}
	rest := sorted[i:]
	if len(rest) <= limit {
		return rest, ""
	}
	last := rest[limit-1]
	return rest[:limit], cursor{last.Raised, last.ID}.String()
}
