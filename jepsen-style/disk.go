package jepsen

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// Disk faults: these nemeses drive the failpoints of a gsd built with
// -tags gsd_failpoints (store/failpoint.go names them all) by writing each
// node's control file (Cluster.SetFailpoints). Scenarios that use them set
// Scenario.Tags = FailpointsTag.

// FailpointsTag is the build tag of the gsd binary with failpoints.
const FailpointsTag = "gsd_failpoints"

// Failpoint names (the authoritative list is store/failpoint.go).
const (
	fpRaftLogAppend   = "raft-log-append"
	fpRaftLogAppended = "raft-log-appended"
	fpRaftStable      = "raft-stable-set"
	fpRaftLogCompact  = "raft-log-compact"
	fpArchiveWrite    = "archive-write"
	fpSnapshotWrite   = "snapshot-write"
	fpSnapshotClose   = "snapshot-close"
)

// panicLine returns the first "panic:" line (and the one after it) of a
// node's log written after offset, or "".
func panicLine(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < offset {
		return ""
	}
	b = b[offset:]
	i := bytes.Index(b, []byte("panic: "))
	if i < 0 {
		if j := bytes.Index(b, []byte("failpoint ")); j >= 0 && bytes.Contains(b[j:], []byte("crash")) {
			line, _, _ := strings.Cut(string(b[j:]), "\n")
			return line
		}
		return ""
	}
	line, _, _ := strings.Cut(string(b[i:]), "\n")
	return line
}

func logSize(path string) int64 {
	if st, err := os.Stat(path); err == nil {
		return st.Size()
	}
	return 0
}

// diskNemesis arms failpoints on its targets for the fault, then turns
// them off and restarts any target that died meanwhile (a crash failpoint,
// or hashicorp/raft panicking on a failed stable-store write).
type diskNemesis struct {
	target string // "leader", "follower", "all"
	lines  []string
	watch  bool // record leadership during the fault

	nodes  []int
	logOff map[int]int64
	start  time.Time
	stopW  chan struct{}
	wg     sync.WaitGroup
	seen   []string
	seenMu sync.Mutex
}

// DiskFault arms lines (`failpoint=action`) on the leader, a random
// follower, or every member.
func DiskFault(target string, lines ...string) func() Nemesis {
	return func() Nemesis { return &diskNemesis{target: target, lines: lines} }
}

// HungLeaderDisk makes every Raft disk write of the leader hang for the
// whole fault (hashicorp/raft #503) and records who leads meanwhile.
func HungLeaderDisk() Nemesis {
	return &diskNemesis{target: "leader", lines: []string{fpRaftLogAppend + "=hang", fpRaftStable + "=hang"}, watch: true}
}

func (d *diskNemesis) Start(ctx context.Context, e *Env) (string, error) {
	live := e.live(ctx)
	if len(live) == 0 {
		return "", fmt.Errorf("no live members")
	}
	l, err := e.leader(ctx)
	if err != nil {
		return "", err
	}
	switch d.target {
	case "leader":
		d.nodes = []int{l}
	case "follower":
		d.nodes = []int{e.pick(e.others(live, l))}
	default:
		d.nodes = live
	}
	d.logOff = map[int]int64{}
	for _, i := range d.nodes {
		d.logOff[i] = logSize(e.C.Nodes[i].LogPath)
		if err := e.C.SetFailpoints(i, d.lines...); err != nil {
			return "", err
		}
	}
	d.start = time.Now()
	if d.watch {
		d.stopW = make(chan struct{})
		d.seen = nil
		d.wg.Add(1)
		go d.watchLeaders(ctx, e, l)
	}
	return fmt.Sprintf("failpoints %s on %s (%s)", strings.Join(d.lines, ","), ids(e.C, d.nodes), d.target), nil
}

