//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// killSessions is how many play sessions the kill test opens on the node
// it kills: $GSD_KILL_SESSIONS, default 1,000.
func killSessions(t *testing.T) int {
	v := os.Getenv("GSD_KILL_SESSIONS")
	if v == "" {
		return 1000
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, "GSD_KILL_SESSIONS")
	require.Positive(t, n, "GSD_KILL_SESSIONS")
	return n
}

// killPlayer is one play session of the kill test and the events it got.
type killPlayer struct {
	name, world string
	before      bool // acts once before the kill too
	p           *client.Play
	mu          sync.Mutex
	events      []wire.Event
	err         error
}

func (k *killPlayer) read(ctx context.Context, want int) {
	for {
		ev, err := k.p.Next(ctx)
		k.mu.Lock()
		if err != nil {
			k.err = err
		} else {
			k.events = append(k.events, ev)
		}
		done := err != nil || len(k.events) >= want
		k.mu.Unlock()
		if done {
			return
		}
	}
}

// act sends the action seq (incr the world's counter) until it is answered.
func (k *killPlayer) act(ctx context.Context, seq uint64) error {
	for {
		_, err := k.p.Act(ctx, client.ActionRequest{Seq: seq, Ops: []wire.Op{client.Incr("c", "n", 1)}})
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s action %d: %w (last: %v)", k.name, seq, ctx.Err(), err)
		}
		time.Sleep(20 * time.Millisecond) // an unknown outcome: the same seq again
	}
}

