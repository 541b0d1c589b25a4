package store

import (
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the store's Prometheus collectors.
type metrics struct {
	batchSize     prometheus.Histogram
	batchBytes    prometheus.Histogram
	commitLatency prometheus.Histogram
	actLatency    *prometheus.HistogramVec
	actions       *prometheus.CounterVec
	// latencyBy and outcomeBy hold actLatency's child per priority and
	// actions' per event status once used (latency, outcome): WithLabelValues
	// hashes the label and takes the vector's lock on every call, and Act
	// made two such calls per action.
	latencyBy     [2]atomic.Pointer[prometheus.Observer]
	outcomeBy     [4]atomic.Pointer[prometheus.Counter]
	leaderChanges prometheus.Counter
	isLeader      prometheus.Gauge
	diskStall     prometheus.Gauge
	fairHeld      prometheus.Counter
	// commitNotices counts the barriers this leader proposed so that
	// followers learn a commit at once (notice.go).
	commitNotices prometheus.Counter
	fairReordered prometheus.Counter
	// checkpointMismatches counts checkpoints whose leader hash differed
	// from this replica's (checkpoint.go).
	checkpointMismatches prometheus.Counter
	checkpointsCompared  prometheus.Counter
	// mismatchReports counts the mismatch reports this leader counted
	// against its checkpoints, by outcome (checkpoint.go).
	mismatchReports *prometheus.CounterVec
	// heals counts the leader's heals of odd replicas, by outcome
	// (checkpoint_heal.go).
	heals *prometheus.CounterVec
	// rejections counts the rejected actions this node answered as leader,
	// by rule and code, its label pairs bounded (rejections.go).
	rejections *rejectionCounter

	raft       atomic.Pointer[raft.Raft] // for the commit index gauge, once started
	reg        prometheus.Registerer     // where register put the collectors
	registered []prometheus.Collector
}

func newMetrics() *metrics {
	m := &metrics{
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gsd_batch_commands", Help: "Commands per proposed log entry.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
		batchBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gsd_batch_bytes", Help: "Encoded bytes per proposed log entry.",
			Buckets: prometheus.ExponentialBuckets(64, 4, 10),
		}),
		commitLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gsd_commit_latency_seconds", Help: "From proposing a log entry to its apply on the leader.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		actLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gsd_apply_latency_seconds", Help: "From an action entering the batcher to its result, by priority.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"priority"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gsd_actions_total", Help: "Actions answered by this node as leader, by outcome.",
		}, []string{"outcome"}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gsd_leader_changes_total", Help: "Times this node gained or lost leadership.",
		}),
		isLeader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gsd_is_leader", Help: "1 when this node is the Raft leader.",
		}),
		diskStall: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gsd_raft_log_write_in_progress_seconds", Help: "How long the raft log write in progress has taken (0: none).",
		}),
		fairHeld: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gsd_fair_held_total", Help: "Critical actions of fair worlds the leader held for their fair window.",
		}),
		commitNotices: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gsd_commit_notices_total", Help: "Barriers the leader proposed after a commit with nothing else in flight, so that followers learn the commit at once.",
		}),
		fairReordered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gsd_fair_reordered_total", Help: "Held actions proposed at another position than their arrival order.",
		}),
		checkpointMismatches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gsd_checkpoint_mismatches_total", Help: "Hash checkpoints whose leader hash differed from this replica's.",
		}),
		checkpointsCompared: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gsd_checkpoints_compared_total", Help: "Hash checkpoints this replica compared with its own hash.",
		}),
		mismatchReports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gsd_checkpoint_mismatch_reports_total", Help: "Checkpoint mismatch reports this node counted as leader, by what the reporters made of the checkpoint (minority: they are odd; majority: this leader is).",
		}, []string{"outcome"}),
		heals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gsd_checkpoint_heals_total", Help: "Heals of a replica whose state differed from the majority's, by outcome (healed: removed, told to wipe, added again; failed: a step failed; skipped: a guard rail held it back).",
		}, []string{"outcome"}),
		rejections: newRejectionCounter(prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gsd_action_rejections_total", Help: "Rejected actions this node answered as leader, by the declared action (rule) and the reason code; label pairs past a bound count as other.",
		}, []string{"rule", "code"}), maxRejectionLabels),
	}
	return m
}

// latency returns actLatency's child for priority p.
func (m *metrics) latency(p fsm.Priority) prometheus.Observer {
	i := 0
	if p == fsm.PriorityBulk {
		i = 1
	}
	if o := m.latencyBy[i].Load(); o != nil {
		return *o
	}
	o := m.actLatency.WithLabelValues(p.String())
	m.latencyBy[i].Store(&o) // a racing caller stores the same child
	return o
}

// outcome returns actions' child for an event of status st.
func (m *metrics) outcome(st fsm.Status) prometheus.Counter {
	if int(st) >= len(m.outcomeBy) {
		return m.actions.WithLabelValues(st.String())
	}
	if c := m.outcomeBy[st].Load(); c != nil {
		return *c
	}
	c := m.actions.WithLabelValues(st.String())
	m.outcomeBy[st].Store(&c)
	return c
}

// register registers the collectors, and the index gauges of s's adapter
// and (once started) raft, on reg with the store's group as the const label
// "group", so that the Stores of several groups share a registry. A
// collision (a second Store of the same group on reg) is an error, and
// nothing of this Store stays registered.
func (m *metrics) register(reg prometheus.Registerer, s *Store) error {
	reg = prometheus.WrapRegistererWith(prometheus.Labels{"group": strconv.FormatUint(s.cfg.GroupID, 10)}, reg)
	cs := []prometheus.Collector{m.batchSize, m.batchBytes, m.commitLatency, m.actLatency, m.actions, m.leaderChanges, m.isLeader, m.diskStall, m.fairHeld, m.fairReordered, m.commitNotices, m.checkpointMismatches, m.checkpointsCompared, m.mismatchReports, m.heals, m.rejections.vec,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gsd_commit_index", Help: "Raft commit index."},
			func() float64 {
				if r := m.raft.Load(); r != nil {
					return float64(r.CommitIndex())
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gsd_applied_index", Help: "Index the FSM finished applying."},
			func() float64 { return float64(s.adapter.appliedIndex()) }),
	}
	cs = append(cs, s.archiveCollectors()...)
	m.reg = reg
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			m.unregister()
			return fmt.Errorf("register metrics of group %d: %w", s.cfg.GroupID, err)
		}
		m.registered = append(m.registered, c)
	}
	return nil
}

// unregister undoes register: on Close, and when New fails.
func (m *metrics) unregister() {
	for _, c := range m.registered {
		m.reg.Unregister(c)
	}
	m.registered = nil
}
