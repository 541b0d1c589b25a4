package files

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

const (
	suffix     = ".ndjson.gz"
	openPrefix = ".open."
)

// escape writes world with every byte outside [A-Za-z0-9_-] as %XX, so a
// name has neither '.' nor '/'.
func escape(world string) string {
	var b strings.Builder
	for i := 0; i < len(world); i++ {
		c := world[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// Name is what a finished file's name holds: the world, the incarnation
// of the world its events belong to (feed.Position) and their seq range.
type Name struct {
	World string
	// Incarnation is the world's incarnation (feed.Position): the Raft
	// index of its creation, or, for a world created before
	// incarnations, its event 1's leader time negated; 0 (unknown) in
	// names written before gsd recorded it.
	Incarnation int64
	First, Last uint64
}

// String returns the file name: "<world>.<incarnation>.<first>-<last>.ndjson.gz",
// numbers zero-padded to 20 digits so that one incarnation's names sort
// in seq order; without ".<incarnation>" when it is 0.
func (n Name) String() string {
	if n.Incarnation == 0 {
		return fmt.Sprintf("%s.%020d-%020d%s", escape(n.World), n.First, n.Last, suffix)
	}
	return fmt.Sprintf("%s.%020d.%020d-%020d%s", escape(n.World), n.Incarnation, n.First, n.Last, suffix)
}

// FileName returns the name of world's finished file of events
// first..last of an unknown incarnation (the form written before gsd
// recorded incarnations; Name.String names one).
func FileName(world string, first, last uint64) string {
	return Name{World: world, First: first, Last: last}.String()
}

func openName(world string, first uint64) string {
	return fmt.Sprintf("%s%s.%020d%s", openPrefix, escape(world), first, suffix)
}

// ParseName returns what a finished file's name holds; ok is false for
// any other name.
func ParseName(name string) (Name, bool) {
	rest, found := strings.CutSuffix(name, suffix)
	if !found || strings.HasPrefix(name, ".") {
		return Name{}, false
	}
	i := strings.LastIndexByte(rest, '.')
	if i < 0 {
		return Name{}, false
	}
	a, b, found := strings.Cut(rest[i+1:], "-")
	if !found {
		return Name{}, false
	}
	first, err1 := strconv.ParseUint(a, 10, 64)
	last, err2 := strconv.ParseUint(b, 10, 64)
	if err1 != nil || err2 != nil || first < 1 || last < first {
		return Name{}, false
	}
	n := Name{First: first, Last: last}
	esc := rest[:i]
	// An escaped world has no '.': one more is the incarnation's.
	if j := strings.LastIndexByte(esc, '.'); j >= 0 {
		inc, err := strconv.ParseInt(esc[j+1:], 10, 64)
		if err != nil || inc == 0 {
			return Name{}, false
		}
		n.Incarnation, esc = inc, esc[:j]
	}
	world, err := url.PathUnescape(esc)
	if err != nil || escape(world) != esc {
		return Name{}, false
	}
	n.World = world
	return n, true
}

// ParseFileName returns the world and seq range a finished file's name
// holds, whatever its incarnation; ok is false for any other name.
func ParseFileName(name string) (world string, first, last uint64, ok bool) {
	n, ok := ParseName(name)
	return n.World, n.First, n.Last, ok
}
