package fsm

import "fmt"

// Divergence events (issue 12). A checkpoint mismatch is seen by the odd
// replica alone (or by the majority, against a lying leader), so it cannot
// become an event by itself: each replica's comparison is its own and
// never state (checkpoint.go). The leader, once it has accepted a report,
// proposes CmdDivergence (log version 9), "replica Node diverged from the
// majority at the checkpoint of log index Index", and every replica applies
// it alike: the world's seq advances by one and the event carries a
// Notice of kind NoticeCheckpointMismatch, with node ids and indexes only,
// no state, no player and no changes. Nothing else changes, so the state
// hashes of the honest replicas stay equal (the odd replica's stays odd
// until it is healed). A fenced world takes no notice (its feed ended at
// the fence), an unknown world is refused.

// NoticeCheckpointMismatch is the kind of a divergence's notice.
const NoticeCheckpointMismatch = "checkpoint_mismatch"

// Divergence is the payload of CmdDivergence.
type Divergence struct {
	World  string
	Node   string // the replica that diverged
	Index  uint64 // the log index of the checkpointed hash it differed at
	Leader string // the leader whose checkpoint it was
}

// Validate checks the payload's shape; it does not look at state.
func (c *Divergence) Validate() error {
	for _, f := range []struct{ what, v string }{{"world", c.World}, {"node", c.Node}, {"leader", c.Leader}} {
		if err := checkName(f.what, f.v); err != nil {
			return err
		}
	}
	if c.Index == 0 {
		return fmt.Errorf("%w: a divergence names the positive log index of a checkpoint", ErrMalformed)
	}
	return nil
}

// Notice is a system event's record: what the cluster noticed about a
// world (no player acted; Event.Player is empty).
type Notice struct {
	Kind   string // NoticeCheckpointMismatch, NoticeRules
	Node   string
	Index  uint64
	Leader string
	// RulesVersion is, for NoticeRules, the world's rules version from
	// this event on.
	RulesVersion uint64
}

// applyDivergence records c as the world's next event, at log index index
// and leader time now.
func (f *FSM) applyDivergence(index uint64, now int64, c *Divergence) Result {
	if err := c.Validate(); err != nil {
		return Result{Err: err}
	}
	w, err := f.writable(c.World)
	if err != nil {
		return Result{Err: err}
	}
	w.seq++
	w.index = index
	now = max(now, w.clock)
	w.clock = now
	ev := &Event{World: c.World, Seq: w.seq, Index: index, Time: now, Status: StatusApplied,
		Notice: &Notice{Kind: NoticeCheckpointMismatch, Node: c.Node, Index: c.Index, Leader: c.Leader}}
	w.recordHash(f.cfg.HashHistory)
	return Result{Event: ev}
}

func (e *encoder) divergence(c *Divergence) {
	e.str(c.World)
	e.str(c.Node)
	e.uvarint(c.Index)
	e.str(c.Leader)
}

func (d *decoder) divergence() *Divergence {
	return &Divergence{World: d.str(), Node: d.str(), Index: d.uvarint(), Leader: d.str()}
}

// notice appends an event's notice to the archive encoding: a flag byte,
// then its fields; events without one end before it. Flag 2 (log 12's
// rules notice) adds the rules version; a notice without one keeps flag
// 1 and its bytes.
func (e *encoder) notice(n *Notice) {
	flag := byte(1)
	if n.RulesVersion != 0 {
		flag = 2
	}
	e.byte(flag)
	e.str(n.Kind)
	e.str(n.Node)
	e.uvarint(n.Index)
	e.str(n.Leader)
	if flag == 2 {
		e.uvarint(n.RulesVersion)
	}
}

func (d *decoder) notice() *Notice {
	flag := d.byte()
	if flag != 1 && flag != 2 {
		d.fail("unknown event notice flag")
		return nil
	}
	n := &Notice{Kind: d.str(), Node: d.str(), Index: d.uvarint(), Leader: d.str()}
	if flag == 2 {
		n.RulesVersion = d.uvarint()
	}
	return n
}
