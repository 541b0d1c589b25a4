package jepsen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
)

// Scenario is one named fault schedule over a workload.
type Scenario struct {
	Name     string
	Nemesis  func() Nemesis
	Voters   int // default 3
	Spares   int
	Args     []string      // extra gsd flags
	Duration time.Duration // workload time (default 20s)
	Hold     time.Duration // each fault lasts this long (default 3s)
	Quiet    time.Duration // healthy time between faults (default 3s)
	Clients  int           // default 4
	Think    time.Duration // pause between a client's ops (default 10ms)
	Tags     string        // build tag of the gsd binary (FailpointsTag for disk faults); "" = normal build
	Preload  int           // entities (1 KB each) written to world "bulk" before the workload: a large snapshot
	Play     int           // WebSocket play clients alongside the HTTP workload (play.go); 0 = none
	// Shards > 1 runs the nodes with a shard map of that many Raft groups
	// (every voter in each), worlds spread over them: w0 on group 0, w1 on
	// the last group (shardWorlds). Not with spares: a shard's voters are
	// fixed by the map, so membership nemeses do not apply.
	Shards int
}

// Fault is one nemesis activation.
type Fault struct {
	Desc  string `json:"desc"`
	Start int64  `json:"start"` // ns since the run began
	End   int64  `json:"end"`
	Err   string `json:"err,omitempty"`
}

// Result is a run's verdict.
type Result struct {
	Scenario     string        `json:"scenario"`
	Seed         uint64        `json:"seed"`
	Ops          int           `json:"ops"`
	Writes       int           `json:"writes"`
	Acked        int           `json:"acked"` // writes acknowledged
	ReadsOK      int           `json:"reads_ok"`
	Failed       int           `json:"failed"`
	Unknown      int           `json:"unknown"`
	Lost         int           `json:"lost"`
	Linearizable bool          `json:"linearizable"`
	HashesEqual  bool          `json:"hashes_equal"`
	Recovery     time.Duration `json:"recovery_ns"`    // worst over faults: heal → first acked write invoked after it
	Unavailable  time.Duration `json:"unavailable_ns"` // worst over faults: fault start → first acked write invoked after it
	Faults       []Fault       `json:"faults"`
	Lin          []LinResult   `json:"lin"`
	Problems     []string      `json:"problems"`
	Notes        []string      `json:"notes"`
	Dir          string        `json:"dir"`
	Play         *PlayStats    `json:"play,omitempty"`
}

// OK reports whether the run found nothing wrong.
func (r *Result) OK() bool { return len(r.Problems) == 0 }

// Summary is a one-line verdict.
func (r *Result) Summary() string {
	s := fmt.Sprintf("%s seed=%d ops=%d acked=%d unknown=%d failed=%d lost=%d linearizable=%v hashes_equal=%v first_ack_after_fault=%s first_ack_after_heal=%s problems=%d",
		r.Scenario, r.Seed, r.Ops, r.Acked, r.Unknown, r.Failed, r.Lost, r.Linearizable, r.HashesEqual,
		r.Unavailable.Round(time.Millisecond), r.Recovery.Round(time.Millisecond), len(r.Problems))
	if r.Play != nil {
		s += " play: " + r.Play.String()
	}
	return s
}

func (sc *Scenario) defaults() {
	if sc.Voters == 0 {
		sc.Voters = 3
	}
	if sc.Duration == 0 {
		sc.Duration = 20 * time.Second
	}
	if sc.Hold == 0 {
		sc.Hold = 3 * time.Second
	}
	if sc.Quiet == 0 {
		sc.Quiet = 3 * time.Second
	}
	if sc.Clients == 0 {
		sc.Clients = 4
	}
	if sc.Think == 0 {
		sc.Think = 10 * time.Millisecond
	}
}

var worlds = []string{"w0", "w1"}

