package play

import "github.com/prometheus/client_golang/prometheus"

// The server's parts of an event's way from one player to the others,
// measured on the node (gsd_play_stage_seconds), so that a slow load
// generator can neither hide nor fake them:
//
//   - act: an action read from a play connection → its result queued
//     (decode, checks, forwarding to the leader, commit, apply);
//   - fanout: an event's leader time → the node's hub offering it to its
//     connections (replication and apply on this node, the feed, the fan);
//   - write: an events frame queued on a connection → written to its
//     socket (the outbox's queue, the writer's wake, the write).
//
// What is left of a client's measured propagation is the network both
// ways and the client itself. fanout compares the leader's clock with
// this node's: on one machine they are the same clock.

const (
	stageAct    = "act"
	stageFanout = "fanout"
	stageWrite  = "write"
)

// stageBuckets span 0.25 ms to 5 s.
var stageBuckets = []float64{.00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

func newStageHistogram() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "gsd_play_stage_seconds",
		Help:    "The server's parts of a play event's way: act (action read → result queued), fanout (leader time → offered by this node's hub), write (events frame queued → written to the socket).",
		Buckets: stageBuckets,
	}, []string{"stage"})
}
