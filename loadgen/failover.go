package loadgen

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
)

// FailoverParams time the fault.
type FailoverParams struct {
	KillAfter time.Duration // into the measured phase
	Down      time.Duration // how long the killed node stays down (0: not restarted)
	// RecoveryWait bounds how long the load goes on after the measured
	// phase when no write scheduled after the kill has been applied yet
	// (0: 30 s).
	RecoveryWait time.Duration
}

func (fp FailoverParams) recoveryWait() time.Duration {
	if fp.RecoveryWait > 0 {
		return fp.RecoveryWait
	}
	return 30 * time.Second
}

// Failover runs a battle, SIGKILLs the leader KillAfter into it and
// restarts it Down later. It reports the recovery time (kill → first
// applied answer to an action scheduled after the kill), the longest pause
// between applied answers, and checks that every acknowledged event is in
// the world's log at the seq it was acknowledged with (no lost acks).
func Failover(ctx context.Context, t *Target, p LoadParams, fp FailoverParams, tm Timing) (*Result, error) {
	if t.KillLeader == nil {
		return nil, errors.New("loadgen: failover needs a cluster the harness started (no --addr)")
	}
	r := newResult("failover")
	p.into(r)
	tm.into(r)
	r.Params["kill_after_s"] = fp.KillAfter.Seconds()
	r.Params["down_s"] = fp.Down.Seconds()
	_, stopSampler := t.sampler(ctx)
	l, stop, err := startLoad(ctx, t, p)
	if err != nil {
		stopSampler()
		return nil, err
	}
	l.keepAcks.Store(true) // the load already runs: atomic
	if tm.Warmup > 0 {
		measure(ctx, t, l, "warmup", tm.Warmup)
	}
	var (
		killed  string
		kerr    error
		fwg     sync.WaitGroup
		killAt  time.Time
		restart error
	)
	fwg.Add(1)
	go func() {
		defer fwg.Done()
		sleepCtx(ctx, fp.KillAfter)
		if ctx.Err() != nil {
			return
		}
		l.maxGap.Store(0)
		killAt = time.Now()
		l.killAt.Store(killAt.UnixNano())
		killed, kerr = t.KillLeader(ctx)
		t.logf("failover: killed leader %s", killed)
		if kerr != nil || fp.Down <= 0 {
			return
		}
		sleepCtx(ctx, fp.Down)
		if t.Restart != nil && ctx.Err() == nil {
			restart = t.Restart(ctx, killed)
		}
	}()
	m := measure(ctx, t, l, "failover", tm.Duration)
	fwg.Wait()
	// A slow election (a loaded machine) may outlast the measured phase:
	// the load goes on, unmeasured, until a write scheduled after the kill
	// is applied or RecoveryWait passes, so "not recovered" means it.
	if killed != "" && kerr == nil {
		wctx, wcancel := context.WithTimeout(ctx, fp.recoveryWait())
		for l.firstAfter.Load() == 0 && wctx.Err() == nil {
			sleepCtx(wctx, 10*time.Millisecond)
		}
		wcancel()
	}
	stop()
	m.into(r, p.Players, p.Observers)
	r.Procs = stopSampler()
	if kerr != nil {
		return r, fmt.Errorf("kill leader: %w", kerr)
	}
	if restart != nil {
		r.check("killed node restarted", false, restart.Error())
	}
	r.Params["killed"] = killed
	if fa := l.firstAfter.Load(); fa != 0 {
		r.Figures["recovery_ms"] = float64(fa-killAt.UnixNano()) / 1e6
	} else {
		r.check("writes recovered after the kill", false, "no applied answer to an action scheduled after the kill")
	}
	r.Figures["max_commit_gap_ms"] = float64(l.maxGap.Load()) / 1e6

	vctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	lost, checked, err := verifyAcks(vctx, l.c.Addrs(), p.World, l.acks)
	if err != nil {
		r.check("no lost acknowledgements", false, err.Error())
	} else {
		r.check("no lost acknowledgements", lost == 0, fmt.Sprintf("%d acknowledged events checked against the log, %d missing or different", checked, lost))
	}
	r.Counts["acks_checked"] = int64(checked)
	r.Counts["acks_lost"] = int64(lost)
	observerErrors(l, r)
	return r, ctx.Err()
}

// verifyAcks reads the world's feed from the first acknowledged seq to the
// last and counts acknowledgements whose seq holds another action.
func verifyAcks(ctx context.Context, addrs []string, world string, acks []ack) (lost, checked int, err error) {
	if len(acks) == 0 {
		return 0, 0, nil
	}
	sort.Slice(acks, func(i, j int) bool { return acks[i].seq < acks[j].seq })
	c := client.New(addrs, client.WithAttemptTimeout(5*time.Second))
	defer c.Close()
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	i := 0
	last := acks[len(acks)-1].seq
	err = c.Follow(fctx, world, acks[0].seq, func(ev wire.Event) error {
		for i < len(acks) && acks[i].seq == ev.Seq {
			if acks[i].player != ev.Player || acks[i].clientSeq != ev.ClientSeq {
				lost++
			}
			checked++
			i++
		}
		if ev.Seq >= last {
			cancel()
		}
		return nil
	})
	if err != nil && fctx.Err() == nil {
		return lost, checked, err
	}
	if ctx.Err() != nil {
		return lost, checked, ctx.Err()
	}
	return lost + len(acks) - i, checked, nil
}
