package jepsen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
)

// checkHash compares the world's state hash at the fence's seq N at the
// old home (read right after the fence) with the new home's: equal, unless
// session commands (opens, acks, closes: they change the hash without an
// event) ran between event N and the fence, which only a world with play
// clients has. The old home answers its live hash for N, the new home its
// hash history's entry recorded at event N (shard/DESIGN.md, "A finding
// on the way"); a difference in a world without sessions is a problem.
func (m *moveNemesis) checkHash(ctx context.Context, e *Env, mv *worldMove) {
	if mv.hashErr != nil {
		e.Notef("move %s: the old home's hash at seq %d not read: %v", mv.world, mv.fence, mv.hashErr)
		return
	}
	var after wire.Hash
	err := poll(ctx, 30*time.Second, func() error {
		h, err := e.C.Direct(m.via(e, -1)).Hash(ctx, mv.world, mv.fence)
		after = h.Hash
		return err
	})
	switch {
	case err != nil:
		e.Problemf("move %s: the new home's hash at seq %d not read: %v", mv.world, mv.fence, err)
	case after == mv.hash:
		e.Notef("move %s: hash at seq %d equal at the old and the new home (%s)", mv.world, mv.fence, after)
	case !e.hasPlay(mv.world):
		e.Problemf("move %s: hash at seq %d is %s at the old home, %s at the new home (a world without sessions)", mv.world, mv.fence, mv.hash, after)
	default:
		e.Notef("move %s: hash at seq %d is %s at the old home, %s at the new home: session commands between event %d and the fence (a world with play clients)",
			mv.world, mv.fence, mv.hash, after, mv.fence)
	}
}

// checkMoved checks a move's answer: the first call that completes it
// names the fence's seq; a call after that answers done, or, through a
// node whose map has not caught up, repeats the steps and names the same
// fence (a repeated fence answers the first, a committed import is
// recognised). Any other fence seq means the world was fenced again.
func (m *moveNemesis) checkMoved(e *Env, mv *worldMove, got wire.WorldMoved, again bool) {
	switch {
	case again && !got.Done && (got.From != mv.from || got.To != mv.to || got.Seq != mv.fence):
		e.Problemf("move %s %d -> %d fenced at seq %d: called again after it completed, answered %+v (want done, or the same fence)", mv.world, mv.from, mv.to, mv.fence, got)
	case again && !got.Done:
		e.Notef("move %s to %d: called again after it completed, the steps repeated (a map behind the publish) and named the same fence", mv.world, mv.to)
	case !again && !got.Done && (got.From != mv.from || got.To != mv.to || got.Seq != mv.fence):
		e.Problemf("move %s %d -> %d fenced at seq %d: completed as %+v", mv.world, mv.from, mv.to, mv.fence, got)
	case !again && got.Done:
		e.Notef("move %s to %d: the first completed call answered done (an earlier attempt had published it)", mv.world, mv.to)
	}
}

// Wait checks, after the last fault, that the events before each world's
// last move followed it: every live node streams the world from seq 1 to
// that move's fence, each seq once (copied into the new home's archive
// by each node, up to a sweep after the move).
func (m *moveNemesis) Wait() {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.env
	if e == nil {
		return
	}
	last := map[string]worldMove{}
	for _, mv := range m.moved {
		last[mv.world] = mv
	}
	for _, w := range worlds {
		mv, ok := last[w]
		if !ok {
			continue
		}
		// One bound per world for all its nodes: a node that never gets
		// there must not eat another's time.
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		pending := map[int]string{}
		for i := range e.C.Nodes {
			if e.C.Running(i) && !e.C.Paused(i) {
				pending[i] = "not read"
			}
		}
		first := true
		_ = poll(ctx, 60*time.Second, func() error {
			if !first {
				pause(ctx, 500*time.Millisecond) // whole feeds: not every 50 ms
			}
			first = false
			for i := range pending {
				evs, err := readFeed(ctx, e.C.Direct(i), w, mv.fence)
				if err == nil {
					for k, ev := range evs {
						if ev.Seq != uint64(k+1) {
							err = fmt.Errorf("event %d of the feed has seq %d", k+1, ev.Seq)
							break
						}
					}
				}
				if err != nil {
					pending[i] = fmt.Sprintf("%d events, %v", len(evs), err)
					continue
				}
				delete(pending, i)
			}
			if len(pending) > 0 {
				return fmt.Errorf("%d nodes left", len(pending))
			}
			return nil
		})
		cancel()
		for i, why := range pending {
			e.Problemf("move %s: %s does not stream its events 1..%d (before its move to shard %d) 60 s later: %s",
				w, e.C.Nodes[i].ID, mv.fence, mv.to, why)
		}
	}
}

