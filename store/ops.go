package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/hashicorp/raft"
)

// propose sends one command through the batcher and returns its result.
func (s *Store) propose(ctx context.Context, cmd fsm.Command) (outcome, error) {
	if s.raft.State() != raft.Leader {
		return outcome{}, ErrNotLeader
	}
	if err := s.gate(&cmd); err != nil {
		return outcome{}, err
	}
	prio, size := fsm.PriorityCritical, 64
	if cmd.Kind == fsm.CmdAction {
		prio = cmd.Action.Priority
		size = 32
		for i := range cmd.Action.Ops {
			o := &cmd.Action.Ops[i]
			size += 16 + len(o.Entity) + len(o.Field) + len(o.Value.Str)
		}
	}
	if cmd.Import != nil { // CmdImportWorld: a world's whole state
		size += len(cmd.Import.Data)
	}
	for i := range cmd.Acks { // CmdSessionAcks: its size counts toward the entry's
		size += 12 + len(cmd.Acks[i].World) + len(cmd.Acks[i].ID)
	}
	return s.batcher.submit(ctx, cmd, prio, size)
}

// Act checks an action against the current rules, proposes it and returns
// its committed event. A duplicate returns the original event (from the feed
// when it still holds it). Errors: fsm errors for bad input and for
// seq_reused/seq_expired/unknown world, ErrNotLeader when nothing was
// proposed, ErrOutcomeUnknown when the action may or may not commit.
func (s *Store) Act(ctx context.Context, a *fsm.Action) (*fsm.Event, bool, error) {
	if !s.ready.Load() {
		// Not leader, or a new leader before its barrier: its state may
		// lack worlds and fields created just before the election, so a
		// pre-check here could refuse for good what is merely not applied
		// yet.
		return nil, false, ErrNotLeader
	}
	if err := s.fsm.Check(a); err != nil {
		return nil, false, err
	}
	if err := s.salt(ctx, a); err != nil {
		return nil, false, err
	}
	// The label now: after the commit, a is cold (at 10,000 writers a
	// caller waits while thousands of others run).
	prio, name := a.Priority, a.Name
	start := time.Now()
	o, err := s.propose(ctx, fsm.Command{Kind: fsm.CmdAction, Action: a})
	if err != nil {
		s.metrics.actions.WithLabelValues(outcomeLabel(err)).Inc()
		return nil, false, err
	}
	s.metrics.latency(prio).Observe(time.Since(start).Seconds())
	if o.res.Err != nil {
		s.metrics.actions.WithLabelValues(fsm.Code(o.res.Err)).Inc()
		return nil, false, o.res.Err
	}
	ev := o.res.Event
	if o.res.Duplicate {
		s.metrics.actions.WithLabelValues("duplicate").Inc()
		if orig := s.feed.event(a.World, ev.Seq); orig != nil {
			ev = orig
		}
		return ev, true, nil
	}
	s.metrics.outcome(ev.Status).Inc()
	if ev.Status == fsm.StatusRejected {
		s.metrics.rejections.count(name, ev.Reason)
	}
	return ev, false, nil
}

func outcomeLabel(err error) string {
	switch {
	case errors.Is(err, ErrNotLeader):
		return "not_leader"
	case errors.Is(err, ErrOverloaded):
		return "overloaded"
	}
	return "unknown"
}

// CreateWorld creates a world with rules; fsm.ErrWorldExists if taken.
func (s *Store) CreateWorld(ctx context.Context, id string, rules fsm.Rules) error {
	spec := &fsm.WorldSpec{ID: id, Origin: s.cfg.Region, Rules: rules}
	if err := rules.Validate(); err != nil {
		return err
	}
	if _, err := s.fsm.World(id); err == nil {
		return fmt.Errorf("%w: %s", fsm.ErrWorldExists, id)
	}
	o, err := s.propose(ctx, fsm.Command{Kind: fsm.CmdCreateWorld, World: spec})
	if err != nil {
		return err
	}
	return o.res.Err
}

// Consistency selects how a read relates to writes.
type Consistency int

// The read consistency levels.
const (
	// Linearizable reads see every write acknowledged before the read
	// started; only the leader serves them.
	Linearizable Consistency = iota
	// Stale reads are served by any replica from its applied state.
	Stale
)

// ParseConsistency parses "linearizable" (default) or "stale".
func ParseConsistency(s string) (Consistency, error) {
	switch s {
	case "", "linearizable":
		return Linearizable, nil
	case "stale":
		return Stale, nil
	}
	return 0, fmt.Errorf("%w: consistency must be linearizable or stale, got %q", fsm.ErrMalformed, s)
}

