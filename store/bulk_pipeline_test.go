package store

import (
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// bulkLeader is inflightLeader with Batch.BulkPipelineMin set (and
// PipelineMin 0: critical batches pipeline).
func bulkLeader(t *testing.T, bulkMin int) *Store {
	t.Helper()
	c := newCluster(t, 1, func(cfg *Config) {
		cfg.Batch.MaxWait = 0
		cfg.Batch.PipelineMin = 0
		cfg.Batch.BulkPipelineMin = bulkMin
	})
	l := c.leader()
	waitRegistered(t, l)
	mustCreateWorld(t, l, "w")
	return l
}

// queueBulkWait puts a bulk action in s's bulk lane and waits until the
// batcher took it.
func queueBulkWait(t *testing.T, s *Store, player string) *proposal {
	t.Helper()
	p := newTestProposal(bulkIncr("w", player, 1))
	s.batcher.bulk <- p
	require.Eventually(t, func() bool { return len(s.batcher.bulk) == 0 }, 10*time.Second, time.Millisecond)
	return p
}

// requireWaiting fails if any of ps was answered.
func requireWaiting(t *testing.T, ps ...*proposal) {
	t.Helper()
	for _, p := range ps {
		select {
		case o := <-p.done:
			t.Fatalf("a small bulk batch went out while an entry was in flight: %+v", o)
		default:
		}
	}
}

// By default a small batch of bulk actions waits for the group's entry in
// flight to commit, even a critical one (critical batches pipeline:
// PipelineMin 0), and what arrives meanwhile joins it: one entry where
// pipelining made two.
func TestSmallBulkBatchWaitsForACriticalEntryInFlightByDefault(t *testing.T) {
	t.Parallel()
	require.Equal(t, 64, DefaultConfig().Batch.BulkPipelineMin)
	c := newCluster(t, 1, func(cfg *Config) { cfg.Batch.MaxWait = 0 })
	l := c.leader()
	waitRegistered(t, l)
	mustCreateWorld(t, l, "w")
	commit := fakeInflight(l.batcher, true)
	p := queueBulkWait(t, l, "a")
	q := queueBulkWait(t, l, "b")
	requireWaiting(t, p, q)
	commit()
	require.Len(t, indexes(t, []*proposal{p, q}), 1, "both in the entry after the one in flight")
}

// A critical action that joins a waiting bulk batch sends it at once,
// while the entry in flight still is, and goes first in it.
func TestCriticalActionJoiningAWaitingBulkBatchSendsItAtOnce(t *testing.T) {
	t.Parallel()
	l := bulkLeader(t, 64)
	commit := fakeInflight(l.batcher, true)
	defer commit()
	p := queueBulkWait(t, l, "a")
	requireWaiting(t, p)
	crit := queue(l, "c", 1)[0]
	po, co := <-p.done, <-crit.done
	require.NoError(t, po.err)
	require.NoError(t, co.err)
	require.Equal(t, co.res.Event.Index, po.res.Event.Index, "one entry")
	require.Less(t, co.res.Event.Seq, po.res.Event.Seq, "the critical action first in it")
}

// A bulk batch of BulkPipelineMin actions goes while an entry is in
// flight: what arrives while it waits makes it grow to the minimum.
func TestBulkBatchOfBulkPipelineMinGoesWhileAnEntryIsInFlight(t *testing.T) {
	t.Parallel()
	l := bulkLeader(t, 3)
	commit := fakeInflight(l.batcher, true)
	defer commit()
	ps := []*proposal{queueBulkWait(t, l, "a"), queueBulkWait(t, l, "b")}
	requireWaiting(t, ps...)
	ps = append(ps, queueBulkWait(t, l, "c"))
	require.Len(t, indexes(t, ps), 1)
}

// BulkPipelineMin 0 leaves bulk batches to PipelineMin: with 0, a bulk
// batch pipelines behind an entry in flight.
func TestBulkPipelineMinZeroPipelinesBulkBatches(t *testing.T) {
	t.Parallel()
	l := bulkLeader(t, 0)
	commit := fakeInflight(l.batcher, true)
	defer commit()
	p := newTestProposal(bulkIncr("w", "a", 1))
	l.batcher.bulk <- p
	require.Len(t, indexes(t, []*proposal{p}), 1)
}

// Critical batches never wait for BulkPipelineMin: one critical action
// goes behind a critical entry in flight.
func TestBulkPipelineMinDoesNotHoldCriticalBatches(t *testing.T) {
	t.Parallel()
	l := bulkLeader(t, 64)
	commit := fakeInflight(l.batcher, true)
	defer commit()
	require.Len(t, indexes(t, queue(l, "a", 1)), 1)
}

func TestConfigRefusesANegativeBulkPipelineMin(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "n1", t.TempDir())
	cfg.Batch.BulkPipelineMin = -1
	require.ErrorContains(t, cfg.Validate(), "bad batch config")
}

// Session acks join a waiting bulk batch without sending it (they may
// wait as bulk moves do): a bulk move queued after them still joins the
// same entry, after the one in flight.
func TestSessionAcksJoinAWaitingBulkBatchWithoutSendingIt(t *testing.T) {
	t.Parallel()
	l := bulkLeader(t, 64)
	b := l.batcher
	commit := fakeInflight(b, true)
	p := queueBulkWait(t, l, "a")
	acks := &proposal{cmd: fsm.Command{Kind: fsm.CmdSessionAcks, Acks: []fsm.SessionAck{{World: "w", ID: "s1", Seq: 1}}},
		size: 64, done: make(chan outcome, 1)}
	b.critical <- acks // as propose queues it (critical priority)
	require.Eventually(t, func() bool { return len(b.critical) == 0 }, 10*time.Second, time.Millisecond)
	q := queueBulkWait(t, l, "b")
	requireWaiting(t, p, acks, q)
	commit()
	var idx []uint64
	for _, x := range []*proposal{p, acks, q} {
		o := <-x.done
		require.NoError(t, o.err)
		idx = append(idx, o.index)
	}
	require.NotZero(t, idx[0])
	require.Equal(t, []uint64{idx[0], idx[0], idx[0]}, idx, "one entry, after the one in flight")
}
