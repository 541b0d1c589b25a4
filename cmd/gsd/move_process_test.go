package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// moveAcks records the seq of every acknowledged action of a move test's
// writers.
type moveAcks struct {
	mu      sync.Mutex
	seqs    []uint64
	by      map[string]int    // acknowledged actions by player
	players map[uint64]string // the player of each acknowledged seq
}

func (a *moveAcks) add(player string, seq uint64) {
	a.mu.Lock()
	a.seqs = append(a.seqs, seq)
	if a.players == nil {
		a.players = map[uint64]string{}
	}
	a.players[seq] = player
	if a.by == nil {
		a.by = map[string]int{}
	}
	a.by[player]++
	a.mu.Unlock()
}

func (a *moveAcks) of(player string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.by[player]
}

func (a *moveAcks) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.seqs)
}

func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

// pause paces a writer's retries; it is not a wait for a state.
func pause(ctx context.Context) {
	select {
	case <-time.After(5 * time.Millisecond):
	case <-ctx.Done():
	}
}

// writeThroughMove acts as player until stop is closed, each action
// retried with its seq until acknowledged (an action retried after it
// applied is answered from its idempotency record, never applied twice),
// so no action it sent is left unacknowledged.
func writeThroughMove(ctx context.Context, stop <-chan struct{}, c *client.Client, world, player string, acks *moveAcks) {
	for seq := uint64(1); !stopped(stop) && ctx.Err() == nil; seq++ {
		for ctx.Err() == nil {
			actx, cancel := context.WithTimeout(ctx, 3*time.Second)
			ev, err := c.Act(actx, world, incr(player, seq, "e-"+player, 1))
			cancel()
			if err == nil {
				acks.add(player, ev.Seq)
				break
			}
			pause(ctx)
		}
	}
}

// playThroughMove does the same over a play connection, opening a new
// one, through the next of nodes, whenever the server ends the last: a
// moved world's old home refuses its players' actions, and they come
// back through a node that serves the new home (a play connection needs
// a replica of the world's group).
func playThroughMove(ctx context.Context, stop <-chan struct{}, nodes []*client.Client, world, player string, acks *moveAcks) {
	next := 0
	var p *client.Play
	defer func() {
		if p != nil {
			_ = p.Close()
		}
	}()
	for seq := uint64(1); !stopped(stop) && ctx.Err() == nil; seq++ {
		for ctx.Err() == nil {
			if p == nil {
				var err error
				c := nodes[next%len(nodes)]
				next++
				octx, cancel := context.WithTimeout(ctx, 3*time.Second)
				p, err = c.Play(octx, world, client.PlayOptions{Player: player, Keyframe: true})
				cancel()
				if err != nil {
					p = nil
					pause(ctx)
					continue
				}
				go func(p *client.Play) { // drain its feed
					for {
						if _, err := p.Next(ctx); err != nil {
							return
						}
					}
				}(p)
			}
			actx, cancel := context.WithTimeout(ctx, 5*time.Second)
			ev, err := p.Act(actx, incr(player, seq, "e-"+player, 1))
			cancel()
			if err == nil {
				acks.add(player, ev.Seq)
				break
			}
			_ = p.Close()
			p = nil
			pause(ctx)
		}
	}
}

