package store

import (
	"runtime"
	"time"

	"github.com/hashicorp/raft"
)

// Commit notices: a follower learns the leader's commit index only from the
// next AppendEntries. Under load the next batch carries it; after the last
// batch of a burst hashicorp/raft sends an empty append only every
// CommitTimeout (randomised, CommitTimeout..2×), so the players connected
// to a follower would get a lone action's event that much later. So when a
// batch commits and nothing else is queued or in flight, the leader
// proposes one raft barrier: raft replicates a new entry at once, and that
// append carries the commit index. Followers store the barrier but never
// hand it to the FSM (raft sends only command and configuration entries to
// it), and nothing in gsd waits for a notice's own index: ReadBarrier skips
// barrier entries (lastAppliable).
//
// At most one notice is outstanding, and one more may be asked for while it
// is: that one goes out once the first is answered, after the commit that
// asked for it. A notice is skipped when a batch is in flight by then: that
// batch's append carries the commit index, and its own commit asks again.

// askNotice asks for a commit notice after a batch committed, when nothing
// is queued or in flight and the group has members to tell. It never
// blocks (called by the waiter).
func (b *batcher) askNotice() {
	if len(b.sem) > 0 || len(b.critical) > 0 || len(b.bulk) > 0 || b.alone == nil || b.alone() {
		return
	}
	select {
	case b.notice <- struct{}{}:
	default: // one is asked for already
	}
}

// yieldToCallers lets the callers that the waiter just answered run
// before a notice is decided: a closed loop of writers queues its next
// actions at once, and the entry those make carries the commit index. A
// notice that goes first is a log entry (a write on every replica) for
// nothing: before this yield the shard suite made one notice per 1.8
// entries with 64 writers on one group. As free does, it yields again
// while callers keep queueing, at most maxYields times.
func (b *batcher) yieldToCallers() {
	for range maxYields {
		queued := b.submitted.Load()
		runtime.Gosched()
		if b.submitted.Load() == queued {
			return
		}
	}
}

// notices proposes the commit notices askNotice asks for, one at a time.
func (b *batcher) notices() {
	defer b.wg.Done()
	for {
		select {
		case <-b.stop:
			return
		case <-b.notice:
		}
		b.yieldToCallers()
		// A batch in flight, or one about to be proposed from the lanes,
		// carries the commit index; a node that is no longer leader has no
		// commit to tell (and raft answers a barrier proposed after its
		// shutdown only by chance).
		if len(b.sem) > 0 || len(b.critical) > 0 || len(b.bulk) > 0 || b.raft.State() != raft.Leader {
			continue
		}
		f := b.raft.Barrier(b.timeout)
		b.metrics.commitNotices.Inc()
		done := make(chan struct{})
		b.noticeWaits.Add(1)
		go func() {
			// The error needs no handling: a notice that fails (leadership
			// lost, shut down) had nothing left to tell, and a new leader
			// tells its own commits.
			_ = f.Error()
			b.noticeWaits.Add(-1)
			close(done)
		}()
		select {
		case <-done:
		case <-b.stop:
			b.awaitNotice(done)
			return
		}
	}
}

// awaitNotice waits, while the batcher closes, for the answer to the
// notice in flight. Raft still runs then (Store.Close stops it after the
// batcher) and answers it, at the latest by losing leadership; but a
// barrier that Raft took into its buffered apply channel and had not read
// when it shut down is never answered in v1.7.3, so returning at once
// would leave the notice's goroutine waiting forever once Close shuts
// Raft down. A Raft shut down already (by anything but Close, which stops
// the batcher first) answers nothing more: the wait ends there.
func (b *batcher) awaitNotice(done <-chan struct{}) {
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case <-done:
			return
		case <-poll.C:
			if b.raft.State() == raft.Shutdown {
				return
			}
		}
	}
}
