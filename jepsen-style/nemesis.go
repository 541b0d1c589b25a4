package jepsen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
)

// Nemesis injects one kind of fault. Start begins a fault and describes
// it; Stop ends it (heals, resumes, restarts). Both are called alternately
// from one goroutine.
type Nemesis interface {
	Start(ctx context.Context, e *Env) (string, error)
	Stop(ctx context.Context, e *Env) error
}

// Env is what a nemesis acts on.
type Env struct {
	C   *Cluster
	Rng *rand.Rand
	Log func(format string, args ...any)
	// Play is the run's number of play clients (Scenario.Play).
	Play int

	res   *Result
	resMu sync.Mutex
}

// Notef logs an observation and records it in the run's notes.
func (e *Env) Notef(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	e.Log("%s", msg)
	if e.res == nil {
		return
	}
	e.resMu.Lock()
	e.res.Notes = append(e.res.Notes, msg)
	e.resMu.Unlock()
}

// live returns the slots of running member nodes.
func (e *Env) live(ctx context.Context) []int {
	ids, err := e.C.Members(ctx)
	if err != nil {
		return nil
	}
	var out []int
	for _, id := range ids {
		if i := e.C.IndexOf(id); i >= 0 && e.C.Running(i) {
			out = append(out, i)
		}
	}
	return out
}

func (e *Env) leader(ctx context.Context) (int, error) { return e.C.WaitLeader(ctx) }

func (e *Env) pick(xs []int) int { return xs[e.Rng.IntN(len(xs))] }

func (e *Env) others(xs []int, not ...int) []int {
	var out []int
	for _, x := range xs {
		if !slices.Contains(not, x) {
			out = append(out, x)
		}
	}
	return out
}

func ids(c *Cluster, xs []int) string {
	var s []string
	for _, x := range xs {
		s = append(s, c.Nodes[x].ID)
	}
	return strings.Join(s, ",")
}

// killNemesis SIGKILLs nodes and restarts them on their data on Stop.
type killNemesis struct {
	target string // "leader", "random", "majority"
	killed []int
}

// KillLeader kills -9 the leader.
func KillLeader() Nemesis { return &killNemesis{target: "leader"} }

// KillRandom kills -9 a random node.
func KillRandom() Nemesis { return &killNemesis{target: "random"} }

// KillMajority kills -9 a majority of the nodes.
func KillMajority() Nemesis { return &killNemesis{target: "majority"} }

func (k *killNemesis) Start(ctx context.Context, e *Env) (string, error) {
	live := e.live(ctx)
	if len(live) == 0 {
		return "", errors.New("no live members")
	}
	switch k.target {
	case "leader":
		l, err := e.leader(ctx)
		if err != nil {
			return "", err
		}
		k.killed = []int{l}
	case "random":
		k.killed = []int{e.pick(live)}
	case "majority":
		perm := e.Rng.Perm(len(live))
		for _, p := range perm[:len(live)/2+1] {
			k.killed = append(k.killed, live[p])
		}
	}
	for _, i := range k.killed {
		if err := e.C.Kill(i); err != nil {
			return "", err
		}
	}
	return "kill -9 " + ids(e.C, k.killed), nil
}

func (k *killNemesis) Stop(ctx context.Context, e *Env) error {
	for _, i := range k.killed {
		if err := e.C.Start(i, nil); err != nil {
			return err
		}
	}
	k.killed = nil
	return nil
}

// pauseNemesis SIGSTOPs a node (the leader or a random one) and SIGCONTs it.
type pauseNemesis struct {
	leader bool
	paused int
}

// PauseLeader SIGSTOPs the leader beyond the election timeout.
func PauseLeader() Nemesis { return &pauseNemesis{leader: true, paused: -1} }

// PauseRandom SIGSTOPs a random node.
func PauseRandom() Nemesis { return &pauseNemesis{paused: -1} }

func (p *pauseNemesis) Start(ctx context.Context, e *Env) (string, error) {
	i := -1
	if p.leader {
		l, err := e.leader(ctx)
		if err != nil {
			return "", err
		}
		i = l
	} else {
		i = e.pick(e.live(ctx))
	}
	if err := e.C.Pause(i); err != nil {
		return "", err
	}
	p.paused = i
	return "SIGSTOP " + e.C.Nodes[i].ID, nil
}

