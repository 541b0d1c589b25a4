package jepsen

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/gsd-dev/gsd/wire"
)

// regState is a register's state in the model: its value and version (the
// world seq of its last change). After a write whose outcome is unknown
// the version is not known, only bounded below by Ver (Known false); the
// next read that shows it pins it down again.
type regState struct {
	Exists bool
	Val    int64
	Ver    uint64
	Known  bool
}

type regInput struct {
	Kind   string
	Val    int64
	Expect uint64 // CAS: 0 = the field must not exist
}

type regOutput struct {
	Unknown bool   // maybe applied: any outcome
	Applied bool   // CAS applied (writes: always when !Unknown)
	Exists  bool   // read, conflict: the field exists
	Val     int64  // read, conflict: its value
	Ver     uint64 // read, conflict: its version; write/CAS applied: the new version
}

// casMatches reports whether a CAS with expect e can apply in s (definitely
// false when it cannot; when the version is not known it can if e is above
// the lower bound).
func casMatches(s regState, e uint64) bool {
	if e == 0 {
		return !s.Exists
	}
	if !s.Exists {
		return false
	}
	if s.Known {
		return s.Ver == e
	}
	return e > s.Ver
}

// sees reports whether s is consistent with observing (exists, val, ver),
// and returns s with the version learned.
func sees(s regState, exists bool, val int64, ver uint64) (regState, bool) {
	if !exists {
		return s, !s.Exists
	}
	if !s.Exists || s.Val != val {
		return s, false
	}
	if s.Known {
		return s, s.Ver == ver
	}
	if ver <= s.Ver {
		return s, false
	}
	s.Ver, s.Known = ver, true
	return s, true
}

func regStep(st, in, out any) []any {
	s, i, o := st.(regState), in.(regInput), out.(regOutput)
	switch i.Kind {
	case OpRead:
		if n, ok := sees(s, o.Exists, o.Val, o.Ver); ok {
			return []any{n}
		}
		return nil
	case OpWrite:
		if o.Unknown {
			return []any{regState{Exists: true, Val: i.Val, Ver: s.Ver}}
		}
		if o.Ver <= s.Ver {
			return nil
		}
		return []any{regState{Exists: true, Val: i.Val, Ver: o.Ver, Known: true}}
	case OpCAS:
		match := casMatches(s, i.Expect)
		if o.Unknown {
			out := []any{s}
			if match {
				out = append(out, regState{Exists: true, Val: i.Val, Ver: max(s.Ver, i.Expect)})
			}
			return out
		}
		if o.Applied {
			if !match || o.Ver <= max(s.Ver, i.Expect) {
				return nil
			}
			return []any{regState{Exists: true, Val: i.Val, Ver: o.Ver, Known: true}}
		}
		// Conflict: the expectation must fail on what the server reported.
		n, ok := sees(s, o.Exists, o.Val, o.Ver)
		if !ok || casMatches(n, i.Expect) {
			return nil
		}
		return []any{n}
	}
	return nil
}

// RegisterModel is the porcupine model of one (world, entity, field)
// register with reads, blind writes and compare-and-set by version.
var RegisterModel = (&porcupine.NondeterministicModel{
	Init: func() []any { return []any{regState{Known: true}} },
	Step: regStep,
	DescribeOperation: func(in, out any) string {
		i, o := in.(regInput), out.(regOutput)
		res := "?"
		switch {
		case o.Unknown:
			res = "unknown"
		case i.Kind == OpRead && !o.Exists:
			res = "absent"
		case i.Kind == OpRead:
			res = fmt.Sprintf("%d@%d", o.Val, o.Ver)
		case i.Kind == OpCAS && !o.Applied:
			res = fmt.Sprintf("conflict(now %d@%d exists=%v)", o.Val, o.Ver, o.Exists)
		default:
			res = fmt.Sprintf("ok@%d", o.Ver)
		}
		switch i.Kind {
		case OpRead:
			return "read -> " + res
		case OpWrite:
			return fmt.Sprintf("write(%d) -> %s", i.Val, res)
		}
		return fmt.Sprintf("cas(%d if v=%d) -> %s", i.Val, i.Expect, res)
	},
	DescribeState: func(st any) string {
		s := st.(regState)
		if !s.Exists {
			return "absent"
		}
		if !s.Known {
			return fmt.Sprintf("%d@>%d", s.Val, s.Ver)
		}
		return fmt.Sprintf("%d@%d", s.Val, s.Ver)
	},
}).ToModel()