// Run runs sc with seed using the gsd binary bin, writing everything to a
// fresh directory under out. The directory is removed after a clean run
// unless keep is set.
func Run(ctx context.Context, sc Scenario, seed uint64, bin, out string, keep bool, logf func(string, ...any)) (*Result, error) {
	sc.defaults()
	dir := filepath.Join(out, fmt.Sprintf("%s-seed%d-%s", sc.Name, seed, time.Now().Format("150405.000")))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	logf("scenario %s: seed %d (replay: JEPSEN_SEED=%d), output %s", sc.Name, seed, seed, dir)
	cover := os.Getenv("GSD_GOCOVERDIR")
	if cover == "" {
		cover = filepath.Join(dir, "cover")
	}
	if err := os.MkdirAll(cover, 0o755); err != nil {
		return nil, err
	}
	c, err := NewCluster(ctx, ClusterConfig{Bin: bin, Dir: dir, Voters: sc.Voters, Spares: sc.Spares, Args: sc.Args, CoverDir: cover,
		Shards: sc.Shards, Worlds: shardWorlds(sc.Shards)})
	if err != nil {
		return nil, fmt.Errorf("start cluster (logs in %s): %w", dir, err)
	}
	defer c.Close()

	cl := client.New(allIngress(c), client.WithAttemptTimeout(1500*time.Millisecond), client.WithBackoff(20*time.Millisecond, 250*time.Millisecond))
	defer cl.Close()
	for _, w := range worlds {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := cl.CreateWorld(wctx, w, wire.Rules{})
		cancel()
		if err != nil && client.Code(err) != client.CodeWorldExists {
			return nil, fmt.Errorf("create world %s: %w", w, err)
		}
	}

	res := &Result{Scenario: sc.Name, Seed: seed, Dir: dir}
	if sc.Preload > 0 {
		t0 := time.Now()
		if err := preload(ctx, cl, sc.Preload); err != nil {
			return nil, fmt.Errorf("preload: %w", err)
		}
		logf("preloaded %d entities of 1 KB into world %s in %s", sc.Preload, bulkWorld, time.Since(t0).Round(time.Millisecond))
	}
	hist := NewHistory()
	wl := NewWorkload(WorkloadConfig{Worlds: worlds, Registers: 3, Clients: sc.Clients, OpTimeout: 2500 * time.Millisecond, Think: sc.Think}, allIngress(c)[:sc.Voters], hist, seed)
	wctx, stopWorkload := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); wl.Run(wctx) }()
	var pw *PlayWorkload
	if sc.Play > 0 {
		pw = NewPlayWorkload(PlayConfig{Worlds: worlds, Clients: sc.Play, OpTimeout: 4 * time.Second, Think: sc.Think}, allIngress(c)[:sc.Voters], hist, seed)
		wg.Add(1)
		go func() { defer wg.Done(); pw.Run(wctx) }()
	}

	env := &Env{C: c, Rng: rand.New(rand.NewPCG(seed, 0x6e656d)), Log: logf, Play: sc.Play, res: res}
	nem := sc.Nemesis()
	end := time.Now().Add(sc.Duration)
	pause(ctx, 2*time.Second) // warm-up with no fault
	for time.Now().Add(sc.Hold).Before(end) && ctx.Err() == nil {
		f := Fault{Start: hist.Now()}
		desc, err := nem.Start(ctx, env)
		f.Desc = desc
		if err != nil {
			f.Err = err.Error()
			logf("nemesis start: %v", err)
		}
		pause(ctx, sc.Hold)
		if err := nem.Stop(ctx, env); err != nil {
			f.Err += " stop: " + err.Error()
			logf("nemesis stop: %v", err)
		}
		f.End = hist.Now()
		res.Faults = append(res.Faults, f)
		logf("fault %q from %s to %s", f.Desc, time.Duration(f.Start).Round(time.Millisecond), time.Duration(f.End).Round(time.Millisecond))
		pause(ctx, min(sc.Quiet, time.Until(end)))
	}
	if w, ok := nem.(interface{ Wait() }); ok {
		w.Wait() // background work of the last fault (e.g. a catch-up watch)
	}
	stopWorkload()
	wg.Wait()
	ops := hist.Snapshot()

	// Heal everything and let the cluster settle before the final checks.
	c.ClearFailpoints()
	c.HealNetwork()
	for i := range c.Nodes {
		if c.Paused(i) {
			_ = c.Resume(i)
		}
	}
	if _, err := c.WaitLeader(ctx); err != nil {
		res.Problems = append(res.Problems, "no leader after healing: "+err.Error())
	}
	checked := ops
	if pw != nil {
		checked = append(append([]*Op(nil), ops...), pw.Ops()...) // acked play actions exactly once in every feed
	}
	if pr, ok := nem.(interface{ Ops() []*Op }); ok {
		checked = append(slices.Clone(checked), pr.Ops()...) // a nemesis' own writes (the move's probes)
	}
	feeds := finalChecks(ctx, c, cl, checked, res)
	if sc.Shards > 1 {
		checkShards(ctx, c, sc.Shards, res)
	}
	if pw != nil {
		checkPlay(ctx, cl, pw, feeds, res)
		if mc, ok := nem.(interface{ CheckPlay(*PlayWorkload, *Result) }); ok {
			mc.CheckPlay(pw, res) // sessions across a world's move
		}
		if err := writeJSON(filepath.Join(dir, "play.json"), pw.Clients); err != nil {
			return nil, err
		}
	}

	summarize(ops, res)
	res.Linearizable, res.Lin = CheckLinearizable(ops, 60*time.Second, dir)
	for _, lr := range res.Lin {
		if lr.Result != porcupine.Ok {
			res.Problems = append(res.Problems, fmt.Sprintf("register %s (%d ops) not linearizable: %s; see %s", lr.Key, lr.Ops, lr.Result, lr.Viz))
		}
	}
	if err := writeJSON(filepath.Join(dir, "history.json"), ops); err != nil {
		return nil, err
	}
	if err := writeJSON(filepath.Join(dir, "result.json"), res); err != nil {
		return nil, err
	}
	summary := res.Summary() + "\n\nfaults:\n"
	for _, f := range res.Faults {
		summary += fmt.Sprintf("  %8s..%8s %s %s\n", time.Duration(f.Start).Round(time.Millisecond), time.Duration(f.End).Round(time.Millisecond), f.Desc, f.Err)
	}
	summary += "\nproblems:\n  " + strings.Join(res.Problems, "\n  ") + "\n\nnotes:\n  " + strings.Join(res.Notes, "\n  ") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "summary.txt"), []byte(summary), 0o644); err != nil {
		return nil, err
	}
	for _, n := range res.Notes {
		logf("note: %s", n)
	}
	logf("%s", res.Summary())
	c.Close()
	if res.OK() && !keep {
		_ = os.RemoveAll(dir)
		res.Dir = ""
	}
	return res, nil
}