// ReadBarrier makes the next local read linearizable: it records the commit
// index, confirms leadership with a quorum, and waits until this node's FSM
// has applied up to that index.
func (s *Store) ReadBarrier(ctx context.Context) error {
	if BrokenLinearizableReads {
		return nil // jepsen_broken builds only: see jepsen_broken.go
	}
	if !s.LeaderReady() {
		return ErrNotLeader
	}
	ci := s.raft.CommitIndex()
	if err := s.raft.VerifyLeader().Error(); err != nil {
		return ErrNotLeader
	}
	target, err := s.lastAppliable(ci)
	if err != nil {
		return err
	}
	ch := s.adapter.waitCh(target)
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		s.adapter.cancelWait(ch)
		return ctx.Err()
	}
}

// lastAppliable returns the newest index <= ci of an entry that reaches the
// FSM. Raft never hands no-op and barrier entries to the FSM, so waiting for
// the FSM to reach a commit index that ends in one (right after an election)
// would wait for the next write.
func (s *Store) lastAppliable(ci uint64) (uint64, error) {
	applied := s.adapter.appliedIndex()
	var l raft.Log
	for idx := ci; idx > applied; idx-- {
		if err := s.logStore.GetLog(idx, &l); err != nil {
			return 0, fmt.Errorf("read barrier: log %d: %w", idx, err)
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			return idx, nil
		}
	}
	return applied, nil
}

// appliedThrough returns the index through which this node has applied
// its log: the FSM's applied index, or past it raft's, when every entry in
// between is one raft never hands to the FSM (a no-op, a leader barrier, a
// trailing commit notice: notice.go). Otherwise a quiet group's applied
// index would stay one short of its commit index.
func (s *Store) appliedThrough() uint64 {
	applied, through := s.adapter.appliedIndex(), s.raft.AppliedIndex()
	if through <= applied {
		return applied
	}
	if last, err := s.lastAppliable(through); err != nil || last > applied {
		return applied // an entry the FSM is still applying, or an unreadable log
	}
	return through
}

// Entity reads one entity at the given consistency.
func (s *Store) Entity(ctx context.Context, world, id string, c Consistency) (fsm.EntityView, error) {
	if c == Linearizable {
		if err := s.ReadBarrier(ctx); err != nil {
			return fsm.EntityView{}, err
		}
	}
	return s.fsm.Entity(world, id)
}

// Worlds lists the worlds this node knows (stale).
func (s *Store) Worlds() []fsm.WorldInfo { return s.fsm.Worlds() }

// Entities returns a world's entities in this node's applied state and the
// seq they reflect (stale: a spectator's seed).
func (s *Store) Entities(world string) ([]fsm.EntityView, uint64, error) {
	return s.fsm.Entities(world)
}

// Hash returns this node's state hash of a world now (seq 0) or at seq.
func (s *Store) Hash(world string, seq uint64) (fsm.HashPoint, error) {
	return s.fsm.Hash(world, seq)
}

// Subscribe opens a subscription to world's events from seq from
// (inclusive); from 0 means only events after the current one.
func (s *Store) Subscribe(world string, from uint64) (*Subscription, error) {
	// The world's deletes before its state: a delete applied between the
	// two ends the subscription (Next), never feeds it the next
	// incarnation's events.
	s.feed.mu.Lock()
	gen := s.feed.gens[world]
	s.feed.mu.Unlock()
	w, err := s.fsm.World(world)
	if err != nil {
		return nil, err
	}
	if from == 0 {
		from = w.Seq + 1
	}
	sub := &Subscription{f: s.feed, world: world, next: from, gen: gen}
	s.feed.mu.Lock()
	t := s.feed.tailLocked(world, 1)
	inTail := from >= t.first
	s.feed.mu.Unlock()
	if !inTail {
		ev, err := s.arch.get(world, from)
		if err != nil {
			return nil, err
		}
		if ev == nil && w.Imported > 0 {
			// A seq from before the world moved here: the node copies
			// those from the old home (shard.CopyMovedArchives).
			return nil, fmt.Errorf("%w: world %s seq %d (the world moved to this group; events from before its move are copied here from its old home shortly: retry)", ErrArchiveGap, world, from)
		}
		if ev == nil {
			return nil, fmt.Errorf("%w: world %s seq %d", ErrArchiveGap, world, from)
		}
	}
	return sub, nil
}

// Event returns one committed event if this node holds it.
func (s *Store) Event(world string, seq uint64) (*fsm.Event, bool) {
	ev := s.feed.event(world, seq)
	return ev, ev != nil
}

// Status is a node's view of its group (wire.Status: GET /v1/status
// answers it as it is).
type Status = wire.Status

// Server is one member of the Raft configuration.
type Server = wire.Server