func (p *pauseNemesis) Stop(ctx context.Context, e *Env) error {
	if p.paused < 0 {
		return nil
	}
	err := e.C.Resume(p.paused)
	p.paused = -1
	return err
}

// netNemesis applies a network fault computed from the live members.
type netNemesis struct {
	name  string
	apply func(ctx context.Context, e *Env, live []int) (string, error)
}

func (n *netNemesis) Start(ctx context.Context, e *Env) (string, error) {
	live := e.live(ctx)
	if len(live) < 2 {
		return "", fmt.Errorf("%s: need two live members", n.name)
	}
	return n.apply(ctx, e, live)
}

func (n *netNemesis) Stop(ctx context.Context, e *Env) error {
	e.C.HealNetwork()
	return nil
}

// partition cuts every Raft link between group a and group b, both ways.
func partition(c *Cluster, a, b []int) {
	for _, x := range a {
		for _, y := range b {
			c.Cut(x, y)
		}
	}
}

// PartitionLeaderMinority isolates the leader with no follower (the leader
// is the minority side).
func PartitionLeaderMinority() Nemesis {
	return &netNemesis{name: "partition-leader", apply: func(ctx context.Context, e *Env, live []int) (string, error) {
		l, err := e.leader(ctx)
		if err != nil {
			return "", err
		}
		rest := e.others(live, l)
		partition(e.C, []int{l}, rest)
		return fmt.Sprintf("partition [%s] | [%s]", ids(e.C, []int{l}), ids(e.C, rest)), nil
	}}
}

// PartitionRandomHalves splits the members into a random minority and
// majority.
func PartitionRandomHalves() Nemesis {
	return &netNemesis{name: "partition-halves", apply: func(ctx context.Context, e *Env, live []int) (string, error) {
		perm := e.Rng.Perm(len(live))
		var a, b []int
		for i, p := range perm {
			if i < (len(live)-1)/2 {
				a = append(a, live[p])
			} else {
				b = append(b, live[p])
			}
		}
		if len(a) == 0 {
			a, b = b[:1], b[1:]
		}
		partition(e.C, a, b)
		return fmt.Sprintf("partition minority [%s] | majority [%s]", ids(e.C, a), ids(e.C, b)), nil
	}}
}

// PartitionOneWay drops the leader's outbound Raft traffic (its requests
// to every follower), while followers' own requests to it still pass.
func PartitionOneWay() Nemesis {
	return &netNemesis{name: "one-way", apply: func(ctx context.Context, e *Env, live []int) (string, error) {
		l, err := e.leader(ctx)
		if err != nil {
			return "", err
		}
		for _, f := range e.others(live, l) {
			e.C.LinkFaults(l, f, Up, Faults{Blackhole: true})
			// Answers to the followers' vote requests still come back.
		}
		return fmt.Sprintf("one-way: %s -> others dropped", e.C.Nodes[l].ID), nil
	}}
}

// PartitionOneWayInbound drops everything the followers send to the leader
// (answers to its heartbeats included): the leader hears no one, but the
// followers still hear it.
func PartitionOneWayInbound() Nemesis {
	return &netNemesis{name: "one-way-in", apply: func(ctx context.Context, e *Env, live []int) (string, error) {
		l, err := e.leader(ctx)
		if err != nil {
			return "", err
		}
		for _, f := range e.others(live, l) {
			e.C.LinkFaults(l, f, Down, Faults{Blackhole: true})
			e.C.LinkFaults(f, l, Up, Faults{Blackhole: true})
		}
		return fmt.Sprintf("one-way: others -> %s dropped", e.C.Nodes[l].ID), nil
	}}
}

// PartitionBridge splits five nodes into two pairs joined by one bridge
// node that sees both sides (Jepsen's bridge).
func PartitionBridge() Nemesis {
	return &netNemesis{name: "bridge", apply: func(ctx context.Context, e *Env, live []int) (string, error) {
		if len(live) < 3 {
			return "", errors.New("bridge: need three members")
		}
		perm := e.Rng.Perm(len(live))
		bridge := live[perm[0]]
		var a, b []int
		for i, p := range perm[1:] {
			if i%2 == 0 {
				a = append(a, live[p])
			} else {
				b = append(b, live[p])
			}
		}
		partition(e.C, a, b)
		return fmt.Sprintf("bridge [%s] <- %s -> [%s]", ids(e.C, a), e.C.Nodes[bridge].ID, ids(e.C, b)), nil
	}}
}