// watchLeaders notes, every 200 ms, which node claims leadership (the
// faulty leader's status handler does not touch the disk).
func (d *diskNemesis) watchLeaders(ctx context.Context, e *Env, old int) {
	defer d.wg.Done()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	last := ""
	for {
		select {
		case <-d.stopW:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		id := "none"
		if i := e.C.Leader(ctx); i >= 0 {
			id = e.C.Nodes[i].ID
		}
		if id != last {
			d.seenMu.Lock()
			d.seen = append(d.seen, fmt.Sprintf("%s@%s", id, time.Since(d.start).Round(100*time.Millisecond)))
			d.seenMu.Unlock()
			last = id
		}
	}
}

func (d *diskNemesis) Stop(ctx context.Context, e *Env) error {
	if d.stopW != nil {
		close(d.stopW)
		d.wg.Wait()
		d.stopW = nil
		e.Notef("leaders seen during %s on %s: %s", strings.Join(d.lines, ","), ids(e.C, d.nodes), strings.Join(d.seen, " "))
	}
	var errs []string
	for _, i := range d.nodes {
		if err := e.C.SetFailpoints(i); err != nil {
			errs = append(errs, err.Error())
		}
	}
	for _, i := range d.nodes {
		if e.C.Running(i) {
			continue
		}
		e.Notef("%s exited during the fault (%s); restarted: %s", e.C.Nodes[i].ID, strings.Join(d.lines, ","), panicLine(e.C.Nodes[i].LogPath, d.logOff[i]))
		if err := e.C.Start(i, nil); err != nil {
			errs = append(errs, err.Error())
		}
	}
	d.nodes = nil
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// crashStep is one point between persistence steps where a node dies.
type crashStep struct {
	fp       string
	snapshot bool // the step is reached by taking a snapshot
	what     string
}

var crashSteps = []crashStep{
	{fpRaftLogAppended, false, "after the raft log append, before commit/apply"},
	{fpArchiveWrite, false, "after FSM apply, before the event archive write"},
	{fpSnapshotWrite, true, "mid snapshot persist (first chunk written)"},
	{fpSnapshotClose, true, "snapshot written, before it is committed"},
	{fpRaftLogCompact, true, "snapshot committed, before log compaction"},
}

// crashBetweenSteps kills a node (SIGKILL from inside, via a crash
// failpoint) at a chosen persistence step: fault k uses step k mod 5, on
// the leader for even k and a random follower for odd k; Stop restarts it.
type crashBetweenSteps struct {
	k    int
	node int
}

// CrashBetweenSteps crashes nodes between persistence steps.
func CrashBetweenSteps() Nemesis { return &crashBetweenSteps{node: -1} }

func (c *crashBetweenSteps) Start(ctx context.Context, e *Env) (string, error) {
	step := crashSteps[c.k%len(crashSteps)]
	leader := c.k%2 == 0
	c.k++
	l, err := e.leader(ctx)
	if err != nil {
		return "", err
	}
	i := l
	if !leader {
		i = e.pick(e.others(e.live(ctx), l))
	}
	if err := e.C.SetFailpoints(i, step.fp+"=crash"); err != nil {
		return "", err
	}
	c.node = i
	if step.snapshot {
		time.Sleep(100 * time.Millisecond) // the node polls its control file every 50 ms
		go func() {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			_, _ = e.C.Direct(i).Snapshot(sctx)
		}()
	}
	role := "follower"
	if leader {
		role = "leader"
	}
	state := "crashed"
	if !e.C.WaitExit(i, 2*time.Second) {
		state = "did not reach the step within 2s"
	}
	return fmt.Sprintf("crash %s (%s) at %s: %s [%s]", e.C.Nodes[i].ID, role, step.fp, step.what, state), nil
}

func (c *crashBetweenSteps) Stop(ctx context.Context, e *Env) error {
	if c.node < 0 {
		return nil
	}
	i := c.node
	c.node = -1
	if err := e.C.SetFailpoints(i); err != nil {
		return err
	}
	if e.C.Running(i) {
		// The step was not reached: make sure the failpoint is off before
		// it can fire during the next fault's window.
		time.Sleep(100 * time.Millisecond)
		if e.C.Running(i) {
			return nil
		}
	}
	return e.C.Start(i, nil)
}

// laggingLargeSnapshot isolates a follower while the others keep writing on
// top of a large state, forces snapshots (log compacted past the follower),
// then heals with the leader->follower link capped, so the follower must
// install a snapshot of many MB that takes longer than the election timeout
// (hashicorp/raft #697 neighbourhood). It notes how long the follower took
// to catch up, or that it did not.
type laggingLargeSnapshot struct {
	node, leader int
	bps          int
	wg           sync.WaitGroup
}

// LaggingFollowerLargeSnapshot is the nemesis of the large-snapshot scenario.
func LaggingFollowerLargeSnapshot(bps int) func() Nemesis {
	return func() Nemesis { return &laggingLargeSnapshot{node: -1, bps: bps} }
}

func (n *laggingLargeSnapshot) Start(ctx context.Context, e *Env) (string, error) {
	n.wg.Wait() // the previous catch-up watcher has lifted its cap
	l, err := e.leader(ctx)
	if err != nil {
		return "", err
	}
	live := e.live(ctx)
	f := e.pick(e.others(live, l))
	for _, y := range e.others(live, f) {
		e.C.Cut(f, y)
	}
	n.node, n.leader = f, l
	return "isolate " + e.C.Nodes[f].ID + " (snapshots forced on the others; healed with the leader's link capped)", nil
}

func (n *laggingLargeSnapshot) Stop(ctx context.Context, e *Env) error {
	if n.node < 0 {
		return nil
	}
	f := n.node
	n.node = -1
	for _, i := range e.live(ctx) {
		if i != f {
			sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			_, err := e.C.Direct(i).Snapshot(sctx)
			cancel()
			if err != nil {
				e.Log("snapshot on %s: %v", e.C.Nodes[i].ID, err)
			}
		}
	}
	l, err := e.leader(ctx)
	if err != nil {
		e.C.HealNetwork()
		return err
	}
	e.C.HealNetwork()
	e.C.LinkFaults(l, f, Up, Faults{BytesPerSec: n.bps})
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	ls, err := e.C.Status(sctx, l)
	cancel()
	if err != nil {
		return err
	}
	target, healed := ls.CommitIndex, time.Now()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer e.C.LinkFaults(l, f, Up, Faults{})
		err := poll(ctx, 40*time.Second, func() error {
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			st, err := e.C.Status(sctx, f)
			if err != nil {
				return err
			}
			if st.AppliedIndex < target {
				return fmt.Errorf("%s applied %d of %d", e.C.Nodes[f].ID, st.AppliedIndex, target)
			}
			return nil
		})
		if err != nil {
			e.Notef("%s did NOT catch up to index %d within 40s of the heal (link %s->%s capped at %d B/s): %v", e.C.Nodes[f].ID, target, e.C.Nodes[l].ID, e.C.Nodes[f].ID, n.bps, err)
			return
		}
		e.Notef("%s caught up to index %d in %s after the heal (link capped at %d B/s)", e.C.Nodes[f].ID, target, time.Since(healed).Round(10*time.Millisecond), n.bps)
	}()
	return nil
}

// Wait waits for the catch-up watch of the last fault.
func (n *laggingLargeSnapshot) Wait() { n.wg.Wait() }
