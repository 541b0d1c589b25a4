//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// upgradeFromFile names the commit of main the rolling-upgrade test starts
// from (docs/OPERATIONS.md, "Rolling upgrade": record a release's commit
// there when it is tagged).
const upgradeFromFile = "scripts/upgrade-from.txt"

// gateProbes are rules updates that need a given log version and nothing
// newer (fsm.Needs): the test proposes the one for the new binary's log
// version while a voter still runs the old binary, expecting the version
// gate to refuse it, and again after the last node was replaced. A binary
// that raises the log version adds the probe of its version here (a rules
// key, or any admin call whose command needs it); without one the test
// checks only that the node table, which the gate reads, lists the old
// node's versions until it is replaced. Log 12 has none: its command (a
// rules update that is also the world's event) falls back to the update
// without the event while a voter reads less, rather than being refused;
// nor has log 14 (an erasure that keeps its salt's digest falls back to
// the erasure without it), nor log 15 (a salted world's move, between
// shards: the test runs one group; store and shard test its gate).
var gateProbes = map[uint32]string{
	6:  `{"fields":{"hp":{"type":"int","policy":"authoritative"}},"mode":"upgrade-probe"}`,
	7:  `{"fields":{"hp":{"type":"int","policy":"authoritative","visible":"owner"}}}`,
	10: `{"fields":{"hp":{"type":"int","policy":"authoritative"}},"views":{"top":{"kind":"max","field":"hp"}}}`,
	11: `{"fields":{"hp":{"type":"int","policy":"authoritative"}},"player_data":{"player_writable":["loadout"]}}`,
}

// upgradeAcks is how many actions are acknowledged in each phase of the
// rolling upgrade (before the first replacement and after each):
// $GSD_UPGRADE_ACKS, default 150 (make upgrade runs more).
func upgradeAcks(t *testing.T) int64 {
	s := os.Getenv("GSD_UPGRADE_ACKS")
	if s == "" {
		return 150
	}
	n, err := strconv.ParseInt(s, 10, 64)
	require.NoError(t, err, "GSD_UPGRADE_ACKS")
	require.Positive(t, n, "GSD_UPGRADE_ACKS")
	return n
}

// recordedGSD builds gsd at the commit upgradeFromFile records, in a
// detached git worktree that is removed again, and returns the binary. It
// skips the test when there is no git history to build it from.
func recordedGSD(t *testing.T) (bin, commit string) {
	t.Helper()
	git := func(dir string, args ...string) (string, error) {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	root, err := git(".", "rev-parse", "--show-toplevel")
	if err != nil {
		t.Skipf("rolling upgrade: not in a git repository, so there is no earlier commit to build (%v: %s)", err, root)
	}
	f, err := os.Open(filepath.Join(root, upgradeFromFile))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			commit = line
			break
		}
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, commit, "%s names no commit", upgradeFromFile)
	if out, err := git(root, "cat-file", "-e", commit+"^{commit}"); err != nil {
		shallow, _ := git(root, "rev-parse", "--is-shallow-repository")
		t.Skipf("rolling upgrade: commit %s of %s is not in this repository (shallow clone: %s; git fetch --unshallow): %s",
			commit, upgradeFromFile, shallow, out)
	}
	src := filepath.Join(t.TempDir(), "src")
	if out, err := git(root, "worktree", "add", "--detach", src, commit); err != nil {
		t.Fatalf("git worktree add %s: %v\n%s", commit, err, out)
	}
	t.Cleanup(func() {
		if out, err := git(root, "worktree", "remove", "--force", src); err != nil {
			t.Logf("git worktree remove %s: %v\n%s", src, err, out)
			_, _ = git(root, "worktree", "prune")
		}
	})
	bin = filepath.Join(t.TempDir(), "gsd-"+commit[:min(12, len(commit))])
	build := exec.Command("go", "build", "-o", bin, "./cmd/gsd")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build gsd at %s: %v\n%s", commit, err, out)
	}
	return bin, commit
}