// eachPlayer runs f for every player, 128 at a time, and fails on an error.
func eachPlayer(t *testing.T, ps []*killPlayer, f func(*killPlayer) error) {
	t.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 128)
	errs := make(chan error, len(ps))
	for _, k := range ps {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := f(k); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// TestProcessClusterKillTheNodeHoldingThePlaySessions opens 1,000 play
// sessions ($GSD_KILL_SESSIONS) on one follower of a three-process
// cluster, SIGKILLs it, and requires every client to resume on a
// remaining node, which the clients learnt from their welcome (they were
// given only the killed node's address), with no gap and no duplicate in
// their events and every action applied once. Then the same with a fifth
// as many sessions on the leader, whose death also takes an election.
func TestProcessClusterKillTheNodeHoldingThePlaySessions(t *testing.T) {
	if testing.Short() {
		t.Skip("process cluster test in -short mode")
	}
	n := killSessions(t)
	t.Run("follower", func(t *testing.T) { killHolder(t, 1, n, false) })
	t.Run("leader", func(t *testing.T) { killHolder(t, 0, max(1, n/5), false) })
	// And a drain instead of a kill, while every player acts.
	t.Run("drain", func(t *testing.T) { killHolder(t, 1, max(1, n/5), true) })
}

// killHolder runs the kill test: n sessions on node victim (0 leads) of
// three, then SIGKILL it, or drain it when drain is set.
func killHolder(t *testing.T, victim, n int, drain bool) {
	secret := filepath.Join(t.TempDir(), "cluster.secret")
	require.NoError(t, os.WriteFile(secret, []byte("kill-test-secret-0123456789abcdef0123\n"), 0o600))
	pc := newProcCluster(t)
	n1 := pc.add("n1", "--cluster-secret-file", secret, "--transfer-ticket-ttl", "20s")
	n2 := pc.add("n2", "--join", n1.http, "--cluster-secret-file", secret)
	n3 := pc.add("n3", "--join", n1.http, "--cluster-secret-file", secret)
	pc.start(n1, false)
	pc.waitStatus(n1, "leads", func(s client.Status) bool { return s.State == "leader" && s.LeaderHTTP != "" })
	pc.start(n2, false)
	pc.start(n3, false)
	for _, p := range []*proc{n1, n2, n3} {
		pc.waitStatus(p, "sees three voters and a leader", func(s client.Status) bool { return len(s.Servers) == 3 && s.Leader != "" })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	all := []*proc{n1, n2, n3}
	holder := all[victim]
	var others, otherIDs []string
	for i, p := range all {
		if i != victim {
			others, otherIDs = append(others, p.http), append(otherIDs, p.id)
		}
	}
	admin := client.New(others, client.WithClusterSecret("kill-test-secret-0123456789abcdef0123"), client.WithBackoff(20*time.Millisecond, 500*time.Millisecond))
	defer admin.Close()
	// A hundred players per world, so each event goes to a hundred.
	worlds := make([]string, max(1, n/100))
	rules := wire.Rules{Fields: map[string]wire.FieldRule{"n": {Type: "int", Policy: wire.PolicyCounter}}}
	for i := range worlds {
		worlds[i] = fmt.Sprintf("w%d", i)
		require.NoError(t, admin.CreateWorld(ctx, worlds[i], rules))
	}
	players := map[string]int{}  // sessions per world
	perWorld := map[string]int{} // events each world will have
	ps := make([]*killPlayer, n)
	before := 0
	for i := range ps {
		ps[i] = &killPlayer{name: fmt.Sprintf("p%d", i), world: worlds[i%len(worlds)], before: i%10 == 0}
		players[ps[i].world]++
		perWorld[ps[i].world]++
		if ps[i].before {
			perWorld[ps[i].world]++
			before++
		}
	}

	// Every session on the holder, the only address the clients are given.
	cl := client.New([]string{holder.http}, client.WithBackoff(20*time.Millisecond, 500*time.Millisecond))
	defer cl.Close()
	start := time.Now()
	eachPlayer(t, ps, func(k *killPlayer) error {
		p, err := cl.Play(ctx, k.world, client.PlayOptions{Player: k.name, AckInterval: 100 * time.Millisecond})
		k.p = p
		return err
	})
	t.Logf("%d sessions opened on %s in %s", n, holder.id, time.Since(start).Round(time.Millisecond))
	defer func() { // all at once: each waits for its server's answer to bye
		var wg sync.WaitGroup
		for _, k := range ps {
			wg.Go(func() { _ = k.p.Close() })
		}
		wg.Wait()
	}()
	var readers sync.WaitGroup
	for _, k := range ps {
		readers.Go(func() { k.read(ctx, perWorld[k.world]) })
	}
	// One player in ten acts before the kill, so the resumes start past 0.
	start = time.Now()
	eachPlayer(t, ps, func(k *killPlayer) error {
		if k.before {
			return k.act(ctx, 1)
		}
		return nil
	})
	t.Logf("%d actions before the kill answered within %s", before, time.Since(start).Round(time.Millisecond))
	for _, w := range worlds {
		ss, err := admin.Sessions(ctx, w)
		require.NoError(t, err)
		require.Equal(t, players[w], len(ss), "sessions of %s", w)
		for _, s := range ss {
			require.Equal(t, holder.id, s.Node, "%+v", s)
		}
	}

	killed := time.Now()
	acts := make(chan error, 1)
	if drain {
		go func() { // every player acts while the node drains
			var wg sync.WaitGroup
			errs := make(chan error, len(ps))
			for _, k := range ps {
				wg.Go(func() {
					if err := k.act(ctx, 2); err != nil {
						errs <- err
					}
				})
			}
			wg.Wait()
			close(errs)
			acts <- <-errs // nil when none failed
		}()
		dc := client.New([]string{holder.http}, client.WithClusterSecret("kill-test-secret-0123456789abcdef0123"))
		defer dc.Close()
		res, err := dc.Drain(ctx, "")
		require.NoError(t, err)
		t.Logf("drained %s during play in %s: %+v", holder.id, time.Since(killed).Round(time.Millisecond), res)
		require.Equal(t, n, res.Moved+len(res.Failed), "%+v", res)
		require.Positive(t, res.Moved, "%+v", res)
	} else {
		pc.kill(holder)
	}
	resumed := make(chan time.Duration, 1)
	go func() {
		for ctx.Err() == nil {
			all := true
			for _, k := range ps {
				if _, r := k.p.Session(); r < 1 {
					all = false
					break
				}
			}
			if all {
				resumed <- time.Since(killed)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		resumed <- -1
	}()
	if drain {
		require.NoError(t, <-acts)
	} else {
		eachPlayer(t, ps, func(k *killPlayer) error { return k.act(ctx, 2) }) // every player, after
	}
	acted := time.Since(killed)
	readers.Wait()
	delivered := time.Since(killed)
	verb := "SIGKILLed"
	if drain {
		verb = "drained"
	}
	t.Logf("%s %s holding %d sessions: every client resumed on %v within %s, had its next action answered within %s, and every event up to the last delivered within %s",
		verb, holder.id, n, otherIDs, (<-resumed).Round(time.Millisecond), acted.Round(time.Millisecond), delivered.Round(time.Millisecond))

	for _, k := range ps {
		require.NoError(t, k.err, k.name)
		_, resumes := k.p.Session()
		require.GreaterOrEqual(t, resumes, 1, k.name)
		require.Len(t, k.events, perWorld[k.world], k.name)
		seen := map[string]bool{}
		for i, ev := range k.events {
			require.Equal(t, uint64(i+1), ev.Seq, "%s: consecutive world seqs", k.name)
			key := fmt.Sprintf("%s/%d", ev.Player, ev.ClientSeq)
			require.False(t, seen[key], "%s: action %s applied twice", k.name, key)
			seen[key] = true
		}
	}
	for _, w := range worlds {
		ss, err := admin.Sessions(ctx, w)
		require.NoError(t, err)
		require.Equal(t, players[w], len(ss), "sessions of %s", w)
		for _, s := range ss {
			require.NotEqual(t, holder.id, s.Node, "%+v", s)
		}
	}
}
