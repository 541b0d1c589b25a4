package jepsen

import (
	"fmt"
	"slices"

	"github.com/gsd-dev/gsd/wire"
)

// CheckPlaySession compares what one play session's Next returned with the
// world's event log (feed: a complete node feed, from seq 1):
//
//   - the individual events come in strictly increasing seq order (no
//     duplicate, no reordering), and each is the log's event at its seq
//     (same player, client seq, status: nothing invented);
//   - no gap: every critical event of the log from the session's first
//     event to the highest seq it covered (its last event or delta) was
//     returned. With interest off every critical event reaches every
//     client; bulk events may come coalesced, so they are not required;
//   - every delta change (entity, field, value, version) is a value the log
//     set at that version (deltas may skip intermediate values, not invent
//     them), at or below the seq the delta covers.
//
// It returns the problems found, each naming the player and session.
func CheckPlaySession(player string, s *PlaySession, feed []wire.Event) []string {
	var probs []string
	bad := func(f string, a ...any) {
		probs = append(probs, fmt.Sprintf("play %s session %s: ", player, s.ID)+fmt.Sprintf(f, a...))
	}
	bySeq := make(map[uint64]wire.Event, len(feed))
	for _, ev := range feed {
		bySeq[ev.Seq] = ev
	}
	var got []uint64
	var first, top, last uint64
	for _, pe := range s.Events {
		top = max(top, pe.Seq)
		if pe.Delta {
			for _, ch := range pe.Changes {
				if ch.Op != "set" {
					continue // the workload never deletes
				}
				ev, ok := bySeq[ch.Version]
				switch {
				case ch.Version > pe.Seq:
					bad("delta covering seq %d carries %s.%s at version %d, beyond it", pe.Seq, ch.Entity, ch.Field, ch.Version)
				case !ok:
					bad("delta %s.%s=%v at version %d: no such event in the log", ch.Entity, ch.Field, valueOf(ch), ch.Version)
				case ok && !sets(ev, ch.Entity, ch.Field, valueOf(ch)):
					bad("delta %s.%s=%v at version %d: the log's event %d (%s/%d) does not set that", ch.Entity, ch.Field, valueOf(ch), ch.Version, ev.Seq, ev.Player, ev.ClientSeq)
				}
			}
			continue
		}
		if first == 0 {
			first = pe.Seq
		}
		if pe.Seq <= last {
			bad("event seq %d (%s/%d) returned after seq %d: duplicate or out of order", pe.Seq, pe.Player, pe.ClientSeq, last)
			continue
		}
		last = pe.Seq
		got = append(got, pe.Seq)
		ev, ok := bySeq[pe.Seq]
		switch {
		case !ok:
			bad("event seq %d (%s/%d) is not in the log", pe.Seq, pe.Player, pe.ClientSeq)
		case ok && (ev.Player != pe.Player || ev.ClientSeq != pe.ClientSeq || ev.Status != pe.Status):
			bad("event seq %d is %s/%d %s, the log has %s/%d %s", pe.Seq, pe.Player, pe.ClientSeq, pe.Status, ev.Player, ev.ClientSeq, ev.Status)
		}
	}
	if first == 0 {
		return probs
	}
	var missed []uint64
	for _, ev := range feed {
		if ev.Seq < first || ev.Seq > top || ev.Priority != "critical" {
			continue
		}
		if _, found := slices.BinarySearch(got, ev.Seq); !found {
			missed = append(missed, ev.Seq)
		}
	}
	if len(missed) > 0 {
		show := missed
		if len(show) > 20 {
			show = show[:20]
		}
		bad("%d critical events of the log in %d..%d never returned (gap), e.g. seqs %v", len(missed), first, top, show)
	}
	return probs
}

// sets reports whether ev changed entity.field to the int v.
func sets(ev wire.Event, entity, field string, v int64) bool {
	for _, ch := range ev.Changes {
		if ch.Entity == entity && ch.Field == field && ch.Value != nil && ch.Value.Int == v {
			return true
		}
	}
	return false
}

func valueOf(ch wire.Change) int64 {
	if ch.Value == nil {
		return 0
	}
	return ch.Value.Int
}

// CheckPlayCounter checks a play client's counter: its acknowledged
// increments ≤ final ≤ acknowledged + unknown ones.
func CheckPlayCounter(pc *PlayClient, final int64) error {
	var acked, unknown int64
	for _, o := range pc.Ops {
		if o.Kind != OpPlayIncr {
			continue
		}
		switch {
		case o.Outcome == Ok && o.Status == "applied":
			acked++
		case o.Outcome == Unknown:
			unknown++
		}
	}
	if final < acked || final > acked+unknown {
		return fmt.Errorf("play %s counter %s/%s: final %d outside [acked %d, acked+unknown %d]", pc.Player, pc.World, pc.Counter(), final, acked, acked+unknown)
	}
	return nil
}