// TestRollingUpgradeFromARecordedCommitLosesNoAcknowledgedAction starts
// three nodes on the binary of the recorded commit, runs play (players on
// WebSocket play connections and HTTP writers) and replaces the nodes one
// at a time with this binary: stopped gracefully, started on the same data
// dir, caught up before the next. Every acknowledged action is in the
// world's history exactly once, every node ends with the same hash, and
// the version gate opens the new log version only once the last node runs
// the new binary.
func TestRollingUpgradeFromARecordedCommitLosesNoAcknowledgedAction(t *testing.T) {
	if testing.Short() {
		t.Skip("process cluster test in -short mode")
	}
	oldBin, commit := recordedGSD(t)
	pc := newProcCluster(t)
	newBin := pc.bin
	pc.bin = oldBin
	n1 := pc.add("n1")
	n2 := pc.add("n2", "--join", n1.http)
	n3 := pc.add("n3", "--join", n2.http+","+n1.http)
	nodes := []*proc{n1, n2, n3}
	pc.start(n1, false)
	pc.waitStatus(n1, "leads", func(s client.Status) bool { return s.State == "leader" && s.LeaderHTTP != "" })
	pc.start(n2, false)
	pc.start(n3, false)
	var oldV wire.Versions
	for _, p := range nodes {
		oldV = pc.waitStatus(p, "sees three voters and a leader", func(s client.Status) bool { return len(s.Servers) == 3 && s.Leader != "" }).Versions
	}

	cl := client.New([]string{n1.http, n2.http, n3.http}, client.WithBackoff(10*time.Millisecond, 250*time.Millisecond), client.WithAttemptTimeout(5*time.Second))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rules := wire.Rules{Fields: map[string]wire.FieldRule{
		"n": {Type: "int", Policy: wire.PolicyCounter},
		"v": {Type: "int", Policy: wire.PolicyAuthoritative},
	}}
	require.NoError(t, cl.CreateWorld(ctx, "arena", rules))
	require.NoError(t, cl.CreateWorld(ctx, "probe", wire.Rules{Fields: map[string]wire.FieldRule{"hp": {Type: "int", Policy: wire.PolicyAuthoritative}}}))

	log := &opLog{acked: map[string]int64{}, unknown: map[string]int64{}, events: map[string]uint64{}, doorSets: map[uint64]int64{}}
	var playAcks atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() { runWriter(ctx, t, cl, w, stop, log) })
	}
	for i := range 4 {
		wg.Go(func() { runPlayer(ctx, t, cl, i, stop, log, &playAcks) })
	}
	perPhase := upgradeAcks(t)
	waitAcks := func(what string) {
		t.Helper()
		target, playTarget := log.total.Load()+perPhase, playAcks.Load()+perPhase/4
		require.Eventually(t, func() bool {
			return log.total.Load() >= target && playAcks.Load() >= playTarget || t.Failed()
		}, 3*time.Minute, 10*time.Millisecond, "%s: acknowledged actions stopped at %d (play %d)", what, log.total.Load(), playAcks.Load())
		require.False(t, t.Failed())
	}
	waitAcks("on the old binary")

	var newV wire.Versions
	for i, p := range nodes {
		if i == len(nodes)-1 {
			newV = checkGateBefore(ctx, t, pc, cl, p, nodes, oldV, newV)
		}
		pc.stop(p)
		pc.bin = newBin
		pc.start(p, true)
		newV = pc.waitStatus(p, "rejoined on the new binary", func(s client.Status) bool { return s.Leader != "" && len(s.Servers) == 3 }).Versions
		other := nodes[(i+1)%len(nodes)]
		commit := pc.waitStatus(other, "knows a leader", func(s client.Status) bool { return s.Leader != "" }).CommitIndex
		pc.waitStatus(p, "caught up", func(s client.Status) bool { return s.AppliedIndex >= commit })
		t.Logf("%s runs the new binary (log version %d), caught up to index %d", p.id, newV.Log, commit)
		waitAcks("after replacing " + p.id)
	}
	checkGateAfter(ctx, t, pc, cl, nodes, oldV, newV)
	waitAcks("after the gate opened")
	close(stop)
	wg.Wait()
	require.False(t, t.Failed())
	t.Logf("upgraded from %s (log version %d) to log version %d: acked=%d (play %d) duplicates=%d occ-conflicts=%d unknown-incrs=%v unknown-sets=%d",
		commit, oldV.Log, newV.Log, log.total.Load(), playAcks.Load(), log.dups, log.conflicts, log.unknown, log.doorUnk)
	checkHistory(ctx, t, cl, nodes, log)
}

