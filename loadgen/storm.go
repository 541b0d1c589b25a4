package loadgen

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
)

// StormParams size a conflict storm: each round, Players players try to
// take the same new item at once (set owner with expect "*"), in HTTP
// batches of Batch actions sent concurrently.
type StormParams struct {
	World   string
	Players int
	Rounds  int
	Batch   int
	// RequestTimeout bounds one request with its retries.
	RequestTimeout time.Duration
}

// ConflictStorm runs the rounds and checks that each has exactly one
// winner, that every other player got a conflict, and that the item's
// owner (read linearizably) is the winner.
func ConflictStorm(ctx context.Context, t *Target, p StormParams) (*Result, error) {
	if p.World == "" || p.Players < 1 || p.Rounds < 1 || p.Batch < 1 {
		return nil, fmt.Errorf("loadgen: bad storm parameters %+v", p)
	}
	if p.RequestTimeout <= 0 {
		p.RequestTimeout = 30 * time.Second
	}
	r := newResult("conflict-storm")
	r.Level = "client (HTTP actions:batch)"
	if p.Batch == 1 {
		r.Level = "client (HTTP single actions)"
	}
	r.Params["players"] = p.Players
	r.Params["rounds"] = p.Rounds
	r.Params["batch"] = p.Batch
	addrs, _, err := t.leaderFirst(ctx)
	if err != nil {
		return nil, err
	}
	if err := createWorld(ctx, addrs, p.World); err != nil {
		return nil, err
	}
	_, stopSampler := t.sampler(ctx)
	var bytes ByteCounter
	conns := (p.Players + p.Batch - 1) / p.Batch
	c := client.New(addrs, client.WithHTTPClient(bytes.HTTPClient(conns)), client.WithAttemptTimeout(5*time.Second))
	defer c.Close()
	lat := NewHist()
	var tally Tally
	winners := map[int]int{} // winners per round -> rounds
	bad := 0
	var firstBad string
	round := 0
	var shown, badShown atomic.Int64
	stopBar := t.progress(ctx, "conflict-storm", 0, func() string {
		return fmt.Sprintf("round %d/%d  p99 %.1fms  bad rounds %d", shown.Load(), p.Rounds, lat.Summary().P99, badShown.Load())
	})
	start := time.Now()
	for round = 1; round <= p.Rounds && ctx.Err() == nil; round++ {
		item := "storm" + strconv.Itoa(round)
		type answer struct {
			player string
			ev     wire.Event
			err    error
		}
		answers := make([]answer, p.Players)
		var wg sync.WaitGroup
		intended := time.Now()
		for b := 0; b < p.Players; b += p.Batch {
			acts := make([]client.ActionRequest, 0, p.Batch)
			for i := b; i < min(b+p.Batch, p.Players); i++ {
				pl := "s" + strconv.Itoa(i)
				acts = append(acts, client.ActionRequest{Player: pl, Seq: uint64(round), Priority: client.PriorityCritical,
					Ops: []wire.Op{client.ExpectVersion(client.Set(item, "owner", wire.String(pl)), 0)}})
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				rctx, cancel := context.WithTimeout(ctx, p.RequestTimeout)
				defer cancel()
				tally.Sent.Add(int64(len(acts)))
				if len(acts) == 1 {
					ev, err := c.Act(rctx, p.World, acts[0])
					answers[b] = answer{acts[0].Player, ev, err}
				} else {
					res, err := c.ActBatch(rctx, p.World, acts)
					for j := range acts {
						a := answer{player: acts[j].Player, err: err}
						if err == nil {
							a.ev, a.err = res[j].Event, res[j].Err
						}
						answers[b+j] = a
					}
				}
				now := time.Now()
				for j := range acts {
					if answers[b+j].err == nil {
						lat.Record(now.Sub(intended))
					}
				}
			}()
		}
		wg.Wait()
		won, winner, failed := 0, "", 0
		for _, a := range answers {
			switch {
			case a.err != nil:
				failed++
				tally.fail(client.Code(a.err))
			case a.ev.Status == "applied":
				won++
				winner = a.player
				tally.Applied.Add(1)
			case a.ev.Status == "conflict":
				tally.Conflicts.Add(1)
			default:
				tally.Rejected.Add(1)
			}
		}
		winners[won]++
		ok := won == 1 && failed == 0
		if ok {
			rctx, cancel := context.WithTimeout(ctx, p.RequestTimeout)
			e, err := c.Entity(rctx, p.World, item, client.Linearizable)
			cancel()
			owner := ""
			if err == nil {
				owner, _ = e.Fields["owner"].(string)
			}
			if owner != winner {
				ok = false
				if firstBad == "" {
					firstBad = fmt.Sprintf("round %d: winner %s, owner read %q (err %v)", round, winner, owner, err)
				}
			}
		} else if firstBad == "" {
			firstBad = fmt.Sprintf("round %d: %d winners, %d failed", round, won, failed)
		}
		if !ok {
			bad++
			badShown.Add(1)
		}
		shown.Store(int64(round))
	}
	elapsed := time.Since(start)
	stopBar()
	r.Procs = stopSampler()
	round--
	r.Seconds = elapsed.Seconds()
	tally.into(r)
	r.Latency["action_commit"] = lat.Summary()
	r.Figures["events_per_s"] = float64(tally.Committed()) / elapsed.Seconds()
	r.Figures["rounds_per_s"] = float64(round) / elapsed.Seconds()
	r.Figures["bytes_per_s_per_player"] = float64(bytes.Total()) / elapsed.Seconds() / float64(p.Players)
	for w, n := range winners {
		r.Counts["rounds_with_"+strconv.Itoa(w)+"_winners"] = int64(n)
	}
	detail := fmt.Sprintf("%d rounds, every one with exactly one winner whose ownership a linearizable read confirms", round)
	if bad > 0 {
		detail = fmt.Sprintf("%d of %d rounds wrong; first: %s", bad, round, firstBad)
	}
	r.check("exactly one winner per round", bad == 0, detail)
	return r, ctx.Err()
}
