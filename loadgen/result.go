package loadgen

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Check is one correctness verdict of a run (exactly one winner, no gaps,
// no lost acknowledgements).
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Result is one scenario's measured figures. Latency keys:
//
//	action_commit              intended send → answer (open-loop, corrected for coordinated omission)
//	action_commit_uncorrected  actual send → answer (what a closed-loop tool would report)
//	propagation                player A's intended send → event received by player B's stream (critical events)
//	fanout                     leader time stamped in the entry → received by a stream
//	spectator                  leader time → received by a spectator
type Result struct {
	Scenario string             `json:"scenario"`
	Level    string             `json:"level"` // "client (HTTP batched)" or "client (HTTP single)"
	Command  string             `json:"command"`
	Params   map[string]any     `json:"params"`
	Started  time.Time          `json:"started"`
	Seconds  float64            `json:"seconds"` // measured window
	Counts   map[string]int64   `json:"counts"`
	Errors   map[string]int64   `json:"errors,omitempty"`
	Figures  map[string]float64 `json:"figures"` // events_per_s, recovery_ms, p99_ratio, bytes/s ...
	Latency  map[string]Summary `json:"latency"`
	Phases   []Result           `json:"phases,omitempty"`
	Procs    []ProcStat         `json:"procs,omitempty"`
	Checks   []Check            `json:"checks,omitempty"`
	Notes    []string           `json:"notes,omitempty"`
}

// OK reports whether every check passed.
func (r *Result) OK() bool {
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return true
}

func newResult(scenario string) *Result {
	return &Result{Scenario: scenario, Params: map[string]any{}, Counts: map[string]int64{},
		Figures: map[string]float64{}, Latency: map[string]Summary{}, Started: time.Now()}
}

func (r *Result) check(name string, ok bool, detail string) {
	r.Checks = append(r.Checks, Check{Name: name, OK: ok, Detail: detail})
}

// LatencyKeys returns r's latency keys in a stable order.
func (r *Result) LatencyKeys() []string {
	order := map[string]int{"action_commit": 0, "action_commit_uncorrected": 1, "propagation": 2, "fanout": 3, "spectator": 4}
	keys := make([]string, 0, len(r.Latency))
	for k := range r.Latency {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		oi, ok1 := order[keys[i]]
		oj, ok2 := order[keys[j]]
		switch {
		case ok1 && ok2:
			return oi < oj
		case ok1 != ok2:
			return ok1
		}
		return keys[i] < keys[j]
	})
	return keys
}

// Tally counts the outcomes of actions; safe for concurrent use.
type Tally struct {
	Sent, Applied, Conflicts, Rejected, Duplicates, Failed atomic.Int64

	mu     sync.Mutex
	errors map[string]int64
}

func (t *Tally) fail(code string) {
	t.Failed.Add(1)
	if code == "" {
		code = "connection"
	}
	t.mu.Lock()
	if t.errors == nil {
		t.errors = map[string]int64{}
	}
	t.errors[code]++
	t.mu.Unlock()
}

// Committed is the number of actions answered with a committed event.
func (t *Tally) Committed() int64 { return t.Applied.Load() + t.Conflicts.Load() + t.Rejected.Load() }

func (t *Tally) into(r *Result) {
	r.Counts["sent"] += t.Sent.Load()
	r.Counts["applied"] += t.Applied.Load()
	r.Counts["conflicts"] += t.Conflicts.Load()
	r.Counts["rejected"] += t.Rejected.Load()
	r.Counts["duplicates"] += t.Duplicates.Load()
	r.Counts["failed"] += t.Failed.Load()
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, v := range t.errors {
		if r.Errors == nil {
			r.Errors = map[string]int64{}
		}
		r.Errors[k] += v
	}
}
