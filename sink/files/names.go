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

// FileName returns the name of world's finished file of events first..last.
func FileName(world string, first, last uint64) string {
	return fmt.Sprintf("%s.%020d-%020d%s", escape(world), first, last, suffix)
}

func openName(world string, first uint64) string {
	return fmt.Sprintf("%s%s.%020d%s", openPrefix, escape(world), first, suffix)
}

// ParseFileName returns the world and seq range a finished file's name
// holds; ok is false for any other name.
func ParseFileName(name string) (world string, first, last uint64, ok bool) {
	rest, found := strings.CutSuffix(name, suffix)
	if !found || strings.HasPrefix(name, ".") {
		return "", 0, 0, false
	}
	i := strings.LastIndexByte(rest, '.')
	if i < 0 {
		return "", 0, 0, false
	}
	a, b, found := strings.Cut(rest[i+1:], "-")
	if !found {
		return "", 0, 0, false
	}
	first, err1 := strconv.ParseUint(a, 10, 64)
	last, err2 := strconv.ParseUint(b, 10, 64)
	world, err3 := url.PathUnescape(rest[:i])
	if err1 != nil || err2 != nil || err3 != nil || first < 1 || last < first || escape(world) != rest[:i] {
		return "", 0, 0, false
	}
	return world, first, last, true
}
