package fsm

import "fmt"

// Hash checkpoints. Every replica validates the same log, so replicas that
// apply it alike hold equal state hashes; one that does not (a leader
// built to skip a rule, a disk that flipped a value) must be found.
//
// A hash is compared at a point every replica reaches alike: the log index
// of a checkpoint. Applying a CmdCheckpoint at index J, a replica notes its
// world's state hash at J (a mark), in memory beside the state, not in it.
// The leader's next checkpoint for the world carries the leader's own mark
// (index J, hash); each replica compares it with its own mark at J. So the
// leader proposes regularly, and a divergence made before J is named by the
// checkpoint after J: within one checkpoint interval of the first mark that
// follows it. Hashes taken "now" at proposal time would not do: entries
// committed between the proposal and its apply change them on every replica.
//
// The comparison's outcome differs from replica to replica by design, so
// it is never state: applying a checkpoint changes nothing in the snapshot
// or the state hash, and what a replica does about a mismatch (a metric, a
// log line, a report) hangs off Result.Checkpoint, outside Apply.
//
// Naming the odd replica: every replica compares itself with the leader.
// If some followers mismatch, they are the odd ones; if a majority of the
// voters mismatch, the leader is.

// marksKept is how many recent marks per world a replica keeps: the
// leader's next checkpoint carries its latest, so a few cover a checkpoint
// proposed by a leader that had not applied the newest mark yet.
const marksKept = 4

// Checkpoint is the payload of CmdCheckpoint (log version 5).
type Checkpoint struct {
	World string
	// Index is the log index of an earlier checkpoint of World, and Hash
	// the proposer's state hash of the world at it; Index 0 carries no
	// hash (the world's first checkpoint only sets a mark).
	Index  uint64
	Hash   uint64
	Leader string // the proposing node's id
}

// Validate checks the payload's shape; it does not look at state.
func (c *Checkpoint) Validate() error {
	if err := checkName("world", c.World); err != nil {
		return err
	}
	return checkName("leader", c.Leader)
}

// CheckpointResult is one replica's comparison of a checkpoint with its
// own mark at the checkpoint's Index: Local is its hash there, when Known
// (a replica that joined or restarted after that index has no mark and
// compares nothing).
type CheckpointResult struct {
	Checkpoint
	Local uint64
	Known bool
}

// Mismatch reports whether this replica's hash at the index differs from
// the proposer's.
func (r *CheckpointResult) Mismatch() bool { return r.Known && r.Local != r.Hash }

// mark is a replica's state hash of a world at a checkpoint's index.
type mark struct{ index, hash uint64 }

// CheckpointOf returns the checkpoint this replica proposes next for a
// world: its latest mark, or, before it has one, a bare checkpoint that
// only sets one. ok is false for an unknown world. Current reports whether
// the world's state hash now equals the mark's: an idle world needs no new
// checkpoint once its latest mark has been carried.
func (f *FSM) CheckpointOf(world, leader string) (c Checkpoint, current, ok bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	w := f.worlds[world]
	if w == nil {
		return Checkpoint{}, false, false
	}
	c = Checkpoint{World: world, Leader: leader}
	if m := f.marks[world]; len(m) > 0 {
		last := m[len(m)-1]
		c.Index, c.Hash = last.index, last.hash
		current = last.hash == w.stateHash()
	}
	return c, current, true
}

// MarkOf returns this replica's hash of a world at the checkpoint of log
// index index, when it holds that mark (one of the latest few): what a
// leader asks the other voters before it heals a replica, so that it
// heals only when a majority shares its own hash.
func (f *FSM) MarkOf(world string, index uint64) (uint64, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, m := range f.marks[world] {
		if m.index == index {
			return m.hash, true
		}
	}
	return 0, false
}

// applyCheckpoint compares c with this replica's mark at c.Index and sets
// a mark at index. It mutates no state.
func (f *FSM) applyCheckpoint(index uint64, c *Checkpoint) Result {
	if err := c.Validate(); err != nil {
		return Result{Err: err}
	}
	w := f.worlds[c.World]
	if w == nil {
		return Result{Err: fmt.Errorf("%w: %s", ErrUnknownWorld, c.World)}
	}
	r := &CheckpointResult{Checkpoint: *c}
	marks := f.marks[c.World]
	for _, m := range marks {
		if c.Index != 0 && m.index == c.Index {
			r.Local, r.Known = m.hash, true
		}
	}
	if len(marks) == marksKept {
		marks = append(marks[:0], marks[1:]...)
	}
	f.marks[c.World] = append(marks, mark{index: index, hash: w.stateHash()})
	return Result{Checkpoint: r}
}

func (e *encoder) checkpoint(c *Checkpoint) {
	e.str(c.World)
	e.uvarint(c.Index)
	e.uvarint(c.Hash)
	e.str(c.Leader)
}

func (d *decoder) checkpoint() *Checkpoint {
	return &Checkpoint{World: d.str(), Index: d.uvarint(), Hash: d.uvarint(), Leader: d.str()}
}
