package store

import (
	"io"
	"sync"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/hashicorp/raft"
)

// fsmAdapter is the three-method raft.FSM over fsm.FSM. It publishes each
// entry's events to the feed and tracks the index the FSM has finished
// applying, which linearizable reads wait for.
type fsmAdapter struct {
	fsm  *fsm.FSM
	feed *feed

	mu      sync.Mutex
	applied uint64
	waiters map[chan struct{}]uint64
	servers map[raft.ServerID]raft.ServerAddress // latest configuration seen
	deleted deletions                            // incarnations deleted while not fenced

	// onCheckpoint, when set, gets every applied checkpoint's comparison.
	onCheckpoint func(*fsm.CheckpointResult)

	// events is ApplyBatch's list of the events to publish, reused (raft
	// applies on one goroutine; publish copies the list).
	events []*fsm.Event
}

// maxEventsReuse bounds the list of events ApplyBatch keeps for the next
// call (a replay's batches are not kept).
const maxEventsReuse = 1 << 16

var (
	_ raft.FSM         = (*fsmAdapter)(nil)
	_ raft.BatchingFSM = (*fsmAdapter)(nil)
)

func newFSMAdapter(f *fsm.FSM, fd *feed) *fsmAdapter {
	return &fsmAdapter{fsm: f, feed: fd, waiters: make(map[chan struct{}]uint64)}
}

// Apply applies one committed log entry. Its response is []fsm.Result.
func (a *fsmAdapter) Apply(l *raft.Log) any {
	return a.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies several committed entries at once. Their events go to
// the feed in one publish, and linearizable readers are released once, at
// the last index: per entry this would take the feed's lock and wake its
// writer and subscribers as many times (raft hands over up to
// MaxAppendEntries entries).
func (a *fsmAdapter) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	events := a.events[:0]
	published := uint64(0) // the feed has every event of entries up to it
	for i, l := range logs {
		var res []fsm.Result
		if l.Type == raft.LogConfiguration {
			a.storeConfiguration(raft.DecodeConfiguration(l.Data))
		}
		if l.Type == raft.LogCommand {
			res = a.fsm.Apply(l.Index, l.Data)
			if cap(events) == 0 {
				events = make([]*fsm.Event, 0, len(res)*(len(logs)-i))
			}
			for j := range res {
				r := &res[j]
				if r.Event != nil && !r.Duplicate {
					events = append(events, r.Event)
				}
				if r.Checkpoint != nil && a.onCheckpoint != nil {
					a.onCheckpoint(r.Checkpoint)
				}
				if r.Fence != nil {
					a.feed.fence(*r.Fence)
				}
				if r.Imported != nil {
					a.feed.adopt(r.Imported.ID, r.Imported.Seq+1)
				}
				if r.Imported != nil {
					a.feed.imported(*r.Imported)
				}
				if r.Deleted != nil {
					// The deleted incarnation's events go to the feed
					// first, then the feed drops them all; a re-created
					// world's events follow.
					published = max(published, l.Index-1)
					a.feed.publish(published, events)
					clear(events)
					events = events[:0]
					a.feed.drop(r.Deleted.ID)
					if r.Deleted.Moved == nil { // a fenced world's drop is no deletion: it lives on at its new home
						a.mu.Lock()
						a.deleted.add(r.Deleted.ID, r.Deleted.Incarnation)
						a.mu.Unlock()
					}
				}
			}
		}
		out[i] = res
	}
	if len(logs) > 0 {
		last := logs[len(logs)-1].Index
		a.feed.publish(last, events)
		a.setApplied(last)
	}
	clear(events) // the feed has them: hold none
	if cap(events) <= maxEventsReuse {
		a.events = events[:0]
	} else {
		// events outgrew the kept array, which appends filled to its
		// capacity first: let it go, and the events it still points to.
		clear(a.events[:cap(a.events)])
		a.events = nil
	}
	return out
}

func (a *fsmAdapter) setApplied(index uint64) {
	a.mu.Lock()
	a.applied = index
	for ch, want := range a.waiters {
		if index >= want {
			close(ch)
			delete(a.waiters, ch)
		}
	}
	a.mu.Unlock()
}

// storeConfiguration remembers the members' addresses, so the address
// provider can answer for peers that are not in the node table yet.
func (a *fsmAdapter) storeConfiguration(c raft.Configuration) {
	m := make(map[raft.ServerID]raft.ServerAddress, len(c.Servers))
	for _, srv := range c.Servers {
		m[srv.ID] = srv.Address
	}
	a.mu.Lock()
	a.servers = m
	a.mu.Unlock()
}

func (a *fsmAdapter) serverAddr(id raft.ServerID) (raft.ServerAddress, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	addr, ok := a.servers[id]
	return addr, ok
}

// alone reports whether the latest configuration seen has one member (or
// none yet): nobody else follows this node's log.
func (a *fsmAdapter) alone() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.servers) <= 1
}

// appliedIndex returns the index of the last entry applied to the FSM.
func (a *fsmAdapter) appliedIndex() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.applied
}

// waitCh returns a channel closed once index is applied.
func (a *fsmAdapter) waitCh(index uint64) chan struct{} {
	ch := make(chan struct{})
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.applied >= index {
		close(ch)
		return ch
	}
	a.waiters[ch] = index
	return ch
}

func (a *fsmAdapter) cancelWait(ch chan struct{}) {
	a.mu.Lock()
	delete(a.waiters, ch)
	a.mu.Unlock()
}

// Snapshot captures a copy-on-write view; Persist does the I/O.
func (a *fsmAdapter) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{snap: a.fsm.Snapshot(), feed: a.feed}, nil
}

// Restore replaces the FSM's state and restarts the feed's tails after it.
// Subscriptions to worlds the restored state lacks, or holds in another
// incarnation (a delete this node missed), end as a delete ends them.
func (a *fsmAdapter) Restore(r io.ReadCloser) error {
	defer r.Close()
	before := a.fsm.Worlds()
	if err := a.fsm.Restore(r); err != nil {
		return err
	}
	after := a.fsm.Worlds()
	incs := make(map[string]uint64, len(after))
	for _, w := range after {
		incs[w.ID] = w.Incarnation
	}
	var gone []string
	for _, w := range before {
		if inc, ok := incs[w.ID]; !ok || inc != w.Incarnation {
			gone = append(gone, w.ID)
		}
	}
	a.feed.reset(after, a.fsm.AppliedIndex(), gone...)
	a.setApplied(a.fsm.AppliedIndex())
	return nil
}

type fsmSnapshot struct {
	snap *fsm.Snapshot
	feed *feed
}

// Persist writes the snapshot once every event it covers is durable in the
// archive: after this snapshot Raft may drop those entries from its log.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.feed.waitArchived(s.snap.AppliedIndex()); err != nil {
		sink.Cancel()
		return err
	}
	if _, err := s.snap.WriteTo(sink); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