// Latency adds lat ± jitter to every Raft link and client link, both ways.
func Latency(lat, jitter time.Duration) Nemesis {
	return &netNemesis{name: "latency", apply: func(ctx context.Context, e *Env, live []int) (string, error) {
		f := Faults{Latency: lat, Jitter: jitter}
		for s := range e.C.Links {
			for d, p := range e.C.Links[s] {
				if p != nil && s != d {
					p.Set(Up, f)
					p.Set(Down, f)
				}
			}
		}
		return fmt.Sprintf("latency %s±%s on every raft link", lat, jitter), nil
	}}
}

// Blackhole silently stalls all traffic into and out of a random node,
// client traffic included.
func Blackhole() Nemesis {
	return &netNemesis{name: "blackhole", apply: func(ctx context.Context, e *Env, live []int) (string, error) {
		x := e.pick(live)
		for _, y := range e.others(live, x) {
			e.C.Cut(x, y)
		}
		e.C.Nodes[x].Ingress.Set(Up, Faults{Blackhole: true})
		e.C.Nodes[x].Ingress.Set(Down, Faults{Blackhole: true})
		return "blackhole " + e.C.Nodes[x].ID, nil
	}}
}

// Bandwidth caps every Raft link of the leader to bps bytes/s per connection.
func Bandwidth(bps int) Nemesis {
	return &netNemesis{name: "bandwidth", apply: func(ctx context.Context, e *Env, live []int) (string, error) {
		l, err := e.leader(ctx)
		if err != nil {
			return "", err
		}
		for _, f := range e.others(live, l) {
			e.C.LinkFaults(l, f, Up, Faults{BytesPerSec: bps})
			e.C.LinkFaults(l, f, Down, Faults{BytesPerSec: bps})
		}
		return fmt.Sprintf("bandwidth %d B/s on %s's links", bps, e.C.Nodes[l].ID), nil
	}}
}

// ResetConnections resets every Raft and client connection repeatedly
// while active.
type resetNemesis struct{ stop chan struct{} }

// ConnectionResets resets all connections every 200ms while active.
func ConnectionResets() Nemesis { return &resetNemesis{} }

func (r *resetNemesis) Start(ctx context.Context, e *Env) (string, error) {
	r.stop = make(chan struct{})
	go func(stop chan struct{}) {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				for _, n := range e.C.Nodes {
					n.Ingress.Reset()
				}
				for s := range e.C.Links {
					for _, p := range e.C.Links[s] {
						if p != nil {
							p.Reset()
						}
					}
				}
			}
		}
	}(r.stop)
	return "reset every connection every 200ms", nil
}

func (r *resetNemesis) Stop(ctx context.Context, e *Env) error {
	if r.stop != nil {
		close(r.stop)
		r.stop = nil
	}
	return nil
}

// isolateCompact isolates a follower, makes the others snapshot (so the
// leader compacts its log past the follower), then heals: the follower
// must catch up by InstallSnapshot.
type isolateCompact struct{ node int }

// IsolateUntilCompacted isolates a follower until the leader compacts.
func IsolateUntilCompacted() Nemesis { return &isolateCompact{node: -1} }

func (n *isolateCompact) Start(ctx context.Context, e *Env) (string, error) {
	l, err := e.leader(ctx)
	if err != nil {
		return "", err
	}
	live := e.live(ctx)
	f := e.pick(e.others(live, l))
	for _, y := range e.others(live, f) {
		e.C.Cut(f, y)
	}
	n.node = f
	return "isolate " + e.C.Nodes[f].ID + " (snapshots forced on the others before heal)", nil
}

func (n *isolateCompact) Stop(ctx context.Context, e *Env) error {
	if n.node >= 0 {
		for _, i := range e.live(ctx) {
			if i != n.node {
				sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := e.C.Direct(i).Snapshot(sctx)
				cancel()
				if err != nil {
					e.Log("snapshot on %s: %v", e.C.Nodes[i].ID, err)
				}
			}
		}
	}
	n.node = -1
	e.C.HealNetwork()
	return nil
}

// membership removes a follower under load, wipes it and adds it back as a
// fresh node (remove + re-add), or replaces it with a spare slot.
type membership struct {
	replace bool
	out     int
}

// MembershipReAdd removes a follower and re-adds it with an empty data dir.
func MembershipReAdd() Nemesis { return &membership{out: -1} }