// registerOps turns the register ops of a history into porcupine operations,
// one slice per (world, entity). Failed ops and failed reads had no effect
// and are left out; unknown writes get an infinite return time.
func registerOps(ops []*Op) map[string][]porcupine.Operation {
	out := map[string][]porcupine.Operation{}
	for _, o := range ops {
		if o.Kind != OpRead && o.Kind != OpWrite && o.Kind != OpCAS {
			continue
		}
		if o.Outcome == Fail {
			continue
		}
		in := regInput{Kind: o.Kind, Val: o.Value, Expect: o.Expect}
		ret := o.Complete
		var res regOutput
		switch {
		case o.Outcome == Unknown || o.VerUnknown:
			res.Unknown, ret = true, math.MaxInt64
		case o.Kind == OpRead:
			res = regOutput{Exists: o.Exists, Val: o.RValue, Ver: o.RVersion}
		case o.Status == "applied":
			res = regOutput{Applied: true, Ver: o.RVersion}
		case o.Status == "conflict" && o.Kind == OpCAS:
			res = regOutput{Exists: o.Exists, Val: o.RValue, Ver: o.RVersion}
		default:
			// A committed write that was neither applied nor a CAS
			// conflict (rejected): it changed nothing.
			continue
		}
		key := o.World + "/" + o.Key + "." + fieldReg
		out[key] = append(out[key], porcupine.Operation{ClientId: o.Client, Input: in, Call: o.Invoke, Output: res, Return: ret})
	}
	return out
}

// LinResult is the linearizability verdict of one register.
type LinResult struct {
	Key    string
	Ops    int
	Result porcupine.CheckResult
	Viz    string // HTML visualisation, written when not Ok
}

// CheckLinearizable checks every register's history with porcupine. A
// timeout or unknown result counts as a failure. When dir is not empty,
// failing registers get an HTML visualisation there.
func CheckLinearizable(ops []*Op, timeout time.Duration, dir string) (ok bool, results []LinResult) {
	ok = true
	byKey := registerOps(ops)
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		res, info := porcupine.CheckOperationsVerbose(RegisterModel, byKey[k], timeout)
		lr := LinResult{Key: k, Ops: len(byKey[k]), Result: res}
		if res != porcupine.Ok {
			ok = false
			if dir != "" {
				lr.Viz = filepath.Join(dir, "linearizability-"+strings.NewReplacer("/", "_", ".", "_").Replace(k)+".html")
				if err := porcupine.VisualizePath(RegisterModel, info, lr.Viz); err != nil {
					lr.Viz = "visualisation failed: " + err.Error()
				}
			}
		}
		results = append(results, lr)
	}
	return ok, results
}

// CheckCounter checks one world's final counter against the acked and
// unknown increments: acked ≤ final ≤ acked + unknown.
func CheckCounter(ops []*Op, world string, final int64) error {
	var acked, unknown int64
	for _, o := range ops {
		if o.World != world || o.Kind != OpIncr {
			continue
		}
		switch o.Outcome {
		case Ok:
			acked++
		case Unknown:
			unknown++
		}
	}
	if final < acked || final > acked+unknown {
		return fmt.Errorf("counter %s: final %d outside [acked %d, acked+unknown %d]", world, final, acked, acked+unknown)
	}
	return nil
}

