package wire

import (
	"bytes"
	"math"
	"unicode/utf8"
)

// The lean form of the event stream (form=lean; docs/PROTOCOL.md,
// "Relays"): each line is the event without what its reader rebuilds,
// for the few followers of a whole world that ask for it (relays), so
// that a voter sends them fewer bytes. Every event line a node sends is
// Event's JSON, whose world the follower named and whose versions are
// the versions of its changes (fsm.Event.Versions); and most applied
// changes' version is the seq of their event. So a lean line leaves out
// world and versions, and a change's version when it is the event's seq;
// LeanEvent.Event puts them back, and the JSON of what it returns is the
// node's line, byte for byte, so the follower serves and hashes the same
// events. JSON reads two things back as something else (a float -0 as the
// int 0; a string that is not UTF-8 as its replacement characters, which
// are written otherwise): a lean stream sends an event that holds one
// whole (LeanExact), and its reader knows it by its world.

// EventFormLean is the lean form's name: the events route's form= value
// and the answer's EventFormHeader.
const EventFormLean = "lean"

// EventFormWhole is the whole form's name (form=whole, or no form=):
// every line an Event.
const EventFormWhole = "whole"

// EventFormHeader names, in an event stream's answer, the form of its
// lines; absent: whole Event lines (a node that does not know form=, or
// a relay from before chains were lean, answers so).
const EventFormHeader = "X-Gsd-Event-Form"

// LeanEvent is one line of the lean form: Event without World and
// Versions.
type LeanEvent struct {
	Seq       uint64       `json:"seq"`
	Index     uint64       `json:"index"`
	Time      int64        `json:"time"`
	Player    string       `json:"player"`
	ClientSeq uint64       `json:"client_seq"`
	Priority  string       `json:"priority"`
	Status    string       `json:"status"`
	Reason    string       `json:"reason,omitempty"`
	Duplicate bool         `json:"duplicate,omitempty"`
	Changes   []LeanChange `json:"changes,omitempty"`
	Notice    *Notice      `json:"notice,omitempty"`
}

// LeanChange is Change in a lean line: Version is left out (nil) when it
// is the event's seq.
type LeanChange struct {
	Entity  string  `json:"entity"`
	Field   string  `json:"field,omitempty"`
	Op      string  `json:"op,omitempty"`
	Value   *Value  `json:"value,omitempty"`
	Set     []Value `json:"set,omitempty"`
	Version *uint64 `json:"version,omitempty"`
	Exists  *bool   `json:"exists,omitempty"`
}

// LeanExact reports whether e's lean line rebuilds e's line exactly: it
// does unless one of its values is a float -0 or one of its strings is
// not UTF-8.
func LeanExact(e *Event) bool {
	if !utf8.ValidString(e.Player) || !utf8.ValidString(e.Reason) || !utf8.ValidString(e.Priority) || !utf8.ValidString(e.Status) {
		return false
	}
	if n := e.Notice; n != nil && !(utf8.ValidString(n.Kind) && utf8.ValidString(n.Node) && utf8.ValidString(n.Leader)) {
		return false
	}
	for i := range e.Changes {
		c := &e.Changes[i]
		if !utf8.ValidString(c.Entity) || !utf8.ValidString(c.Field) || !utf8.ValidString(c.Op) ||
			c.Value != nil && !exactValue(*c.Value) {
			return false
		}
		for _, v := range c.Set {
			if !exactValue(v) {
				return false
			}
		}
	}
	return true
}

// exactValue reports whether v's JSON reads back as v's JSON.
func exactValue(v Value) bool {
	switch v.Kind {
	case KindFloat:
		return v.Float != 0 || !math.Signbit(v.Float)
	case KindString:
		return utf8.ValidString(v.Str)
	}
	return true
}

// Lean returns e's lean line (whether it rebuilds e exactly: LeanExact). Its changes' versions point into the
// returned value's own storage, never into e.
func Lean(e *Event) LeanEvent {
	l := LeanEvent{Seq: e.Seq, Index: e.Index, Time: e.Time, Player: e.Player, ClientSeq: e.ClientSeq,
		Priority: e.Priority, Status: e.Status, Reason: e.Reason, Duplicate: e.Duplicate, Notice: e.Notice}
	if len(e.Changes) == 0 {
		return l
	}
	l.Changes = make([]LeanChange, len(e.Changes))
	versions := make([]uint64, len(e.Changes))
	for i, c := range e.Changes {
		lc := LeanChange{Entity: c.Entity, Field: c.Field, Op: c.Op, Value: c.Value, Set: c.Set, Exists: c.Exists}
		if c.Version != e.Seq {
			versions[i] = c.Version
			lc.Version = &versions[i]
		}
		l.Changes[i] = lc
	}
	return l
}

