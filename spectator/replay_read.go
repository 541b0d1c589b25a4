package spectator

import (
	"context"
	"errors"

	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/fsm"
)

// readAhead reads and decodes a replay's feed in a goroutine of its own
// while the replay applies what was read before: × real time is wall
// time, and reading an archive (its pages and decoding) costs about as
// much as applying it, so on two cores the two overlap.
//
// The goroutine never waits: it reads what the feed holds now until the
// feed holds nothing more, a read fails, or readAheadBatches batches wait
// to be taken, and then ends, so a replay that is dropped leaves nothing
// running and needs no Close. One that ended full has a successor (next)
// started when the replay takes a batch of it, reading on while the
// replay applies the rest: started only once the replay had taken all,
// the successor's first read came while the replay waited for it, one
// batch in six read without overlap when applying is the slower side (a
// battle's replay).
type readAhead struct {
	out  chan readBatch
	done chan struct{}
	last readBatch // read when out was full; set before done closes
	full bool      // it ended with out full and events in last; set before done closes
	next *readAhead
}

// readBatch is one read: events, or none (the feed held nothing more
// then, or err).
type readBatch struct {
	evs []*fsm.Event
	err error
}

// readAheadBatches bounds the batches read but not taken (a store's
// subscription reads up to 256 events per batch).
const readAheadBatches = 4

func startReadAhead(sub fanout.Subscription) *readAhead {
	ra := &readAhead{out: make(chan readBatch, readAheadBatches), done: make(chan struct{})}
	go ra.loop(sub)
	return ra
}

func (ra *readAhead) loop(sub fanout.Subscription) {
	defer close(ra.done)
	for {
		b := readHeld(sub)
		select {
		case ra.out <- b:
		default:
			ra.last = b // full: the replay takes it after out's
			ra.full = len(b.evs) > 0 && b.err == nil
			return
		}
		if len(b.evs) == 0 {
			return
		}
	}
}

// readHeld reads what sub holds now, without waiting for new events.
func readHeld(sub fanout.Subscription) readBatch {
	now, cancel := context.WithCancel(context.Background())
	cancel() // what is held comes at once; an empty feed answers at once
	evs, err := sub.Next(now)
	if errors.Is(err, context.Canceled) {
		return readBatch{} // nothing more held
	}
	return readBatch{evs: evs, err: err}
}

// chain starts ra's successor on sub if ra ended full and has none: it
// reads on from where ra stopped (ra reads no more), and its batches come
// after all of ra's.
func (ra *readAhead) chain(sub fanout.Subscription) {
	if ra.next != nil {
		return
	}
	select {
	case <-ra.done:
		if ra.full {
			ra.next = startReadAhead(sub)
		}
	default:
	}
}

// take returns the next batch the goroutine read, in order, and whether
// there was one: false when it ended having given all it read. It waits
// for the goroutine's next read unless ctx ends.
func (ra *readAhead) take(ctx context.Context) (readBatch, bool, error) {
	select {
	case b := <-ra.out: // what was read ahead, even when ctx has ended
		return b, true, nil
	default:
	}
	select {
	case b := <-ra.out:
		return b, true, nil
	case <-ra.done:
	case <-ctx.Done():
		return readBatch{}, false, ctx.Err()
	}
	select { // done: out's batches come before last
	case b := <-ra.out:
		return b, true, nil
	default:
	}
	b := ra.last
	ra.last = readBatch{}
	return b, b.evs != nil || b.err != nil, nil
}
