package meta

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/gsd-dev/gsd/shard"
	"github.com/hashicorp/raft"
)

// snapshotVersion is the first byte of a snapshot; the rest is the State
// as JSON.
const snapshotVersion byte = 1

// maxSnapshot bounds what Restore reads: the meta state is small, and a
// corrupt length must not exhaust memory.
const maxSnapshot = 256 << 20

// FSM is the meta group's raft.FSM and the node's shard.MapSource. Apply
// and Restore run on raft's FSM goroutine and publish a new shard.View;
// View loads the current one and never blocks.
//
// Apply is deterministic: a command that does not decode, or that the
// state refuses, leaves the state as it was on every replica and answers
// an error (Applied.Err). It never panics: an entry every replica
// decodes alike cannot make replicas diverge.
type FSM struct {
	membership uint64
	state      *State // raft's FSM goroutine only
	view       atomic.Pointer[shard.View]
	repl       atomic.Pointer[map[uint64]Replacement] // replacements under way (replace.go)
	memberSet  atomic.Pointer[members]                // the map's nodes and removed nodes (members.go)

	// applied is the index of the last entry Apply saw; changed is closed
	// (and replaced) whenever Apply or Restore ran, so a proposer can wait
	// for this replica to catch up with an index the leader answered.
	applied atomic.Uint64
	mu      sync.Mutex
	changed chan struct{}

	// beforeApply, when set (tests), runs at the start of every Apply:
	// it can hold this replica's FSM behind its log.
	beforeApply atomic.Pointer[func()]
}

var (
	_ raft.FSM        = (*FSM)(nil)
	_ shard.MapSource = (*FSM)(nil)
)

// Applied is what FSM.Apply returns for each entry.
type Applied struct {
	Result
	Err error
}

// NewFSM returns an empty FSM whose map names membership as the group
// holding the node table (gsd's group 0).
func NewFSM(membership uint64) *FSM {
	f := &FSM{membership: membership, state: NewState(), changed: make(chan struct{})}
	f.publish(true)
	return f
}

// Applied returns the log index of the last entry this replica applied
// (0 before the first; a Restore does not change it: raft's snapshot
// index says what a restored state holds).
func (f *FSM) Applied() uint64 { return f.applied.Load() }

// changes returns a channel closed at the next Apply or Restore.
func (f *FSM) changes() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

// notify records index (0: a Restore) and wakes the waiters of changes.
func (f *FSM) notify(index uint64) {
	if index > f.applied.Load() {
		f.applied.Store(index) // raft's FSM goroutine is the only writer
	}
	f.mu.Lock()
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// View returns the current shard map and leader hints.
func (f *FSM) View() *shard.View { return f.view.Load() }

// publish makes the state visible to View: a new map when the topology
// changed, else the last one with the new hints.
func (f *FSM) publish(topo bool) {
	f.publishReplacing()
	v := &shard.View{Leaders: f.state.leaders(), Players: f.state.players(), Events: f.state.events(), Replicated: true,
		Joining: f.state.joining()}
	if old := f.view.Load(); old != nil && !topo {
		v.Map = old.Map
	} else {
		v.Map = f.state.Map(f.membership)
		f.memberSet.Store(f.state.members())
	}
	f.view.Store(v)
}

// Apply applies one log entry and returns *Applied. Entries that are not
// commands (raft's own configuration changes, barriers) change nothing.
func (f *FSM) Apply(l *raft.Log) any {
	if hook := f.beforeApply.Load(); hook != nil {
		(*hook)()
	}
	defer f.notify(l.Index)
	if l.Type != raft.LogCommand {
		return &Applied{}
	}
	c, err := DecodeCommand(l.Data)
	if err != nil {
		return &Applied{Err: err}
	}
	if isReplace(c.Op) && c.Shard == f.membership {
		// The membership group holds the node table and every node; its
		// members change through join and remove, never a replacement.
		return &Applied{Err: fmt.Errorf("%w: shard %d is the membership group: its members change by join and remove", ErrRefused, c.Shard)}
	}
	res, topo, err := f.state.apply(c, l.Index)
	if err != nil {
		return &Applied{Err: err}
	}
	f.publish(topo)
	return &Applied{Result: res}
}

// Snapshot encodes the state now, on raft's FSM goroutine, so Persist
// only writes bytes.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	b, err := EncodeSnapshot(f.state)
	if err != nil {
		return nil, err
	}
	return snapshot(b), nil
}

