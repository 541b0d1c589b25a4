package jepsen

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
)

// World moves under faults (issue 14): a nemesis that moves one of the
// workload's worlds to another shard while a fault hits the move, and
// resumes the move after the fault. It needs a sharded cluster whose map
// is the meta group's (Scenario.Shards > 1, Args metaArgs): the move's
// admin route exists only there.

// metaArgs runs the nodes with the meta group holding the shard map.
var metaArgs = []string{"--meta"}

// Faults a move runs under.
const (
	MoveKillSource      = "kill-source"      // kill -9 the source group's leader right after the fence
	MoveKillTarget      = "kill-target"      // kill -9 the target group's leader right after the fence
	MovePartitionSource = "partition-source" // cut the source group's leader off (Raft) right after the fence
	MovePauseSource     = "pause-source"     // SIGSTOP the source group's leader right after the fence (SIGCONT at the end)
	// MoveKillSourceMidMove kills -9 the source group's leader while a
	// whole move runs (the admin route, from another node): the fence may
	// or may not have committed, so there is no probe and no hash at the
	// fence; the resumed move must complete either way.
	MoveKillSourceMidMove = "kill-source-mid-move"
)

// moveFaults are the faults MoveUnder("rotate") cycles through.
var moveFaults = []string{MoveKillSource, MoveKillTarget, MovePartitionSource, MoveKillSourceMidMove, MovePauseSource}

// worldMove is one move the nemesis made.
type worldMove struct {
	world    string
	from, to uint64
	fence    uint64    // the world's seq at the fence: its last event at the old home
	hash     wire.Hash // the old home's state hash at the fence (read at the source leader)
	hashErr  error
}

// moveNemesis moves w0 and w1 in turn. Start fences the world on its
// group's leader (the export step alone, as a move cut off after its
// fence), starts the fault, checks that a write to the fenced world is
// refused with 421 world_moved (the probe, kept in the history as a
// failed action: CheckEvents reports it if any feed has it), and tries
// to complete the move while the fault runs. Stop heals, then resumes the
// move until it completes (it is resumable: every step is safe to
// repeat) and checks its answer and every live node's map. Without back,
// a world never moves to a shard it has been on, so each world visits
// each shard once and a fault with no shard left for either world moves
// nothing and says so. With back (MoveBackUnder), a world goes back to
// the shard it came from (A -> B -> A -> B ..., the first move back
// being to the shard that created it): the import there replaces the
// copy that shard kept fenced (fsm log 17, shard/DESIGN.md "A move back").
type moveNemesis struct {
	fault string // one of moveFaults, or "rotate"
	back  bool   // move each world back to the shard it came from

	mu      sync.Mutex
	n       int
	home    map[string]uint64
	prev    map[string]uint64 // with back: the shard the world came from
	visited map[string]map[uint64]bool
	shards  []uint64
	cur     *worldMove
	done    bool // cur completed during the fault
	killed  []int
	paused  []int
	probes  []*Op
	moved   []worldMove
	env     *Env // for Wait
}

// MoveUnder returns a nemesis that moves a world under fault (one of
// moveFaults, or "rotate" for each in turn).
func MoveUnder(fault string) func() Nemesis {
	return func() Nemesis { return &moveNemesis{fault: fault} }
}

// MoveBackUnder returns a nemesis that moves a world back and forth
// under fault (one of moveFaults, or "rotate"): w0's first move goes to
// another shard at random, each later one back to the shard it came from.
func MoveBackUnder(fault string) func() Nemesis {
	return func() Nemesis { return &moveNemesis{fault: fault, back: true} }
}

// hasPlay reports whether a play client of the run plays in world
// (play client i is in worlds[i%len(worlds)]).
func (e *Env) hasPlay(world string) bool {
	for i := range e.Play {
		if worlds[i%len(worlds)] == world {
			return true
		}
	}
	return false
}

// Problemf records a problem of the run found by a nemesis.
func (e *Env) Problemf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	e.Log("problem: %s", msg)
	if e.res == nil {
		return
	}
	e.resMu.Lock()
	e.res.Problems = append(e.res.Problems, msg)
	e.resMu.Unlock()
}