// checkGateBefore runs while last is the only node on the old binary: a
// command needing the new log version is refused by the version gate on
// a leader that runs the new binary. It returns the new versions.
func checkGateBefore(ctx context.Context, t *testing.T, pc *procCluster, cl *client.Client, last *proc, nodes []*proc, oldV, newV wire.Versions) wire.Versions {
	t.Helper()
	// The leader's table lists the old node with what it reads.
	st := pc.waitStatus(nodes[0], "lists every node's versions", func(s client.Status) bool {
		for _, n := range s.Nodes {
			want := newV
			if n.ID == last.id {
				want = oldV
			}
			if n.Versions != want {
				return false
			}
		}
		return len(s.Nodes) == 3
	})
	t.Logf("node table before the last replacement: %+v", st.Nodes)
	// The old node reads what the new leaders wrote: it applies the same
	// state as a new node at the same seq.
	nc, oc := nodes[0].client(), last.client()
	defer nc.Close()
	defer oc.Close()
	h, err := nc.Hash(ctx, "arena", 0)
	require.NoError(t, err)
	// The hash after event N covers the session commands (play opens and
	// acks) applied before event N+1, so a node still at N may not have
	// them all yet: both answers are read again until both nodes are
	// past N.
	require.Eventually(t, func() bool {
		got, err := oc.Hash(ctx, "arena", h.Seq)
		require.True(t, err == nil || client.Code(err) == wire.CodeSeqUnknown, "%v", err) // not there yet
		if err != nil {
			return false
		}
		if h, err = nc.Hash(ctx, "arena", h.Seq); err != nil {
			return false
		}
		return got == h
	}, time.Minute, 20*time.Millisecond, "%s on the old binary reaches %s's hash at seq %d", last.id, nodes[0].id, h.Seq)
	if newV.Log == oldV.Log {
		t.Logf("the recorded commit reads log version %d, as this binary does: no command waits for the last node; "+
			"checking that the gate lets through log version %d while it runs the old binary", oldV.Log, newV.Log)
		if probe, ok := gateProbes[newV.Log]; ok {
			_, err := cl.UpdateRules(ctx, "probe", json.RawMessage(probe), 0)
			require.NoError(t, err, "a command of log version %d with every voter reading it", newV.Log)
		}
		return newV
	}
	probe, ok := gateProbes[newV.Log]
	if !ok {
		// Still a check: the node table above is what the gate reads.
		t.Logf("no probe of log version %d in gateProbes (this binary reads %d, the recorded commit %d): "+
			"the gate is checked through the node table only; add a command that needs it", newV.Log, newV.Log, oldV.Log)
		return newV
	}
	// The old binary does not know the new command: only a new leader's
	// gate can refuse it, so hand leadership to one.
	for {
		s := pc.waitStatus(nodes[0], "knows a leader", func(s client.Status) bool { return s.Leader != "" })
		if s.Leader != last.id {
			break
		}
		require.NoError(t, cl.TransferLeadership(ctx))
		pc.waitStatus(nodes[0], "leader moved off "+last.id, func(s client.Status) bool { return s.Leader != "" && s.Leader != last.id })
	}
	// Through a new node: the old binary's edge may refuse a rules key it
	// does not know itself (422 not_supported) before any gate is asked.
	_, err = nc.UpdateRules(ctx, "probe", json.RawMessage(probe), 0)
	require.Error(t, err, "a command of log version %d while %s reads %d", newV.Log, last.id, oldV.Log)
	require.Equal(t, "version_gate", client.Code(err), "%v", err)
	return newV
}

// checkGateAfter: once every node runs the new binary its versions reach
// the node table and the command the gate refused before is accepted.
func checkGateAfter(ctx context.Context, t *testing.T, pc *procCluster, cl *client.Client, nodes []*proc, oldV, newV wire.Versions) {
	t.Helper()
	pc.waitStatus(nodes[0], "lists the new versions of every node", func(s client.Status) bool {
		for _, n := range s.Nodes {
			if n.Versions != newV {
				return false
			}
		}
		return len(s.Nodes) == 3
	})
	probe, ok := gateProbes[newV.Log]
	if !ok {
		t.Logf("no probe of log version %d: the node table check stands for the gate", newV.Log)
		return
	}
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := cl.UpdateRules(ctx, "probe", json.RawMessage(probe), 0)
		if err == nil {
			return
		}
		// The leader may not have heard every report yet.
		require.Equal(t, "version_gate", client.Code(err), "%v", err)
		require.True(t, time.Now().Before(deadline), "the gate still refuses log version %d: %v", newV.Log, err)
		time.Sleep(100 * time.Millisecond) // poll interval
	}
}

