package store

import (
	"fmt"

	"github.com/gsd-dev/gsd/fsm"
)

// The serving side of a refill: what this node answers another node's
// refiller (api/edge's archive route) from its archive and its feed's tail.

// ArchiveRecords returns the encodings (fsm.EncodeEvent) of up to limit
// consecutive events of world from seq first on, about maxBytes at most
// (always one when one is held): what another node refills its archive
// with. first is from when this node holds from, else the oldest seq
// after it that it holds (what retention left); none: it holds nothing
// at or after from. The archive answers first, the feed's tail for what
// it does not hold yet.
func (s *Store) ArchiveRecords(world string, from uint64, limit, maxBytes int) (first uint64, recs [][]byte, err error) {
	if from == 0 || limit < 1 {
		return 0, nil, fmt.Errorf("%w: archive records from seq %d, at most %d", fsm.ErrMalformed, from, limit)
	}
	first, out, err := s.arch.records(world, from, limit, maxBytes)
	if err != nil {
		return 0, nil, err
	}
	size := 0
	for _, r := range out {
		size += len(r)
	}
	next := first + uint64(len(out))
	if len(out) == 0 {
		next = max(from, s.feed.tailFirst(world))
		first = next
	}
	for ; len(out) < limit && size < maxBytes; next++ {
		ev := s.feed.tailEvent(world, next)
		if ev == nil {
			break
		}
		rec := fsm.EncodeEvent(ev)
		out = append(out, rec)
		size += len(rec)
	}
	if len(out) == 0 {
		first = from
	}
	return first, out, nil
}

// tailFirst returns the oldest seq in world's tail (0: no tail).
func (f *feed) tailFirst(world string) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t := f.tails[world]; t != nil {
		return t.first
	}
	return 0
}

// tailEvent returns the event of seq in world's tail, or nil.
func (f *feed) tailEvent(world string, seq uint64) *fsm.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t := f.tails[world]; t != nil && seq >= t.first && seq < t.next() {
		return t.events[seq-t.first]
	}
	return nil
}