// Event returns the whole event of the lean line l of world's stream:
// the world, each change's version (the seq where left out) and the
// versions of its changes (entity → field → version, the last change of
// a field winning; none for an event without changes), as the node's
// line has them.
func (l *LeanEvent) Event(world string) Event {
	e := Event{World: world, Seq: l.Seq, Index: l.Index, Time: l.Time, Player: l.Player, ClientSeq: l.ClientSeq,
		Priority: l.Priority, Status: l.Status, Reason: l.Reason, Duplicate: l.Duplicate, Notice: l.Notice}
	if len(l.Changes) == 0 {
		return e
	}
	e.Changes = make([]Change, len(l.Changes))
	e.Versions = make(map[string]map[string]uint64)
	for i, lc := range l.Changes {
		c := Change{Entity: lc.Entity, Field: lc.Field, Op: lc.Op, Value: lc.Value, Set: lc.Set, Version: l.Seq, Exists: lc.Exists}
		if lc.Version != nil {
			c.Version = *lc.Version
		}
		e.Changes[i] = c
		if c.Field == "" {
			continue
		}
		m := e.Versions[c.Entity]
		if m == nil {
			m = make(map[string]uint64)
			e.Versions[c.Entity] = m
		}
		m[c.Field] = c.Version
	}
	return e
}

// AppendLeanLine appends to dst the lean line of whole, the JSON of an
// Event as json.Marshal writes it (with or without its newline), and
// reports true; it is json.Marshal(Lean(e)) made from e's line, without
// decoding it. It reports false, leaving dst as it was, when the lean
// line might not rebuild whole exactly (whole may hold an escaped U+FFFD,
// which JSON writes for a string that is not UTF-8, or a float -0; the
// check errs on the side of false) or whole is not such a line.
func AppendLeanLine(dst, whole []byte) ([]byte, bool) {
	const world, seqKey = `{"world":`, `"seq":`
	if !bytes.HasPrefix(whole, []byte(world)) || bytes.Contains(whole, []byte(`\ufffd`)) {
		return dst, false
	}
	i := skipString(whole, len(world))
	if i < 0 || i >= len(whole) || whole[i] != ',' || !bytes.HasPrefix(whole[i+1:], []byte(seqKey)) {
		return dst, false
	}
	rest := whole[i+1:] // from "seq":
	seq := rest[len(seqKey) : len(seqKey)+digits(rest[len(seqKey):])]
	if len(seq) == 0 {
		return dst, false
	}
	start := len(dst)
	dst = append(dst, '{')
	depth, from := 1, 0 // depth: 1 in the event, 2 in changes, 3 in a change
	for j := 0; j < len(rest); {
		switch c := rest[j]; c {
		case '"':
			end := skipString(rest, j)
			if end < 0 {
				return dst[:start], false
			}
			if end < len(rest) && rest[end] == ':' {
				switch key := string(rest[j+1 : end-1]); {
				case depth == 1 && key == "versions":
					// Out, with the comma before it.
					vEnd := skipObject(rest, end+1)
					if vEnd < 0 {
						return dst[:start], false
					}
					dst, from, end = append(dst, rest[from:j-1]...), vEnd, vEnd
				case depth == 3 && key == "version":
					vEnd := end + 1 + digits(rest[end+1:])
					if bytes.Equal(rest[end+1:vEnd], seq) {
						dst, from = append(dst, rest[from:j-1]...), vEnd // out, with its comma
					}
					end = vEnd
				}
			}
			j = end
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		case '-':
			if j+2 >= len(rest) || rest[j+1] == '0' && !bytes.ContainsAny(rest[j+2:j+3], ".eE0123456789") {
				return dst[:start], false // a float -0 (or a line cut short)
			}
		}
		j++
	}
	return append(dst, rest[from:]...), true
}

// AppendLeanForm appends to dst whole's line in the lean form: its lean
// line (AppendLeanLine), or whole itself when that might not rebuild
// whole exactly (its reader knows a whole line by its world).
func AppendLeanForm(dst, whole []byte) []byte {
	if out, ok := AppendLeanLine(dst, whole); ok {
		return out
	}
	return append(dst, whole...)
}

// skipString returns the index after the JSON string that starts at
// b[i] (a quote), or -1.
func skipString(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	for k := i + 1; k < len(b); k++ {
		switch b[k] {
		case '\\':
			k++
		case '"':
			return k + 1
		}
	}
	return -1
}

// skipObject returns the index after the JSON object that starts at
// b[i], or -1.
func skipObject(b []byte, i int) int {
	if i >= len(b) || b[i] != '{' {
		return -1
	}
	depth := 0
	for k := i; k < len(b); k++ {
		switch b[k] {
		case '"':
			if k = skipString(b, k); k < 0 {
				return -1
			}
			k-- // the loop's k++ lands after the string
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				return k + 1
			}
		}
	}
	return -1
}

// digits returns the length of b's leading run of ASCII digits.
func digits(b []byte) int {
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		n++
	}
	return n
}
