package pg

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// rows holds a batch of events column by column, as the insert's unnest
// takes them.
type rows struct {
	seq, index, timeNs          []int64
	player, clientSeq, priority []string
	status, reason, changes     []string
}

func (r *rows) reset() {
	r.seq, r.index, r.timeNs = r.seq[:0], r.index[:0], r.timeNs[:0]
	r.player, r.clientSeq, r.priority = r.player[:0], r.clientSeq[:0], r.priority[:0]
	r.status, r.reason, r.changes = r.status[:0], r.reason[:0], r.changes[:0]
}

// add appends one event. PostgreSQL text and jsonb cannot hold NUL, so a
// NUL in a name or a string value is written as U+FFFD (as invalid UTF-8
// in a string value already is by the JSON encoding): a row that the
// database refused would stop the world's mirror for good.
func (r *rows) add(ev *fsm.Event) error {
	if ev.Seq > math.MaxInt64 || ev.Index > math.MaxInt64 {
		return fmt.Errorf("world %s event %d (index %d) does not fit PostgreSQL's bigint", ev.World, ev.Seq, ev.Index)
	}
	changes := []byte("[]")
	if len(ev.Changes) > 0 {
		var err error
		if changes, err = json.Marshal(ev.Wire().Changes); err != nil {
			return fmt.Errorf("world %s event %d: encode changes: %w", ev.World, ev.Seq, err)
		}
	}
	r.seq = append(r.seq, int64(ev.Seq))
	r.index = append(r.index, int64(ev.Index))
	r.timeNs = append(r.timeNs, ev.Time)
	r.player = append(r.player, noNUL(ev.Player))
	r.clientSeq = append(r.clientSeq, strconv.FormatUint(ev.ClientSeq, 10))
	r.priority = append(r.priority, ev.Priority.String())
	r.status = append(r.status, ev.Status.String())
	r.reason = append(r.reason, noNUL(ev.Reason))
	r.changes = append(r.changes, string(jsonNoNUL(changes)))
	return nil
}

// Row is one event as the sink writes it, for tests and tools that
// compare a mirror with a world (Changes in its JSON text form).
type Row struct {
	Seq, Index               uint64
	TimeNs                   int64
	Player                   string
	ClientSeq                uint64
	Priority, Status, Reason string
	Changes                  []wire.Change
}

// RowOf returns the row the sink writes for ev.
func RowOf(ev *fsm.Event) (Row, error) {
	var r rows
	if err := r.add(ev); err != nil {
		return Row{}, err
	}
	var ch []wire.Change
	if err := json.Unmarshal([]byte(r.changes[0]), &ch); err != nil {
		return Row{}, err
	}
	return Row{Seq: ev.Seq, Index: ev.Index, TimeNs: ev.Time, Player: r.player[0], ClientSeq: ev.ClientSeq,
		Priority: r.priority[0], Status: r.status[0], Reason: r.reason[0], Changes: ch}, nil
}

func noNUL(s string) string {
	if strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// jsonNoNUL rewrites the escape \u0000, which jsonb refuses, as \ufffd,
// leaving an escaped backslash followed by "u0000" alone.
func jsonNoNUL(b []byte) []byte {
	const esc = `\u0000`
	if !strings.Contains(string(b), esc) {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 == len(b) {
			out = append(out, b[i])
			continue
		}
		if strings.HasPrefix(string(b[i:]), esc) {
			out = append(out, `\ufffd`...)
			i += len(esc) - 1
			continue
		}
		out = append(out, b[i], b[i+1]) // any other escape, \\ included
		i++
	}
	return out
}