// Restore replaces the state with the snapshot's.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxSnapshot+1))
	if err != nil {
		return fmt.Errorf("restore meta snapshot: %w", err)
	}
	if len(b) > maxSnapshot {
		return fmt.Errorf("%w: snapshot larger than %d bytes", ErrBadCommand, maxSnapshot)
	}
	s, err := DecodeSnapshot(b)
	if err != nil {
		return err
	}
	f.state = s
	f.publish(true)
	f.notify(0)
	return nil
}

// EncodeSnapshot returns s's snapshot bytes: the version byte, then JSON.
func EncodeSnapshot(s *State) ([]byte, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode meta snapshot: %w", err)
	}
	return append([]byte{snapshotVersion}, b...), nil
}

// DecodeSnapshot decodes snapshot bytes and checks that the state is
// consistent (voters are nodes, worlds are on shards). Every error wraps
// ErrBadCommand.
func DecodeSnapshot(b []byte) (*State, error) {
	if len(b) == 0 || b[0] != snapshotVersion {
		return nil, fmt.Errorf("%w: snapshot: not version %d", ErrBadCommand, snapshotVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(b[1:]))
	dec.DisallowUnknownFields()
	s := NewState()
	if err := dec.Decode(s); err != nil {
		return nil, fmt.Errorf("%w: snapshot: %w", ErrBadCommand, err)
	}
	for _, m := range []bool{s.Nodes == nil, s.Shards == nil, s.Worlds == nil, s.Leaders == nil, s.Load == nil} {
		if m {
			return nil, fmt.Errorf("%w: snapshot: a table is missing", ErrBadCommand)
		}
	}
	if s.Replacing == nil {
		s.Replacing = map[uint64]Replacement{} // a snapshot from before replacements
	}
	if s.Removed == nil {
		s.Removed = map[string]bool{} // a snapshot from before removals were kept
	}
	if s.Down == nil {
		s.Down = map[string]bool{} // a snapshot from before down marks
	}
	if s.Left == nil {
		s.Left = map[uint64]string{}
	}
	if err := s.checkDown(); err != nil {
		return nil, fmt.Errorf("%w: snapshot: %w", ErrBadCommand, err)
	}
	for id := range s.Removed {
		if _, ok := s.Nodes[id]; ok {
			return nil, fmt.Errorf("%w: snapshot: node %q is listed and removed", ErrBadCommand, id)
		}
	}
	if err := s.checkReplacing(); err != nil {
		return nil, fmt.Errorf("%w: snapshot: %w", ErrBadCommand, err)
	}
	for id, n := range s.Nodes {
		c := Command{Op: OpAddNode, Node: id, Raft: n.Raft, HTTP: n.HTTP, Region: n.Region}
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("snapshot: node %q: %w", id, err)
		}
	}
	if len(s.Shards) > 0 {
		if err := s.Map(0).Validate(); err != nil {
			return nil, fmt.Errorf("%w: snapshot: %w", ErrBadCommand, err)
		}
	} else if len(s.Worlds) > 0 {
		return nil, fmt.Errorf("%w: snapshot: worlds without shards", ErrBadCommand)
	}
	return s, nil
}

// snapshot is an encoded state.
type snapshot []byte

// Persist writes the snapshot.
func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persist meta snapshot: %w", err)
	}
	return sink.Close()
}

// Release does nothing: the bytes are the snapshot's own.
func (snapshot) Release() {}
