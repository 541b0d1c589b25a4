package meta

import (
	"sync"
	"time"
)

// The report loop's calls that wait on another node run off the loop,
// as its member probes do (prober.go): a joiner's ask of its shard's
// leader (catchup.go), and the replacement steps it proposes
// (reconcile.go's proposeStep), which wait on the meta leader, whose
// gate probes every member. A node that accepts the connection and
// never answers would otherwise hold every report, load figure and
// other shard's step for the ask's or the proposal's timeout, each tick.
// Each such call runs in the background, one per key at a time, owned
// by the Group (its wg; Close cancels stopCtx, which ends them); the
// loop takes the result at a later tick.

// tasks runs calls in the background, at most one per key at a time,
// and keeps the latest result of each key until it is taken (when
// made by newTasks; the zero tasks keeps none).
type tasks[K comparable, R any] struct {
	mu      sync.Mutex
	running map[K]int           // a running call's key: the takes of the key since it started
	done    map[K]taskResult[R] // nil: results are not kept
}

// taskResult is a call's result, when it came, and how many takes of
// its key there were since its call started, the one that returns it
// included: 1 when the caller takes it at the first take after it
// started the call (the next tick, however slow the ticks).
type taskResult[R any] struct {
	v     R
	at    time.Time
	taken int
}

// newTasks returns tasks that keep their results.
func newTasks[K comparable, R any]() *tasks[K, R] {
	return &tasks[K, R]{done: map[K]taskResult[R]{}}
}

// start runs f for key k on a goroutine counted by wg, unless one for k
// is running, and reports whether it started it.
func (ts *tasks[K, R]) start(wg *sync.WaitGroup, k K, f func() R) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if _, ok := ts.running[k]; ok {
		return false
	}
	if ts.running == nil {
		ts.running = map[K]int{}
	}
	ts.running[k] = 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		v := f()
		ts.mu.Lock()
		defer ts.mu.Unlock()
		taken := ts.running[k]
		delete(ts.running, k)
		if ts.done != nil {
			ts.done[k] = taskResult[R]{v: v, at: time.Now(), taken: taken}
		}
	}()
	return true
}

// take returns and drops k's result, if one came since the last take,
// and counts the take against the call of k still running.
func (ts *tasks[K, R]) take(k K) (taskResult[R], bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if n, ok := ts.running[k]; ok {
		ts.running[k] = n + 1
	}
	r, ok := ts.done[k]
	delete(ts.done, k)
	r.taken++
	return r, ok
}

// answerKeep is how long the report loop uses an answer it asked for
// in the background: a few ticks (a second without reports), and
// however old it is when it answers the loop's previous ask (the
// prober's rule, prober.go; joinerCaughtUp's): a loop whose ticks are
// slower still gets the answer to what it asked last time.
func (g *Group) answerKeep() time.Duration {
	return max(3*g.cfg.ReportInterval, time.Second)
}