// runPlayer plays one player over a play connection until stop: counter
// increments, each acknowledged one recorded in log with its seq. The
// connection resumes on another node when its node stops; an action whose
// answer does not come counts as of unknown outcome.
func runPlayer(ctx context.Context, t *testing.T, cl *client.Client, i int, stop <-chan struct{}, log *opLog, acks *atomic.Int64) {
	player := fmt.Sprintf("p%d", i)
	counter := fmt.Sprintf("c%d", i%4)
	var reader sync.WaitGroup
	defer reader.Wait() // after the Close below ends its Next
	var p *client.Play
	defer func() {
		if p != nil {
			_ = p.Close()
		}
	}()
	for seq := uint64(1); ; seq++ {
		select {
		case <-stop:
			return
		default:
		}
		if p == nil {
			var err error
			if p, err = cl.Play(ctx, "arena", client.PlayOptions{Player: player, HeadersOnly: true}); err != nil {
				if ctx.Err() != nil {
					t.Errorf("%s: play: %v", player, err)
					return
				}
				p = nil
				time.Sleep(50 * time.Millisecond) // back off before the next open
				seq--
				continue
			}
			pl := p
			reader.Go(func() { // Next must be read, or the server cuts the connection off
				for {
					if _, err := pl.Next(ctx); err != nil {
						return
					}
				}
			})
		}
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		ev, err := p.Act(actx, client.ActionRequest{Seq: seq, Priority: client.PriorityBulk, Ops: []wire.Op{client.Incr(counter, "n", 1)}})
		cancel()
		log.mu.Lock()
		switch {
		case err == nil && ev.Status == "applied":
			log.events[fmt.Sprintf("%s/%d", player, seq)] = ev.Seq
			log.acked[counter]++
			if ev.Duplicate {
				log.dups++
			}
			log.total.Add(1)
			acks.Add(1)
		case err == nil:
			t.Errorf("%s/%d: unexpected event %+v", player, seq, ev)
		default:
			// No answer (the play ended, or the deadline): the action may
			// have applied. A new session goes on with the next seq.
			log.unknown[counter]++
			var ce *client.CloseError
			if errors.As(err, &ce) || errors.Is(err, client.ErrPlayClosed) || errors.Is(err, context.DeadlineExceeded) {
				_ = p.Close()
				p = nil
			}
		}
		log.mu.Unlock()
		if t.Failed() {
			return
		}
	}
}

// checkHistory checks what the writers and players were told against the
// world: counters within the acknowledged and unknown increments, each
// acknowledged action's event at its seq and no action twice, and the same
// hash at the same seq on every node.
func checkHistory(ctx context.Context, t *testing.T, cl *client.Client, nodes []*proc, log *opLog) {
	t.Helper()
	for entity, acked := range log.acked {
		e, err := cl.Entity(ctx, "arena", entity, client.Linearizable)
		require.NoError(t, err)
		got, ok := e.Int("n")
		require.True(t, ok)
		require.GreaterOrEqual(t, got, acked, "%s lost acknowledged increments", entity)
		require.LessOrEqual(t, got, acked+log.unknown[entity], "%s applied increments more than once", entity)
	}
	e, err := cl.Entity(ctx, "arena", "c0", client.Linearizable)
	require.NoError(t, err)
	head := e.Seq
	for _, seq := range log.events {
		head = max(head, seq)
	}
	seen := map[string]uint64{}
	done := errors.New("done")
	err = cl.Follow(ctx, "arena", 1, func(ev wire.Event) error {
		key := fmt.Sprintf("%s/%d", ev.Player, ev.ClientSeq)
		if prev, dup := seen[key]; dup {
			return fmt.Errorf("action %s has events at seqs %d and %d", key, prev, ev.Seq)
		}
		seen[key] = ev.Seq
		if ev.Seq >= head {
			return done
		}
		return nil
	})
	require.ErrorIs(t, err, done)
	for key, seq := range log.events {
		require.Equal(t, seq, seen[key], "event of acknowledged action %s", key)
	}
	var want client.HashPoint
	for i, p := range nodes {
		c := p.client()
		require.Eventually(t, func() bool {
			h, err := c.Hash(ctx, "arena", 0)
			return err == nil && h.Seq >= head
		}, time.Minute, 20*time.Millisecond, "%s catches up to seq %d", p.id, head)
		h, err := c.Hash(ctx, "arena", head)
		require.NoError(t, err, p.id)
		c.Close()
		if i == 0 {
			want = h
		}
		require.Equal(t, want, h, "hash of %s", p.id)
	}
	require.Equal(t, head, want.Seq)
}

// TestGateProbesAreAcceptedByThisBinary: each probe
// of the rolling-upgrade test is a valid rules update for this binary (a
// probe the gate would let through only because it is malformed would
// prove nothing).
func TestGateProbesAreAcceptedByThisBinary(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := startNode(t, "probe", t.TempDir())
	n.waitLeader(t)
	c := n.client(t)
	require.NoError(t, c.CreateWorld(ctx, "probe", wire.Rules{Fields: map[string]wire.FieldRule{"hp": {Type: "int", Policy: wire.PolicyAuthoritative}}}))
	for v, probe := range gateProbes {
		_, err := c.UpdateRules(ctx, "probe", json.RawMessage(probe), 0)
		require.NoError(t, err, "probe of log version %d", v)
	}
}