// CheckSet checks one world's final set: every acked add present, and
// nothing present that was never attempted or definitely failed.
func CheckSet(ops []*Op, world string, final []int64) error {
	have := map[int64]bool{}
	for _, v := range final {
		have[v] = true
	}
	maybe := map[int64]bool{}
	var errs []string
	for _, o := range ops {
		if o.World != world || o.Kind != OpAdd {
			continue
		}
		switch o.Outcome {
		case Ok:
			maybe[o.Value] = true
			if !have[o.Value] {
				errs = append(errs, fmt.Sprintf("acked add %d (op #%d) missing", o.Value, o.ID))
			}
		case Unknown:
			maybe[o.Value] = true
		}
	}
	for _, v := range final {
		if !maybe[v] {
			errs = append(errs, fmt.Sprintf("element %d present but never acked or pending", v))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("set %s: %s", world, strings.Join(errs, "; "))
	}
	return nil
}

// EventReport is what the event feeds of the nodes say about the actions.
type EventReport struct {
	Lost       []string // acked actions missing from a complete feed
	Duplicates []string // a (player, client seq) applied more than once
	Phantoms   []string // definitely failed actions that were committed
	Mismatch   []string // acked world seq differs from the feed, or feeds differ
}

// Problems lists the report's findings.
func (r EventReport) Problems() []string {
	var out []string
	for _, x := range [][]string{r.Lost, r.Duplicates, r.Phantoms, r.Mismatch} {
		out = append(out, x...)
	}
	return out
}

// CheckEvents compares the history with each node's event feed of world
// (complete from seq 1; nodes whose feed has a gap are left out by the
// caller): every acked action appears exactly once, at the acked seq; no
// (player, client seq) appears twice; no definitely failed action appears;
// the feeds of all nodes agree seq by seq.
func CheckEvents(ops []*Op, world string, feeds map[string][]wire.Event) EventReport {
	var r EventReport
	type key struct {
		player string
		seq    uint64
	}
	nodes := make([]string, 0, len(feeds))
	for n := range feeds {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	bySeq := map[uint64]wire.Event{}
	for _, n := range nodes {
		count := map[key]int{}
		for _, ev := range feeds[n] {
			count[key{ev.Player, ev.ClientSeq}]++
			if prev, ok := bySeq[ev.Seq]; ok {
				if prev.Player != ev.Player || prev.ClientSeq != ev.ClientSeq || prev.Status != ev.Status {
					r.Mismatch = append(r.Mismatch, fmt.Sprintf("%s: %s seq %d is %s/%d %s, another node has %s/%d %s",
						world, n, ev.Seq, ev.Player, ev.ClientSeq, ev.Status, prev.Player, prev.ClientSeq, prev.Status))
				}
			} else {
				bySeq[ev.Seq] = ev
			}
		}
		for k, c := range count {
			if c > 1 && k.player != "" {
				r.Duplicates = append(r.Duplicates, fmt.Sprintf("%s: %s has %s/%d %d times", world, n, k.player, k.seq, c))
			}
		}
		for _, o := range ops {
			if o.World != world || !o.IsWrite() {
				continue
			}
			c := count[key{o.Player, o.Seq}]
			switch {
			case o.Outcome == Ok && c == 0:
				r.Lost = append(r.Lost, fmt.Sprintf("%s: acked %s missing from %s's feed", world, o, n))
			case o.Outcome == Fail && c > 0:
				r.Phantoms = append(r.Phantoms, fmt.Sprintf("%s: failed %s committed on %s", world, o, n))
			}
		}
	}
	for _, o := range ops {
		if o.World != world || !o.IsWrite() || o.Outcome != Ok || o.WorldSeq == 0 {
			continue
		}
		if ev, ok := bySeq[o.WorldSeq]; ok && (ev.Player != o.Player || ev.ClientSeq != o.Seq) {
			r.Mismatch = append(r.Mismatch, fmt.Sprintf("%s: acked %s at seq %d, feed has %s/%d there", world, o, o.WorldSeq, ev.Player, ev.ClientSeq))
		}
	}
	slices.Sort(r.Duplicates)
	return r
}
