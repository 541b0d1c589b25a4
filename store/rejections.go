package store

import (
	"sync"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/prometheus/client_golang/prometheus"
)

// Per-rule rejection counters (issue 12). A rejected action is counted
// once, by the node that answered it as leader (Act), never on every
// replica's apply: gsd_action_rejections_total{rule,code}, where rule is
// the declared action the player invoked (RawRule for raw ops) and code
// is the event's reason code: the name of the failing precondition, or a
// built-in code (forbidden, policy_violation, ...). Neither label carries
// a player. Rules are declared per world, so the pairs are bounded by what
// the worlds declare, but every world may declare its own: past
// maxRejectionLabels distinct pairs, new pairs count as OtherLabel.

const (
	// RawRule is the rule label of a rejected raw-ops action.
	RawRule = "raw"
	// OtherLabel is the rule and code label of the pairs past the bound,
	// and the rule label of an action name the world does not declare.
	OtherLabel = "other"
	// maxRejectionLabels bounds the distinct (rule, code) pairs.
	maxRejectionLabels = 256
)

// rejectionCounter counts rejections by bounded label pairs.
type rejectionCounter struct {
	vec *prometheus.CounterVec
	max int

	mu   sync.Mutex
	seen map[[2]string]prometheus.Counter
}

func newRejectionCounter(vec *prometheus.CounterVec, max int) *rejectionCounter {
	return &rejectionCounter{vec: vec, max: max, seen: make(map[[2]string]prometheus.Counter)}
}

// count counts one rejection of the action named name ("" for raw ops)
// with reason code.
func (r *rejectionCounter) count(name, code string) {
	rule := name
	switch {
	case name == "":
		rule = RawRule
	case code == fsm.CodeUnknownAction:
		rule = OtherLabel // the name is the caller's, not the rules'
	}
	key := [2]string{rule, code}
	r.mu.Lock()
	c, ok := r.seen[key]
	if !ok {
		if len(r.seen) >= r.max {
			key = [2]string{OtherLabel, OtherLabel}
			c, ok = r.seen[key]
		}
		if !ok {
			c = r.vec.WithLabelValues(key[0], key[1])
			r.seen[key] = c
		}
	}
	r.mu.Unlock()
	c.Inc()
}
