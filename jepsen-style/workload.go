package jepsen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
)

// Kinds of operations in a history.
const (
	OpRead  = "read"  // linearizable read of a register
	OpWrite = "write" // blind set of a register
	OpCAS   = "cas"   // set with expect = version (0: absent)
	OpIncr  = "incr"  // counter +1
	OpAdd   = "add"   // set add of a unique element
)

// Outcomes of an operation.
const (
	Ok      = "ok"
	Fail    = "fail"    // definitely not applied
	Unknown = "unknown" // may or may not have been applied
)

// Op is one operation of the history, invocation and completion together.
// Times are nanoseconds since the run began.
type Op struct {
	ID     int    `json:"id"`
	Client int    `json:"client"`
	Player string `json:"player,omitempty"`
	Seq    uint64 `json:"seq,omitempty"` // client seq (writes)
	World  string `json:"world"`
	Kind   string `json:"kind"`
	Key    string `json:"key"`             // entity
	Value  int64  `json:"value,omitempty"` // written value / element
	Expect uint64 `json:"expect,omitempty"`
	// Priority of a play action (its lane); HTTP ops use the default.
	Priority string `json:"priority,omitempty"`

	Invoke   int64  `json:"invoke"`
	Complete int64  `json:"complete"`
	Outcome  string `json:"outcome"`
	Err      string `json:"err,omitempty"`

	// Results.
	Status     string `json:"status,omitempty"`    // applied / conflict / rejected
	WorldSeq   uint64 `json:"world_seq,omitempty"` // seq of the action's event
	Exists     bool   `json:"exists,omitempty"`    // read / conflict: field exists
	RValue     int64  `json:"rvalue,omitempty"`    // read / conflict: current value
	RVersion   uint64 `json:"rversion,omitempty"`  // read / conflict: current version; write: new version
	VerUnknown bool   `json:"ver_unknown,omitempty"`
}

// IsWrite reports whether the op is an action.
func (o *Op) IsWrite() bool { return o.Kind != OpRead }

// History is a run's operations.
type History struct {
	mu    sync.Mutex
	start time.Time
	Ops   []*Op `json:"ops"`
}

// NewHistory starts a history clock.
func NewHistory() *History { return &History{start: time.Now()} }

// Now returns nanoseconds since the history began.
func (h *History) Now() int64 { return int64(time.Since(h.start)) }

// At converts a history time to wall time.
func (h *History) At(ns int64) time.Time { return h.start.Add(time.Duration(ns)) }

func (h *History) add(o *Op) {
	h.mu.Lock()
	o.ID = len(h.Ops)
	h.Ops = append(h.Ops, o)
	h.mu.Unlock()
}

// Snapshot returns the ops recorded so far.
func (h *History) Snapshot() []*Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*Op(nil), h.Ops...)
}

// WorkloadConfig shapes the generated operations.
type WorkloadConfig struct {
	Worlds    []string
	Registers int           // register entities per world: r0..
	Clients   int           // concurrent players
	OpTimeout time.Duration // bound on one op, retries included
	Think     time.Duration // pause between a client's ops (CPU budget)
}

// Workload drives clients against the cluster and records the history.
type Workload struct {
	cfg   WorkloadConfig
	addrs []string
	hist  *History
	seed  uint64
}

// Entities and fields the workload uses.
const (
	fieldReg     = "v"
	counterKey   = "c"
	fieldCounter = "n"
	setKey       = "s"
	fieldSet     = "m"
)

// NewWorkload returns a workload against the nodes at addrs. Each client
// prefers a different node first (addrs rotated), as players spread over
// edges would, and fails over to the others.
func NewWorkload(cfg WorkloadConfig, addrs []string, hist *History, seed uint64) *Workload {
	return &Workload{cfg: cfg, addrs: addrs, hist: hist, seed: seed}
}

// Run runs the clients until ctx ends.
func (w *Workload) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range w.cfg.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.client(ctx, i)
		}()
	}
	wg.Wait()
}