// Status returns the node's view of its group.
func (s *Store) Status() Status {
	lid, lhttp := s.Leader()
	st := Status{
		ID: s.cfg.ID, State: stateName(s.raft.State()), Leader: lid, LeaderHTTP: lhttp,
		Term: s.raft.CurrentTerm(), AppliedIndex: s.appliedThrough(),
		CommitIndex: s.raft.CommitIndex(), LastIndex: s.raft.LastIndex(), Region: s.cfg.Region,
		Nodes: s.fsm.Nodes(), Versions: s.Versions(), LastMismatch: s.lastMismatch(),
	}
	if f := s.raft.GetConfiguration(); f.Error() == nil {
		for _, srv := range f.Configuration().Servers {
			st.Servers = append(st.Servers, Server{ID: string(srv.ID), Address: string(srv.Address), Suffrage: srv.Suffrage.String()})
		}
	}
	return st
}

func stateName(s raft.RaftState) string {
	switch s {
	case raft.Leader:
		return "leader"
	case raft.Candidate:
		return "candidate"
	case raft.Shutdown:
		return "shutdown"
	}
	return "follower"
}

// Join adds a voter (leader only). Its addresses go into the node table
// first, so that every member can reach it and forward to it. The versions
// it reports (n.Versions; zero: none) feed the version gate (versions.go);
// a member joining again with the same addresses only reports them. A
// new node whose versions (zero: the baseline) do not cover the group's
// floor is refused with ErrVersionGate before anything is written
// (versions.go).
func (s *Store) Join(ctx context.Context, n fsm.NodeInfo) error {
	if n.ID == "" || n.RaftAddr == "" {
		return fmt.Errorf("%w: join needs id and raft_addr", fsm.ErrMalformed)
	}
	servers, err := s.members()
	if err != nil {
		return err
	}
	for _, srv := range servers {
		if srv.ID == raft.ServerID(n.ID) && srv.Address == raft.ServerAddress(n.RaftAddr) {
			cur, ok := s.fsm.Node(n.ID)
			if ok && sameAddrs(cur, n) {
				return s.report(ctx, n.ID, n.Versions) // already a member with these addresses
			}
		}
	}
	if err := s.admit(servers, n.ID, n.RaftAddr, n.Versions); err != nil {
		return err // before anything is written: the table and configuration stay
	}
	return s.addMember(ctx, n)
}

// addMember writes n into the node table, adds it as a voter and records
// its report. Join has checked it against the floor.
func (s *Store) addMember(ctx context.Context, n fsm.NodeInfo) error {
	if _, err := s.propose(ctx, fsm.Command{Kind: fsm.CmdPutNode, Node: &n}); err != nil {
		return err
	}
	if err := s.raft.AddVoter(raft.ServerID(n.ID), raft.ServerAddress(n.RaftAddr), 0, s.timeout(ctx)).Error(); err != nil {
		return raftError(err)
	}
	s.log.Info("node joined", "id", n.ID, "raft", n.RaftAddr, "http", n.HTTPAddr, "versions", n.Versions)
	return s.report(ctx, n.ID, n.Versions)
}

// Remove removes a member (leader only).
func (s *Store) Remove(ctx context.Context, id string) error {
	if s.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	if err := s.raft.RemoveServer(raft.ServerID(id), 0, s.timeout(ctx)).Error(); err != nil {
		return raftError(err)
	}
	s.reportMu.Lock()
	delete(s.reported, id)
	s.reportMu.Unlock()
	if _, err := s.propose(ctx, fsm.Command{Kind: fsm.CmdRemoveNode, Node: &fsm.NodeInfo{ID: id}}); err != nil && !errors.Is(err, ErrNotLeader) {
		return err
	}
	return nil
}

// TransferLeadership hands leadership to another voter (leader only).
func (s *Store) TransferLeadership(ctx context.Context) error {
	if s.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	return raftError(s.raft.LeadershipTransfer().Error())
}

// Snapshot forces a snapshot now and returns its index.
func (s *Store) Snapshot(ctx context.Context) (uint64, error) {
	f := s.raft.Snapshot()
	if err := f.Error(); errors.Is(err, raft.ErrNothingNewToSnapshot) {
		// The newest snapshot already covers the log: report it.
		return strconv.ParseUint(s.raft.Stats()["last_snapshot_index"], 10, 64)
	} else if err != nil {
		return 0, fmt.Errorf("snapshot: %w", err)
	}
	m, rc, err := f.Open()
	if err != nil {
		return 0, fmt.Errorf("snapshot: %w", err)
	}
	rc.Close()
	return m.Index, nil
}

func (s *Store) timeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return time.Until(d)
	}
	return s.cfg.ApplyTimeout
}

func raftError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
		return ErrNotLeader
	}
	return err
}