func allIngress(c *Cluster) []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.Ingress.Addr())
	}
	return out
}

// pause waits d (or until ctx ends): it paces the schedule, it does not
// wait for a state.
func pause(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func summarize(ops []*Op, r *Result) {
	r.Ops = len(ops)
	for _, o := range ops {
		switch {
		case !o.IsWrite() && o.Outcome == Ok:
			r.ReadsOK++
		case !o.IsWrite():
		case o.Outcome == Ok:
			r.Writes++
			r.Acked++
		case o.Outcome == Unknown:
			r.Writes++
			r.Unknown++
		default:
			r.Writes++
			r.Failed++
		}
	}
	firstAck := func(from int64) int64 {
		first := int64(-1)
		for _, o := range ops {
			if o.IsWrite() && o.Outcome == Ok && o.Invoke >= from && (first < 0 || o.Complete < first) {
				first = o.Complete
			}
		}
		return first
	}
	for _, f := range r.Faults {
		if first := firstAck(f.End); first >= 0 {
			r.Recovery = max(r.Recovery, time.Duration(first-f.End))
		} else {
			r.Notes = append(r.Notes, fmt.Sprintf("no acked write after the fault %q ended", f.Desc))
		}
		if first := firstAck(f.Start); first >= 0 {
			r.Unavailable = max(r.Unavailable, time.Duration(first-f.Start))
		}
	}
}

// members returns the slots in the leader's configuration that run.
func members(ctx context.Context, c *Cluster) []int {
	ids, err := c.Members(ctx)
	if err != nil {
		return nil
	}
	var out []int
	for _, id := range ids {
		if i := c.IndexOf(id); i >= 0 && c.Running(i) {
			out = append(out, i)
		}
	}
	sort.Ints(out)
	return out
}

// finalChecks reads the final counters and sets, waits for every member to
// reach the same seq, compares hashes and checks the event feeds. It
// returns the complete feeds it read: world -> node id -> events from seq 1.
func finalChecks(ctx context.Context, c *Cluster, cl *client.Client, ops []*Op, r *Result) map[string]map[string][]wire.Event {
	r.HashesEqual = true
	all := map[string]map[string][]wire.Event{}
	mem := members(ctx, c)
	if len(mem) == 0 {
		r.Problems = append(r.Problems, "no members after healing")
		r.HashesEqual = false
		return all
	}
	for _, w := range worlds {
		// Final values, read linearizably once everything healed.
		var ce, se client.Entity
		err := poll(ctx, 30*time.Second, func() error {
			rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			var err error
			if ce, err = cl.Entity(rctx, w, counterKey, client.Linearizable); err != nil && client.Code(err) != client.CodeNotFound {
				return err
			}
			if se, err = cl.Entity(rctx, w, setKey, client.Linearizable); err != nil && client.Code(err) != client.CodeNotFound {
				return err
			}
			return nil
		})
		if err != nil {
			r.Problems = append(r.Problems, fmt.Sprintf("%s: final reads failed: %v", w, err))
		} else {
			n, _ := ce.Int(fieldCounter)
			if err := CheckCounter(ops, w, n); err != nil {
				r.Problems = append(r.Problems, err.Error())
				r.Lost++
			}
			var elems []int64
			if arr, ok := se.Fields[fieldSet].([]any); ok {
				for _, x := range arr {
					if num, ok := x.(json.Number); ok {
						v, _ := num.Int64()
						elems = append(elems, v)
					}
				}
			}
			if err := CheckSet(ops, w, elems); err != nil {
				r.Problems = append(r.Problems, err.Error())
				r.Lost += strings.Count(err.Error(), "missing")
			}
		}

		// Convergence: every member reaches the leader's seq, then hashes.
		var target uint64
		for _, i := range mem {
			hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			h, err := c.Direct(i).Hash(hctx, w, 0)
			cancel()
			if err == nil {
				target = max(target, h.Seq)
			}
		}
		// Session commands (play sessions opening, acking, closing) change
		// the hash without taking a seq (docs/API.md "Hashes"): a replica
		// that has not applied the last of them yet differs at the same
		// seq. The workloads have stopped, so re-read for a while before
		// calling a difference divergence.
		var hashes map[string]string
		for attempt := 1; ; attempt++ {
			hashes = map[string]string{}
			reached := true
			for _, i := range mem {
				err := poll(ctx, 30*time.Second, func() error {
					hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
					defer cancel()
					h, err := c.Direct(i).Hash(hctx, w, target)
					if err != nil {
						return err
					}
					hashes[c.Nodes[i].ID] = string(h.Hash)
					return nil
				})
				if err != nil {
					r.Problems = append(r.Problems, fmt.Sprintf("%s: %s never reached seq %d: %v", w, c.Nodes[i].ID, target, err))
					r.HashesEqual = false
					reached = false
				}
			}
			if !reached {
				break
			}
			if allEqual(hashes) {
				if attempt > 1 {
					r.Notes = append(r.Notes, fmt.Sprintf("%s: hashes at seq %d agreed at the %d. read (session commands still applying)", w, target, attempt))
				}
				break
			}
			if attempt == hashReads {
				r.HashesEqual = false
				r.Problems = append(r.Problems, fmt.Sprintf("%s: hashes differ at seq %d (after %d reads): %v", w, target, attempt, hashes))
				break
			}
			pause(ctx, 500*time.Millisecond)
		}

		// Event feeds from seq 1 on every member.
		feeds := map[string][]wire.Event{}
		for _, i := range mem {
			evs, err := readFeed(ctx, c.Direct(i), w, target)
			if err != nil {
				r.Notes = append(r.Notes, fmt.Sprintf("%s: feed of %s not checked: %v", w, c.Nodes[i].ID, err))
				continue
			}
			feeds[c.Nodes[i].ID] = evs
		}
		if len(feeds) == 0 {
			r.Problems = append(r.Problems, w+": no node had a complete event feed")
			continue
		}
		all[w] = feeds
		rep := CheckEvents(ops, w, feeds)
		r.Lost += len(rep.Lost)
		r.Problems = append(r.Problems, rep.Problems()...)
	}
	return all
}

// hashReads bounds the hash comparisons of one world (500 ms apart).
const hashReads = 20

func allEqual(m map[string]string) bool {
	first, set := "", false
	for _, v := range m {
		if set && v != first {
			return false
		}
		first, set = v, true
	}
	return true
}

// readFeed reads world's events 1..target from one node.
func readFeed(ctx context.Context, cl *client.Client, world string, target uint64) ([]wire.Event, error) {
	if target == 0 {
		return nil, nil
	}
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := cl.Events(fctx, world, 1)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	var out []wire.Event
	for {
		ev, err := s.Next()
		if errors.Is(err, io.EOF) {
			return out, fmt.Errorf("stream ended at %d of %d", len(out), target)
		}
		if err != nil {
			return out, err
		}
		out = append(out, ev)
		if ev.Seq >= target {
			return out, nil
		}
	}
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

const bulkWorld = "bulk"

// preload writes n entities with a 1 KB string each into bulkWorld, so
// snapshots are large (n KB and more). The workload never touches them.
func preload(ctx context.Context, cl *client.Client, n int) error {
	if err := cl.CreateWorld(ctx, bulkWorld, wire.Rules{}); err != nil && client.Code(err) != client.CodeWorldExists {
		return err
	}
	pad := strings.Repeat("x", 1000)
	const per = 200
	for first := 0; first < n; first += per {
		var batch []client.ActionRequest
		for i := first; i < min(first+per, n); i++ {
			batch = append(batch, client.ActionRequest{Player: "preload", Seq: uint64(i + 1),
				Ops: []wire.Op{client.Set(fmt.Sprintf("e%d", i), "p", wire.String(fmt.Sprintf("%d-%s", i, pad)))}})
		}
		bctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		res, err := cl.ActBatch(bctx, bulkWorld, batch)
		cancel()
		if err != nil {
			return err
		}
		for _, r := range res {
			if r.Err != nil {
				return r.Err
			}
		}
	}
	return nil
}