func (w *Workload) client(ctx context.Context, id int) {
	k := id % len(w.addrs)
	addrs := append(append([]string(nil), w.addrs[k:]...), w.addrs[:k]...)
	cl := client.New(addrs, client.WithAttemptTimeout(time.Second), client.WithBackoff(20*time.Millisecond, 250*time.Millisecond))
	defer cl.Close()
	rng := rand.New(rand.NewPCG(w.seed, uint64(id)+1))
	player := "p" + strconv.Itoa(id)
	var seq uint64
	known := map[string]uint64{} // world/key -> last version seen
	for n := int64(1); ctx.Err() == nil; n++ {
		world := w.cfg.Worlds[rng.IntN(len(w.cfg.Worlds))]
		reg := "r" + strconv.Itoa(rng.IntN(w.cfg.Registers))
		o := &Op{Client: id, World: world, Key: reg}
		switch r := rng.IntN(100); {
		case r < 35:
			o.Kind = OpRead
		case r < 60:
			o.Kind = OpCAS
			o.Expect = known[world+"/"+reg]
		case r < 75:
			o.Kind = OpWrite
		case r < 90:
			o.Kind, o.Key = OpIncr, counterKey
		default:
			o.Kind, o.Key = OpAdd, setKey
		}
		if o.IsWrite() {
			seq++
			o.Player, o.Seq = player, seq
			o.Value = int64(id+1)*1_000_000_000 + n
		}
		w.do(ctx, cl, o)
		if o.Outcome == Ok && o.Kind != OpIncr && o.Kind != OpAdd && !o.VerUnknown {
			switch {
			case o.Kind == OpRead && o.Exists, o.Status == "conflict" && o.Exists:
				known[world+"/"+reg] = o.RVersion
			case o.Status == "applied":
				known[world+"/"+reg] = o.RVersion
			}
		}
		if w.cfg.Think > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(rng.Int64N(int64(w.cfg.Think)))):
			}
		}
	}
}

// do performs o and records it. Ops are not cut short by the end of the
// run: each has its own bound so that it ends ok, fail or unknown.
func (w *Workload) do(runCtx context.Context, cl *client.Client, o *Op) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(runCtx), w.cfg.OpTimeout)
	defer cancel()
	o.Invoke = w.hist.Now()
	defer func() {
		o.Complete = w.hist.Now()
		w.hist.add(o)
	}()
	if o.Kind == OpRead {
		e, err := cl.Entity(ctx, o.World, o.Key, client.Linearizable)
		switch {
		case err == nil:
			o.Outcome = Ok
			if v, ok := e.Int(fieldReg); ok {
				o.Exists, o.RValue, o.RVersion = true, v, e.Versions[fieldReg]
			}
		case client.Code(err) == client.CodeNotFound:
			o.Outcome = Ok
		default:
			o.Outcome, o.Err = Fail, err.Error()
		}
		return
	}
	var op wire.Op
	switch o.Kind {
	case OpWrite:
		op = client.Set(o.Key, fieldReg, wire.Int(o.Value))
	case OpCAS:
		op = client.ExpectVersion(client.Set(o.Key, fieldReg, wire.Int(o.Value)), o.Expect)
	case OpIncr:
		op = client.Incr(o.Key, fieldCounter, 1)
	case OpAdd:
		op = client.Add(o.Key, fieldSet, wire.Int(o.Value))
	}
	ev, err := cl.Act(ctx, o.World, client.ActionRequest{Player: o.Player, Seq: o.Seq, Ops: []wire.Op{op}})
	if err != nil {
		o.Err, o.Outcome = err.Error(), writeOutcome(err)
		return
	}
	o.Outcome, o.Status, o.WorldSeq = Ok, ev.Status, ev.Seq
	if len(ev.Changes) == 0 {
		// A duplicate answered after the feed dropped the full event.
		o.VerUnknown = true
		return
	}
	ch := ev.Changes[0]
	o.RVersion = ch.Version
	if ev.Status == "conflict" {
		o.Exists = ch.Exists == nil || *ch.Exists
		if ch.Value != nil {
			o.RValue = ch.Value.Int
		}
	}
}

// writeOutcome classifies a failed write: unknown when any attempt may
// have been applied, even if the last one was refused with a 4xx (a
// timed-out attempt, then 421 world_moved from a fenced world: the first
// may have committed before the fence); fail otherwise.
func writeOutcome(err error) string {
	if client.IsOutcomeUnknown(err) {
		return Unknown
	}
	return Fail
}

// String describes an op for reports.
func (o *Op) String() string {
	return fmt.Sprintf("#%d c%d %s %s/%s v=%d exp=%d seq=%s/%d -> %s %s ws=%d exists=%v rv=%d ver=%d %s",
		o.ID, o.Client, o.Kind, o.World, o.Key, o.Value, o.Expect, o.Player, o.Seq, o.Outcome, o.Status, o.WorldSeq,
		o.Exists, o.RValue, o.RVersion, o.Err)
}