// Ops returns the probes: writes to fenced worlds, each refused (a
// failed action) or, if one was not, unknown or acknowledged.
func (m *moveNemesis) Ops() []*Op {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.probes)
}

func (m *moveNemesis) init(ctx context.Context, e *Env) error {
	if m.home != nil {
		return nil
	}
	var sm wire.ShardMap
	err := poll(ctx, 30*time.Second, func() error {
		var err error
		sm, err = e.C.Direct(e.pick(e.live(ctx))).Shards(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("shard map: %w", err)
	}
	if !sm.Meta {
		return errors.New("the shard map is not the meta group's: run with --meta (metaArgs)")
	}
	m.home, m.prev, m.visited = map[string]uint64{}, map[string]uint64{}, map[string]map[uint64]bool{}
	for _, s := range sm.Shards {
		m.shards = append(m.shards, s.ID)
	}
	slices.Sort(m.shards)
	for _, w := range worlds {
		h, ok := sm.Worlds[w]
		if !ok {
			return fmt.Errorf("the shard map does not list %s", w)
		}
		m.home[w], m.visited[w] = h, map[uint64]bool{h: true}
	}
	return nil
}

// next picks the world to move and its target: w0 and w1 in turn, to a
// shard the world has not been on; with back, w0 alone (every fault
// after the first is a move back), to the shard it came from (another
// shard at random on its first move), while w1 stays where it was made.
func (m *moveNemesis) next(e *Env) (string, uint64, bool) {
	if m.back {
		w := worlds[0]
		if p, ok := m.prev[w]; ok {
			return w, p, true
		}
		var other []uint64
		for _, s := range m.shards {
			if s != m.home[w] {
				other = append(other, s)
			}
		}
		if len(other) == 0 {
			return "", 0, false
		}
		return w, other[e.Rng.IntN(len(other))], true
	}
	for k := range worlds {
		w := worlds[(m.n+k)%len(worlds)]
		var free []uint64
		for _, s := range m.shards {
			if !m.visited[w][s] {
				free = append(free, s)
			}
		}
		if len(free) > 0 {
			return w, free[e.Rng.IntN(len(free))], true
		}
	}
	return "", 0, false
}

// settle records a completed move: the world's new home, and the shard it
// came from (a move back's target).
func (m *moveNemesis) settle(mv worldMove) {
	m.home[mv.world], m.prev[mv.world] = mv.to, mv.from
	m.moved = append(m.moved, mv)
}

func (m *moveNemesis) Start(ctx context.Context, e *Env) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.env = e
	if err := m.init(ctx, e); err != nil {
		return "", err
	}
	fault := m.fault
	if fault == "rotate" {
		fault = moveFaults[m.n%len(moveFaults)]
	}
	defer func() { m.n++ }()
	world, to, ok := m.next(e)
	if !ok {
		e.Notef("move: every world has been on every shard; fault %d moves nothing", m.n+1)
		return "no move left", nil
	}
	mv := &worldMove{world: world, from: m.home[world], to: to}
	if fault == MoveKillSourceMidMove {
		return m.killMidMove(ctx, e, mv)
	}

	// The fence (and export) at the source group's leader: a move cut
	// off after its first step.
	var src int
	err := poll(ctx, 20*time.Second, func() error {
		var err error
		if src, err = groupLeader(ctx, e.C, mv.from); err != nil {
			return err
		}
		ex, err := moveStep(ctx, e.C.Nodes[src].HTTP, world, wire.MoveStep{Step: wire.MoveStepExport, To: to})
		if err != nil {
			return err
		}
		mv.fence = ex.Seq
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("fence %s on shard %d: %w", world, mv.from, err)
	}
	hctx, hcancel := context.WithTimeout(ctx, 2*time.Second)
	h, err := e.C.Direct(src).Hash(hctx, world, mv.fence)
	hcancel()
	mv.hash, mv.hashErr = h.Hash, err
	m.cur, m.done = mv, false
	m.visited[world][to] = true // fenced towards to: it can only go there now

	var victim int
	desc := fmt.Sprintf("move %s shard %d -> %d (fenced at seq %d), ", world, mv.from, to, mv.fence)
	switch fault {
	case MoveKillSource, MovePartitionSource, MovePauseSource:
		victim = src
	case MoveKillTarget:
		if victim, err = pollLeader(ctx, e.C, to); err != nil {
			return desc, err
		}
	default:
		return desc, fmt.Errorf("unknown move fault %q", fault)
	}
	switch fault {
	case MovePartitionSource:
		rest := e.others(e.live(ctx), victim)
		partition(e.C, []int{victim}, rest)
		desc += fmt.Sprintf("partition [%s] | [%s] (shard %d's leader)", e.C.Nodes[victim].ID, ids(e.C, rest), mv.from)
	case MovePauseSource:
		if err := e.C.Pause(victim); err != nil {
			return desc, err
		}
		m.paused = []int{victim}
		desc += fmt.Sprintf("SIGSTOP %s (shard %d's leader)", e.C.Nodes[victim].ID, mv.from)
	default:
		if err := e.C.Kill(victim); err != nil {
			return desc, err
		}
		m.killed = []int{victim}
		which := map[string]string{MoveKillSource: "source", MoveKillTarget: "target"}[fault]
		desc += fmt.Sprintf("kill -9 %s (the %s shard %d's leader)", e.C.Nodes[victim].ID, which, map[string]uint64{MoveKillSource: mv.from, MoveKillTarget: to}[fault])
	}
	m.probe(ctx, e, mv, victim)

	// The move, tried once while the fault runs.
	mc := mover(e.C, m.via(e, victim))
	mctx, cancel := context.WithTimeout(ctx, 2500*time.Millisecond)
	got, err := mc.MoveWorld(mctx, world, to)
	cancel()
	mc.Close()
	if err == nil {
		m.done = true
		m.checkMoved(e, mv, got, false)
		desc += "; the move completed during the fault"
	} else {
		desc += fmt.Sprintf("; the move during the fault: %s", client.Code(err))
	}
	return desc, nil
}

// killMidMove starts the whole move through a node other than the source
// group's leader and kills that leader a few milliseconds later, then
// waits (up to 10 s) for the move's answer.
func (m *moveNemesis) killMidMove(ctx context.Context, e *Env, mv *worldMove) (string, error) {
	src, err := pollLeader(ctx, e.C, mv.from)
	if err != nil {
		return "", err
	}
	m.cur, m.done = mv, false
	m.visited[mv.world][mv.to] = true // the fence may commit
	mv.hashErr = errors.New("no hash at the fence: the fault hit the move before its answer")
	type answer struct {
		got wire.WorldMoved
		err error
	}
	done := make(chan answer, 1)
	mc := mover(e.C, m.via(e, src))
	go func() {
		mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		got, err := mc.MoveWorld(mctx, mv.world, mv.to)
		done <- answer{got, err}
	}()
	pause(ctx, time.Duration(e.Rng.IntN(30))*time.Millisecond) // pacing: somewhere in the move
	kerr := e.C.Kill(src)
	a := <-done
	mc.Close()
	desc := fmt.Sprintf("move %s shard %d -> %d, kill -9 %s (the source shard's leader) during it", mv.world, mv.from, mv.to, e.C.Nodes[src].ID)
	if kerr != nil {
		return desc, kerr
	}
	m.killed = []int{src}
	if a.err == nil {
		mv.fence = a.got.Seq
		m.done = true
		m.checkMoved(e, mv, a.got, false)
		return desc + fmt.Sprintf("; the move completed (fenced at seq %d)", mv.fence), nil
	}
	return desc + fmt.Sprintf("; the move: %s", cmp.Or(client.Code(a.err), a.err.Error())), nil
}

// probe writes to the fenced world through a node the fault spares
// (routing by a map that still names the old home) until it gets a
// definite answer: it must be 421 world_moved. The probe goes into the
// history as a failed action when refused, so a feed holding it is a
// phantom; applied, it is a problem here and in the feeds.
func (m *moveNemesis) probe(ctx context.Context, e *Env, mv *worldMove, victim int) {
	player := "probe-" + strconv.Itoa(m.n+1)
	op := &Op{ID: -(m.n + 1), Client: -1, Player: player, Seq: 1, World: mv.world, Kind: "probe", Key: "probe", Value: 1}
	m.probes = append(m.probes, op)
	var last error
	// An attempt whose outcome is unknown (a timeout) may have reached a
	// node that routes the world to its new home and applied there; a
	// later 421 then says nothing of it, so the probe stays unknown.
	maybe := false
	deadline := time.Now().Add(8 * time.Second)
	for try := 0; time.Now().Before(deadline) && ctx.Err() == nil; try++ {
		via := m.via(e, victim)
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := e.C.Direct(via).Act(pctx, mv.world, client.ActionRequest{Player: player, Seq: 1,
			Ops: []wire.Op{client.Set("probe", "v", wire.Int(1))}})
		cancel()
		if err == nil {
			op.Outcome = Ok
			e.Problemf("move %s: a write through %s after the fence at seq %d was applied (want 421 world_moved)", mv.world, e.C.Nodes[via].ID, mv.fence)
			return
		}
		last = err
		if client.Code(err) == client.CodeWorldMoved {
			if client.StatusCode(err) != http.StatusMisdirectedRequest {
				e.Problemf("move %s: world_moved with status %d (want 421)", mv.world, client.StatusCode(err))
			}
			op.Outcome, op.Err = Fail, err.Error()
			if maybe {
				op.Outcome = Unknown
			}
			return
		}
		maybe = maybe || client.IsOutcomeUnknown(err)
		pause(ctx, 100*time.Millisecond)
	}
	// No definite answer while the fault runs (the old group without a
	// leader): the probe may still apply; the feeds tell.
	op.Outcome, op.Err = Unknown, fmt.Sprint(last)
	e.Notef("move %s: the probe got no definite answer during the fault: %v", mv.world, last)
}

// via is a running node the fault spares, picked at random.
func (m *moveNemesis) via(e *Env, victim int) int {
	var ok []int
	for i := range e.C.Nodes {
		if i != victim && e.C.Running(i) && !e.C.Paused(i) {
			ok = append(ok, i)
		}
	}
	if len(ok) == 0 {
		return victim
	}
	return e.pick(ok)
}

func (m *moveNemesis) Stop(ctx context.Context, e *Env) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, i := range m.killed {
		if err := e.C.Start(i, nil); err != nil {
			errs = append(errs, err)
		}
	}
	m.killed = nil
	for _, i := range m.paused {
		if err := e.C.Resume(i); err != nil {
			errs = append(errs, err)
		}
	}
	m.paused = nil
	e.C.HealNetwork()
	mv := m.cur
	if mv == nil {
		return errors.Join(errs...)
	}
	m.cur = nil
	// Resume: call the move again until it answers.
	var got wire.WorldMoved
	var last error
	err := poll(ctx, 60*time.Second, func() error {
		mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		mc := mover(e.C, m.via(e, -1))
		defer mc.Close()
		got, last = mc.MoveWorld(mctx, mv.world, mv.to)
		return last
	})
	if err != nil {
		e.Problemf("move %s to shard %d: not completed 60 s after the fault: %v", mv.world, mv.to, last)
		return errors.Join(append(errs, err)...)
	}
	if mv.fence == 0 && !got.Done {
		mv.fence = got.Seq // the fence's seq was not known before the fault
	}
	m.checkMoved(e, mv, got, m.done)
	m.checkHash(ctx, e, mv)
	m.settle(*mv)
	// Every live node's map places the world on its new home.
	for i := range e.C.Nodes {
		if !e.C.Running(i) {
			continue
		}
		var at uint64
		err := poll(ctx, 30*time.Second, func() error {
			sm, err := e.C.Direct(i).Shards(ctx)
			if err != nil {
				return err
			}
			if at = sm.Worlds[mv.world]; at != mv.to {
				return fmt.Errorf("on shard %d", at)
			}
			return nil
		})
		if err != nil {
			e.Problemf("move %s: %s's map places it on shard %d, not %d, 30 s after the move", mv.world, e.C.Nodes[i].ID, at, mv.to)
		}
	}
	return errors.Join(errs...)
}
