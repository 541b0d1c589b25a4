package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
)

// Target is the cluster a scenario drives, and what the harness may do to it.
type Target struct {
	Addrs []string // every node's HTTP address
	Procs []Proc   // gsd processes to sample (empty for a remote cluster)

	// KillLeader SIGKILLs the current leader and returns its node id; nil
	// when the harness did not start the cluster (failover needs it).
	KillLeader func(ctx context.Context) (string, error)
	// Restart starts a killed node again.
	Restart func(ctx context.Context, id string) error

	// Progress, when set, shows a live display of one phase: it is called
	// in its own goroutine and must return when ctx ends. status describes
	// the run so far.
	Progress func(ctx context.Context, phase string, total time.Duration, status func() string)
	// Log receives a line per phase; nil discards.
	Log io.Writer
}

func (t *Target) logf(format string, args ...any) {
	if t.Log != nil {
		fmt.Fprintf(t.Log, format+"\n", args...)
	}
}

// progress runs t.Progress until the returned stop is called.
func (t *Target) progress(ctx context.Context, phase string, total time.Duration, status func() string) (stop func()) {
	if t.Progress == nil {
		return func() {}
	}
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t.Progress(pctx, phase, total, status)
	}()
	return func() { cancel(); <-done }
}

// leaderFirst returns the addresses with the leader's first (players talk
// to the leader, as a latency-aware router would send them; a follower
// would add one forwarding hop), and the followers. opts add the
// credential a node with auth on asks for.
func (t *Target) leaderFirst(ctx context.Context, opts ...client.Option) (ordered, followers []string, err error) {
	if len(t.Addrs) == 0 {
		return nil, nil, errors.New("loadgen: no addresses")
	}
	c := client.New(t.Addrs, append([]client.Option{client.WithAttemptTimeout(2 * time.Second)}, opts...)...)
	defer c.Close()
	var s client.Status
	for {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		s, err = c.Status(sctx)
		cancel()
		if err == nil && s.LeaderHTTP != "" {
			break
		}
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("find leader: %w", errors.Join(ctx.Err(), err))
		}
		if code := client.Code(err); code == wire.CodeUnauthorized || code == wire.CodeForbidden {
			return nil, nil, fmt.Errorf("find leader: the nodes refuse the run's credential (auth on: give the key its tokens are signed with): %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ordered = []string{s.LeaderHTTP}
	for _, a := range t.Addrs {
		if a != s.LeaderHTTP {
			ordered = append(ordered, a)
			followers = append(followers, a)
		}
	}
	if !slices.Contains(t.Addrs, s.LeaderHTTP) {
		// The node table advertises another spelling: keep ours.
		ordered, followers = slices.Clone(t.Addrs), slices.Clone(t.Addrs[1:])
	}
	if len(followers) == 0 {
		followers = ordered[:1]
	}
	return ordered, followers, nil
}

// sampler starts sampling t's processes and the load generator itself.
func (t *Target) sampler(ctx context.Context) (*ProcSampler, func() []ProcStat) {
	s := NewProcSampler(append(slices.Clone(t.Procs), Self()), time.Second)
	sctx, cancel := context.WithCancel(ctx)
	go s.Run(sctx)
	return s, func() []ProcStat { cancel(); s.Wait(); return s.Stats() }
}