// mover is a client for node i's real address (the harness's control
// traffic) with room for a move: one attempt of up to 10 s.
func mover(c *Cluster, i int) *client.Client {
	return client.New([]string{c.Nodes[i].HTTP}, client.WithMaxAttempts(1), client.WithAttemptTimeout(10*time.Second))
}

// groupLeader is the running node whose gsd_is_leader of group g is 1,
// when exactly one says so.
func groupLeader(ctx context.Context, c *Cluster, g uint64) (int, error) {
	var leaders []int
	for i, n := range c.Nodes {
		if !c.Running(i) || c.Paused(i) {
			continue
		}
		v, err := groupGauges(ctx, n.HTTP, "gsd_is_leader")
		if err == nil && v[strconv.FormatUint(g, 10)] == 1 {
			leaders = append(leaders, i)
		}
	}
	if len(leaders) != 1 {
		return -1, fmt.Errorf("group %d: %d nodes claim to lead it", g, len(leaders))
	}
	return leaders[0], nil
}

// pollLeader waits (up to 20 s) for group g to have one leader.
func pollLeader(ctx context.Context, c *Cluster, g uint64) (int, error) {
	l := -1
	err := poll(ctx, 20*time.Second, func() error {
		var err error
		l, err = groupLeader(ctx, c, g)
		return err
	})
	return l, err
}

// moveStep posts a move's node-to-node step to the node at addr, as the
// node running a move does (api/peer's move route), and reads its export.
func moveStep(ctx context.Context, addr, world string, step wire.MoveStep) (wire.WorldExport, error) {
	var out wire.WorldExport
	b, err := json.Marshal(step)
	if err != nil {
		return out, err
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(sctx, http.MethodPost, "http://"+addr+"/internal"+wire.PathWorldMove(world), bytes.NewReader(b))
	if err != nil {
		return out, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Gsd-Forwarded", "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return out, err
	}
	if resp.StatusCode != http.StatusOK {
		return out, fmt.Errorf("move step %s at %s: %d %s", step.Step, addr, resp.StatusCode, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return out, fmt.Errorf("move step %s at %s: %w", step.Step, addr, err)
	}
	return out, nil
}

// CheckPlay looks at the play sessions of each moved world (after the
// play checks, which hold every session to no gap and no duplicate): a
// session with events on both sides of a move's fence N crossed the move
// by resuming at the new home from a seq up to N, and must have got the
// events it missed there as events, not a keyframe (the play workload
// does not ask for keyframes, so a resume the new home cannot serve ends
// the session with 4410 archive_gap: noted with the session's end).
func (m *moveNemesis) CheckPlay(pw *PlayWorkload, r *Result) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, mv := range m.moved {
		crossed, ended := 0, 0
		for _, pc := range pw.Clients {
			if pc.World != mv.world {
				continue
			}
			for _, s := range pc.Sessions {
				before, after, keyframe := false, false, false
				for _, ev := range s.Events {
					before = before || ev.Seq <= mv.fence
					after = after || ev.Seq > mv.fence
					keyframe = keyframe || ev.Status == client.KeyframeStatus
				}
				switch {
				case before && after && keyframe:
					r.Problems = append(r.Problems, fmt.Sprintf("move %s at seq %d: play session %s of %s crossed it with a keyframe", mv.world, mv.fence, s.ID, pc.Player))
				case before && after:
					crossed++
				case before && s.End != "":
					ended++
				}
			}
		}
		r.Notes = append(r.Notes, fmt.Sprintf("move %s at seq %d: %d play sessions crossed it without a keyframe, %d ended at or before it", mv.world, mv.fence, crossed, ended))
	}
}