// moveStep posts a move's node-to-node step to node addr, as the node
// that runs a move does (api/peer's move route).
func moveStep(ctx context.Context, addr, world string, step wire.MoveStep) (int, []byte, error) {
	b, err := json.Marshal(step)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/internal/v1/cluster/worlds/"+world+"/move", bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Gsd-Forwarded", "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// A world moves between shards led by different processes while players
// write to it over HTTP and a play connection: the move runs from a node
// that runs neither the export nor (necessarily) the import; a move cut
// off after its fence leaves the world refusing writes with world_moved
// and is completed by calling again; every acknowledged action is in
// the world exactly once, at its seq; the state hash at the fence is the
// same at the old and the new home.
// streamFrom reads world's event stream from seq from through c, n events
// at most, and returns their seqs: fewer when the stream ends early (an
// archive_gap at the node) or takes longer than a few seconds.
func streamFrom(ctx context.Context, c *client.Client, world string, from, n uint64) []uint64 {
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := c.Events(sctx, world, from)
	if err != nil {
		return nil
	}
	defer s.Close()
	var out []uint64
	for uint64(len(out)) < n {
		ev, err := s.Next()
		if err != nil {
			return out
		}
		out = append(out, ev.Seq)
	}
	return out
}

// placeAndCreate places world on shard through placer, then creates it
// through creator, each tried until it answers (the meta group may be
// electing).
func placeAndCreate(ctx context.Context, t *testing.T, placer, creator *client.Client, world string, shard uint64) {
	t.Helper()
	require.Eventually(t, func() bool {
		got, err := placer.PlaceWorld(ctx, world, &shard)
		return err == nil && got == shard
	}, 30*time.Second, 20*time.Millisecond, "place %s on shard %d", world, shard)
	require.Eventually(t, func() bool {
		err := creator.CreateWorld(ctx, world, wire.Rules{})
		return err == nil || client.Code(err) == "world_exists"
	}, 30*time.Second, 20*time.Millisecond, "create %s", world)
}

func TestRunThreeNodesWithMetaMoveAWorldUnderWriters(t *testing.T) {
	t.Parallel()
	mc := startMetaCluster(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	n1, n3 := mc.clients[0], mc.clients[2]
	placeAndCreate(ctx, t, n3, n1, "mv", 1)

	var acks moveAcks
	stop := make(chan struct{})
	var stopOnce sync.Once
	stopWriters := func() { stopOnce.Do(func() { close(stop) }) }
	var wg sync.WaitGroup
	for i, c := range mc.clients {
		wg.Go(func() { writeThroughMove(ctx, stop, c, "mv", fmt.Sprintf("w%d", i+1), &acks) })
	}
	wg.Go(func() { playThroughMove(ctx, stop, mc.clients, "mv", "player", &acks) })
	defer func() {
		stopWriters()
		cancel()
		wg.Wait()
	}()
	require.Eventually(t, func() bool { return acks.len() >= 30 }, 30*time.Second, 10*time.Millisecond, "writes before the move")

	// The move cut off after its fence: only the export step ran, at
	// shard 1's leader (n1 or n2).
	var fenced wire.WorldExport
	require.Eventually(t, func() bool {
		for _, id := range []string{"n1", "n2"} {
			status, body, err := moveStep(ctx, mc.httpAddrs[id], "mv", wire.MoveStep{Step: wire.MoveStepExport, To: 2})
			if err == nil && status == http.StatusOK {
				return json.Unmarshal(body, &fenced) == nil
			}
		}
		return false
	}, 30*time.Second, 20*time.Millisecond, "fence mv at shard 1's leader")
	require.NotZero(t, fenced.Seq)
	// The client retries world_moved (a router learns the new home); a
	// short probe gets the refusal back. On a loaded machine a probe can
	// time out before any answer, or meet shard 1 between leaders
	// (not_leader): it is tried again with the same seq (nothing can
	// apply at the fenced home) until the home answers.
	var err error
	require.Eventually(t, func() bool {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		defer pcancel()
		_, err = n3.Act(pctx, "mv", incr("probe", 1, "e-probe", 1))
		return err == nil || (!client.IsOutcomeUnknown(err) && client.Code(err) != "not_leader")
	}, 60*time.Second, 10*time.Millisecond, "an answer to the probe")
	require.Equal(t, "world_moved", client.Code(err), "the old home refuses writes after the fence: %v", err)
	re, ok := errors.AsType[*client.Error](err)
	require.True(t, ok)
	require.Equal(t, http.StatusMisdirectedRequest, re.Status)
	// The old home's state at the fence (n1 runs shard 1; the world
	// cannot change there any more).
	require.Eventually(t, func() bool {
		w, err := n1.World(ctx, "mv")
		return err == nil && w.Seq == fenced.Seq
	}, 30*time.Second, 20*time.Millisecond, "n1's replica has applied the fence")
	before := map[string]wire.Entity{}
	for _, p := range []string{"w1", "w2", "w3", "player"} {
		e, err := n1.Entity(ctx, "mv", "e-"+p, client.Stale)
		if client.Code(err) == "not_found" {
			continue // no action of p before the fence
		}
		require.NoError(t, err)
		require.Equal(t, fenced.Seq, e.Seq)
		before[p] = e
	}

	// Called again, the move completes where the fence says.
	var moved wire.WorldMoved
	require.Eventually(t, func() bool {
		moved, err = n3.MoveWorld(ctx, "mv", 2)
		return err == nil
	}, 30*time.Second, 20*time.Millisecond, "move mv: %v", err)
	require.Equal(t, wire.WorldMoved{World: "mv", From: 1, To: 2, Seq: fenced.Seq}, moved)
	atMove, playAtMove := acks.len(), acks.of("player")
	require.Eventually(t, func() bool { return acks.len() >= atMove+30 && acks.of("player") > playAtMove }, 30*time.Second, 10*time.Millisecond,
		"writes after the move, over HTTP and play")
	stopWriters()
	wg.Wait()

	again, err := n1.MoveWorld(ctx, "mv", 2)
	require.NoError(t, err)
	require.True(t, again.Done, "mv is on shard 2 already")
	_, err = n1.MoveWorld(ctx, "mv", 9)
	require.Equal(t, "not_found", client.Code(err), "no shard 9")
	m, err := n1.Shards(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(2), m.Worlds["mv"])

	// Every acknowledged action once, at its seq: the acks' seqs are
	// distinct and are every seq of the world.
	seqs := slices.Clone(acks.seqs)
	slices.Sort(seqs)
	require.Equal(t, len(seqs), len(slices.Compact(slices.Clone(seqs))), "an action acknowledged at two seqs, or two at one")
	require.Equal(t, uint64(1), seqs[0])
	require.Equal(t, uint64(len(seqs)), seqs[len(seqs)-1], "every seq is an acknowledged action")
	require.Greater(t, seqs[len(seqs)-1], fenced.Seq)
	require.Eventually(t, func() bool {
		w, err := n3.World(ctx, "mv")
		return err == nil && w.Seq == uint64(len(seqs))
	}, 30*time.Second, 20*time.Millisecond, "the new home's replica on n3 has every event")
	// The events before the move followed the world: n3 runs shard 2
	// only and streams the world from seq 1 once it copied them from n2
	// (which copied them from its replica of shard 1); until then it
	// answers archive_gap.
	var streamed []uint64
	require.Eventually(t, func() bool {
		streamed = streamFrom(ctx, n3, "mv", 1, uint64(len(seqs)))
		return uint64(len(streamed)) == uint64(len(seqs))
	}, 30*time.Second, 100*time.Millisecond, "n3 streams mv from seq 1 (got %d of %d events)", len(streamed), len(seqs))
	for i, seq := range streamed {
		require.Equal(t, uint64(i+1), seq, "every event once, in order")
	}
	// A quiet world (no sessions, so nothing changes its hash between
	// events): its state hash at the fence is the same at both homes.
	quiet := uint64(1)
	_, err = n3.PlaceWorld(ctx, "quiet", &quiet)
	require.NoError(t, err)
	// n3 may not lead the meta group: its placement answers once n3's own
	// copy of the map lists quiet (else n3 would route it by its hash, to
	// shard 2), so the creation right after it goes to shard 1.
	require.NoError(t, n3.CreateWorld(ctx, "quiet", wire.Rules{}))
	for seq := uint64(1); seq <= 5; seq++ {
		_, err := n3.Act(ctx, "quiet", incr("q", seq, "e-q", 2))
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		w, err := n1.World(ctx, "quiet")
		return err == nil && w.Seq == 5
	}, 30*time.Second, 20*time.Millisecond, "n1's replica of shard 1 has quiet's events")
	before5, err := n1.Hash(ctx, "quiet", 5) // n1 runs shard 1
	require.NoError(t, err)
	qm, err := n1.MoveWorld(ctx, "quiet", 2)
	require.NoError(t, err)
	require.Equal(t, uint64(5), qm.Seq)
	var after5 client.HashPoint
	require.Eventually(t, func() bool {
		after5, err = n3.Hash(ctx, "quiet", 5) // n3 runs shard 2 only
		return err == nil
	}, 30*time.Second, 20*time.Millisecond, "quiet's hash at the new home")
	require.Equal(t, before5, after5, "the state hash at the fence, at both homes")

	// Each player's counter counts its acknowledged actions: at the old
	// home those up to the fence, at the new home all of them.
	upTo, all := map[string]int64{}, map[string]int64{}
	for seq, p := range acks.players {
		all[p]++
		if seq <= fenced.Seq {
			upTo[p]++
		}
	}
	for p, n := range upTo {
		got, _ := before[p].Int("n")
		require.Equal(t, n, got, "%s's counter at the fence", p)
	}
	for p, n := range all {
		e, err := n3.Entity(ctx, "mv", "e-"+p, client.Linearizable)
		require.NoError(t, err)
		got, _ := e.Int("n")
		require.Equal(t, n, got, "%s's counter after the move", p)
	}
}