// MembershipReplace removes a follower and adds a different node instead.
func MembershipReplace() Nemesis { return &membership{replace: true, out: -1} }

func (m *membership) Start(ctx context.Context, e *Env) (string, error) {
	l, err := e.leader(ctx)
	if err != nil {
		return "", err
	}
	f := e.pick(e.others(e.live(ctx), l))
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := e.C.Direct(l).Remove(rctx, e.C.Nodes[f].ID); err != nil {
		return "", fmt.Errorf("remove %s: %w", e.C.Nodes[f].ID, err)
	}
	if err := e.C.Kill(f); err != nil {
		return "", err
	}
	if err := e.C.Wipe(f); err != nil {
		return "", err
	}
	m.out = f
	return "remove " + e.C.Nodes[f].ID, nil
}

func (m *membership) Stop(ctx context.Context, e *Env) error {
	if m.out < 0 {
		return nil
	}
	target := m.out
	if m.replace {
		// Use a slot that is not running (the spare, or the last one removed).
		for i := range e.C.Nodes {
			if i != m.out && !e.C.Running(i) {
				target = i
				break
			}
		}
		_ = e.C.Wipe(target)
	}
	m.out = -1
	return e.C.Start(target, e.C.IngressAddrs())
}

// transfer asks the leader to hand leadership over, repeatedly.
type transfer struct{}

// LeadershipTransfer transfers leadership under writes.
func LeadershipTransfer() Nemesis { return transfer{} }

func (transfer) Start(ctx context.Context, e *Env) (string, error) {
	l, err := e.leader(ctx)
	if err != nil {
		return "", err
	}
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := e.C.Direct(l).TransferLeadership(tctx); err != nil {
		return "", fmt.Errorf("transfer from %s: %w", e.C.Nodes[l].ID, err)
	}
	return "transfer leadership away from " + e.C.Nodes[l].ID, nil
}

func (transfer) Stop(context.Context, *Env) error { return nil }

// restartFromSnapshot snapshots every node, then kills -9 and restarts
// them all so they recover from snapshot + log.
type restartFromSnapshot struct{ killed []int }

// RestartFromSnapshot forces snapshots then kills and restarts every node.
func RestartFromSnapshot() Nemesis { return &restartFromSnapshot{} }

func (r *restartFromSnapshot) Start(ctx context.Context, e *Env) (string, error) {
	live := e.live(ctx)
	for _, i := range live {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if _, err := e.C.Direct(i).Snapshot(sctx); err != nil {
			e.Log("snapshot on %s: %v", e.C.Nodes[i].ID, err)
		}
		cancel()
	}
	for _, i := range live {
		if err := e.C.Kill(i); err != nil {
			return "", err
		}
	}
	r.killed = live
	return "snapshot, then kill -9 all of " + ids(e.C, live), nil
}

func (r *restartFromSnapshot) Stop(ctx context.Context, e *Env) error {
	for _, i := range r.killed {
		if err := e.C.Start(i, nil); err != nil {
			return err
		}
	}
	r.killed = nil
	return nil
}

// none injects nothing (a control run).
type none struct{}

// None is the control nemesis.
func None() Nemesis { return none{} }

func (none) Start(context.Context, *Env) (string, error) { return "nothing", nil }
func (none) Stop(context.Context, *Env) error            { return nil }

// Rotate applies the given nemeses in turn, one per fault cycle: a short
// run that still passes through every kind of fault (the smoke slice).
func Rotate(ns ...func() Nemesis) func() Nemesis {
	return func() Nemesis {
		r := &rotation{}
		for _, n := range ns {
			r.all = append(r.all, n())
		}
		return r
	}
}

type rotation struct {
	all []Nemesis
	i   int
	cur Nemesis
}

func (r *rotation) Start(ctx context.Context, e *Env) (string, error) {
	r.cur = r.all[r.i%len(r.all)]
	r.i++
	return r.cur.Start(ctx, e)
}

func (r *rotation) Stop(ctx context.Context, e *Env) error {
	if r.cur == nil {
		return nil
	}
	return r.cur.Stop(ctx, e)
}

// Wait waits for every nemesis's background work.
func (r *rotation) Wait() {
	for _, n := range r.all {
		if w, ok := n.(interface{ Wait() }); ok {
			w.Wait()
		}
	}
}
