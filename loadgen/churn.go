package loadgen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
)

// ChurnParams size the reconnect storm.
type ChurnParams struct {
	Clients int           // churning clients
	Dwell   time.Duration // mean time connected before dropping
	Offline time.Duration // mean time away before reconnecting
}

// Churn runs a battle while Clients reconnect again and again: each
// connection is a new HTTP client (new TCP connections) that sends one
// action of its own, then resumes the world's event stream at the last seq
// it saw + 1, reads it for a while and drops. The stream is read as raw
// NDJSON (not through the client's de-duplication), so a gap or a repeat
// the server sends is seen and counted.
func Churn(ctx context.Context, t *Target, p LoadParams, cp ChurnParams, tm Timing) (*Result, error) {
	r := newResult("churn")
	p.into(r)
	tm.into(r)
	r.Params["churners"] = cp.Clients
	r.Params["dwell_ms"] = float64(cp.Dwell) / 1e6
	r.Params["offline_ms"] = float64(cp.Offline) / 1e6
	_, stopSampler := t.sampler(ctx)
	l, stop, err := startLoad(ctx, t, p)
	if err != nil {
		stopSampler()
		return nil, err
	}
	addrs := l.c.Addrs()
	if tm.Warmup > 0 {
		measure(ctx, t, l, "warmup", tm.Warmup)
	}
	var (
		reconnects, events, gaps, dups, resumeErrs atomic.Int64
		cbytes                                     ByteCounter
		firstEvent                                 = NewHist()
		actLat                                     = NewHist()
		tally                                      Tally
		wg                                         sync.WaitGroup
		detailMu                                   sync.Mutex
		detail                                     string
	)
	cctx, ccancel := context.WithCancel(ctx)
	for i := 0; i < cp.Clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(p.Seed, uint64(i)+1000))
			var last, seq uint64
			player := "churn" + strconv.Itoa(i)
			for cctx.Err() == nil {
				hc := cbytes.HTTPClient(1) // fresh transport: fresh connections
				c := client.New(addrs, client.WithHTTPClient(hc), client.WithAttemptTimeout(5*time.Second))
				seq++
				t0 := time.Now()
				actx, acancel := context.WithTimeout(cctx, p.RequestTimeout)
				tally.Sent.Add(1)
				ev, err := c.Act(actx, p.World, client.ActionRequest{Player: player, Seq: seq,
					Ops: []wire.Op{client.Incr(player, "hp", 1)}})
				acancel()
				switch {
				case err != nil && cctx.Err() == nil:
					tally.fail(client.Code(err))
				case err == nil:
					tally.Applied.Add(1)
					actLat.Record(time.Since(t0))
					if last == 0 {
						last = ev.Seq // start following at our own event
					}
				}
				reconnects.Add(1)
				dwell := time.Duration(float64(cp.Dwell) * (0.5 + rng.Float64()))
				sctx, scancel := context.WithTimeout(cctx, dwell)
				from := last + 1
				t1 := time.Now()
				first := true
				err = rawFollow(sctx, hc, addrs[rng.IntN(len(addrs))], p.World, from, func(seq uint64, _ int64) {
					if first {
						firstEvent.Record(time.Since(t1))
						first = false
					}
					switch {
					case seq == last+1:
						last = seq
						events.Add(1)
					case seq <= last:
						dups.Add(1)
					default:
						gaps.Add(1)
						detailMu.Lock()
						detail = fmt.Sprintf("%s wanted seq %d, got %d", player, last+1, seq)
						detailMu.Unlock()
						last = seq
					}
				})
				scancel()
				if err != nil && sctx.Err() == nil {
					resumeErrs.Add(1)
					detailMu.Lock()
					detail = err.Error()
					detailMu.Unlock()
				}
				hc.CloseIdleConnections()
				sleepCtx(cctx, time.Duration(float64(cp.Offline)*(0.5+rng.Float64())))
			}
		}()
	}
	m := measure(ctx, t, l, "churn", tm.Duration)
	ccancel()
	wg.Wait()
	stop()
	m.into(r, p.Players, p.Observers)
	r.Procs = stopSampler()
	r.Counts["reconnects"] = reconnects.Load()
	r.Counts["resumed_events"] = events.Load()
	r.Counts["gaps"] = gaps.Load()
	r.Counts["duplicates_in_streams"] = dups.Load()
	r.Counts["resume_errors"] = resumeErrs.Load()
	r.Counts["churner_actions_applied"] = tally.Applied.Load()
	r.Counts["churner_actions_failed"] = tally.Failed.Load()
	r.Figures["reconnects_per_s"] = float64(reconnects.Load()) / r.Seconds
	r.Figures["bytes_per_s_per_churner"] = float64(cbytes.Total()) / r.Seconds / float64(max(cp.Clients, 1))
	r.Latency["resume_first_event"] = firstEvent.Summary()
	r.Latency["churner_action"] = actLat.Summary()
	ok := gaps.Load() == 0 && dups.Load() == 0 && resumeErrs.Load() == 0 && events.Load() > 0
	if detail == "" {
		detail = fmt.Sprintf("%d reconnects, %d events resumed", reconnects.Load(), events.Load())
	}
	r.check("resumed streams without gaps or duplicates", ok, detail)
	observerErrors(l, r)
	return r, ctx.Err()
}
