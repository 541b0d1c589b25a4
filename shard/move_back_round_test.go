package shard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/anticheat/audit/auditor"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// placement is a movingMap whose publications wake those waiting for a
// world's new home (writers redirected by world_moved, as a router's
// next request would route by the published map).
type placement struct {
	*movingMap
	mu      sync.Mutex
	changed chan struct{}
}

func (p *placement) publish(ctx context.Context, world string, g uint64) error {
	if err := p.movingMap.publish(ctx, world, g); err != nil {
		return err
	}
	p.mu.Lock()
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	return nil
}

// waitFor waits until the map places world on g, or stop closes.
func (p *placement) waitFor(world string, g uint64, stop <-chan struct{}) bool {
	for {
		p.mu.Lock()
		ch := p.changed
		p.mu.Unlock()
		if at, err := shardOf(p.View(), world); err == nil && at == g {
			return true
		}
		select {
		case <-ch:
		case <-stop:
			return false
		}
	}
}

// TestAWorldMovesAToBToAToBUnderWritersLosingNothing (issue 14, log 17):
// two shards, each a group on both nodes; the world is created on shard 1
// (A) and moves A→B→A→B while four writers act on it through a map that
// goes stale at each move (redirected by world_moved, they retry the
// same action where the published map says). Each move back imports over
// the target's fenced copy. Afterwards: every acknowledged action is in
// the history once, at the seq its answer named, and nothing else is;
// the history is 1..N without a gap on both replicas of B, whose
// archives end with every event once (the earlier stays' own, the other
// home's copied); both replicas hash alike; both nodes' auditors keep
// one tree for the world, equal, that verifies leaf for leaf against the
// exported history and extends the tree signed before the first move.
func TestAWorldMovesAToBToAToBUnderWritersLosingNothing(t *testing.T) {
	both := []string{"n1", "n2"}
	c := newShardCluster(t, 2, Map{
		Membership: 1,
		Shards:     []MapShard{{ID: 1, Voters: both}, {ID: 2, Voters: both}},
		Worlds:     map[string]uint64{"arena": 1},
	})
	pl := &placement{movingMap: newMovingMap(c.smap), changed: make(chan struct{})}
	priv, pub, err := audit.GenerateKey("gsd-audit")
	require.NoError(t, err)
	signer, err := audit.ParseSigningKey(priv)
	require.NoError(t, err)
	verifier, err := audit.ParseVerifyingKey(pub)
	require.NoError(t, err)
	auds, backends := map[string]*auditor.Auditor{}, map[string]*Backend{}
	for _, id := range c.ids {
		b, err := NewBackend(NewRouterWith(c.mgrs[id], pl))
		require.NoError(t, err)
		backends[id], auds[id] = b, startAuditor(t, b, signer)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The members' versions: a move back needs log 17
	joinReplicas(ctx, t, c, 1, 2)
	mustCreateWorld(t, groupLeader(t, c, 1), "arena")
	act(t, groupLeader(t, c, 1), incr("arena", "seed", 1, "e"))
	waitAudited(t, auds["n1"], "arena", 1)
	before := signedBy(t, auds["n1"], "arena", verifier)

	var (
		mu   sync.Mutex
		acks []ack
		stop = make(chan struct{})
		wg   sync.WaitGroup
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			player := fmt.Sprintf("p%d", w)
			at := uint64(1)
			for seq := uint64(1); ; seq++ {
				for {
					select {
					case <-stop:
						return
					default:
					}
					l := leaderOf(c.replicas(at))
					if l == nil {
						continue
					}
					actx, acancel := context.WithTimeout(ctx, 5*time.Second)
					ev, _, err := l.Act(actx, incr("arena", player, seq, "e"))
					acancel()
					if me, ok := errors.AsType[*fsm.MovedError](err); ok {
						if !pl.waitFor("arena", me.Shard, stop) {
							return
						}
						at = me.Shard
						continue
					}
					if err != nil {
						continue // not applied, or unknown: the same action again
					}
					mu.Lock()
					acks = append(acks, ack{player: player, clientSeq: seq, seq: ev.Seq, group: at})
					mu.Unlock()
					break
				}
			}
		}()
	}
	acked := func() int { mu.Lock(); defer mu.Unlock(); return len(acks) }
	var fences []uint64
	for i, to := range []uint64{2, 1, 2} {
		from := 3 - to
		n := acked()
		require.Eventually(t, func() bool { return acked() >= n+40 }, 30*time.Second, time.Millisecond, "writers go on (move %d)", i)
		fence, err := Move(ctx, groupLeader(t, c, from), groupLeader(t, c, to), "arena", to, pl.publish)
		require.NoError(t, err, "move %d: %d to %d", i, from, to)
		fences = append(fences, fence)
		for _, id := range c.ids { // each node's copy from its replica of the old home
			home, _ := c.mgrs[id].Group(to)
			require.Eventually(t, func() bool {
				_, err := backends[id].CopyMovedArchives(ctx, nil, MovedArchivePage)
				holes, herr := home.ArchiveHoles("arena", fence)
				return err == nil && herr == nil && len(holes) == 0
			}, 20*time.Second, 10*time.Millisecond, "node %s: move %d's copy", id, i)
		}
	}
	n := acked()
	require.Eventually(t, func() bool { return acked() >= n+40 }, 30*time.Second, time.Millisecond, "writers go on at the end")
	close(stop)
	wg.Wait()
	t.Logf("fences %v, %d actions acknowledged", fences, len(acks))
	require.Less(t, fences[0], fences[1])
	require.Less(t, fences[1], fences[2])

	// The old homes refuse; A's copy is fenced towards B at the last fence.
	onA, err := groupLeader(t, c, 1).World("arena")
	require.NoError(t, err)
	require.Equal(t, &fsm.Fence{World: "arena", Shard: 2, Seq: fences[2]}, onA.Moved)
	last, err := groupLeader(t, c, 2).World("arena")
	require.NoError(t, err)
	requireSameHash(t, c.replicas(2), "arena", last.Seq)

	type key struct {
		player string
		seq    uint64
	}
	var hist []*fsm.Event
	for _, home := range c.replicas(2) {
		require.Eventually(t, func() bool {
			holes, err := home.ArchiveHoles("arena", last.Seq)
			return err == nil && len(holes) == 0
		}, 10*time.Second, 5*time.Millisecond, "the archive holds 1..%d", last.Seq)
		evs := history(t, home, "arena", 1, last.Seq)
		seen := map[key]uint64{}
		for i, ev := range evs {
			require.Equal(t, uint64(i+1), ev.Seq, "no gap, no repeat")
			require.Equal(t, fsm.StatusApplied, ev.Status)
			k := key{ev.Player, ev.ClientSeq}
			_, dup := seen[k]
			require.False(t, dup, "%v applied twice", k)
			seen[k] = ev.Seq
		}
		for _, a := range acks {
			s, ok := seen[key{a.player, a.clientSeq}]
			require.True(t, ok, "acknowledged %v lost", a)
			require.Equal(t, a.seq, s)
		}
		require.Len(t, seen, len(acks)+1, "nothing unacknowledged but the seed")
		if hist == nil {
			hist = evs
		}
		require.Equal(t, hist, evs, "both replicas of B hold the same events")
	}
	// Each stay's events as their home committed them.
	require.Equal(t, history(t, groupLeader(t, c, 1), "arena", fences[1]+1, fences[2]), hist[fences[1]:fences[2]])

	for _, id := range c.ids {
		waitAudited(t, auds[id], "arena", int64(last.Seq))
	}
	after := signedBy(t, auds["n1"], "arena", verifier)
	require.Equal(t, after, signedBy(t, auds["n2"], "arena", verifier), "both nodes keep the same tree")
	l, err := auds["n1"].Log("arena")
	require.NoError(t, err)
	p, err := l.ProveConsistency(before.Size, after.Size)
	require.NoError(t, err)
	require.NoError(t, audit.CheckConsistency(before, after, p), "the tree after three moves extends the one before")
	rep, err := audit.VerifyLog(bytes.NewReader(exportOf(t, hist)), after, nil, before)
	require.NoError(t, err)
	require.True(t, rep.OK(), "%v", rep.Problems)
}
