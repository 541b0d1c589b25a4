package store

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// inflightLeader is a one-node group whose batcher proposes at once
// (MaxWait 0) unless PipelineMin holds a batch back.
func inflightLeader(t *testing.T, pipelineMin int) *Store {
	t.Helper()
	c := newCluster(t, 1, func(cfg *Config) {
		cfg.Batch.MaxWait = 0
		cfg.Batch.PipelineMin = pipelineMin
	})
	l := c.leader()
	waitRegistered(t, l) // its node-table writes are critical commands
	mustCreateWorld(t, l, "w")
	return l
}

// fakeInflight takes a slot of b as an entry in flight would (critical:
// one carrying a critical action) and returns what ends it.
func fakeInflight(b *batcher, critical bool) (commit func()) {
	b.sem <- struct{}{}
	if critical {
		b.critFlight.Add(1)
	}
	return func() {
		if critical {
			b.critFlight.Add(-1)
		}
		<-b.sem
		select {
		case b.committed <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
}

func indexes(t *testing.T, ps []*proposal) map[uint64]int {
	t.Helper()
	got := map[uint64]int{}
	for _, p := range ps {
		o := <-p.done
		require.NoError(t, o.err)
		got[o.res.Event.Index]++
	}
	return got
}

// A batch smaller than PipelineMin waits for the group's entry in flight
// to commit, even with MaxWait 0: what arrives meanwhile joins it, so the
// group makes one entry where it would have pipelined two.
func TestSmallBatchWaitsForTheGroupsEntryInFlight(t *testing.T) {
	t.Parallel()
	l := inflightLeader(t, 64)
	b := l.batcher
	commit := fakeInflight(b, true)
	first := queue(l, "a", 5)
	require.Eventually(t, func() bool { return len(b.critical) == 0 }, 10*time.Second, time.Millisecond)
	second := queue(l, "b", 5)
	require.Eventually(t, func() bool { return len(b.critical) == 0 }, 10*time.Second, time.Millisecond)
	select {
	case o := <-first[0].done:
		t.Fatalf("a small batch went out while an entry was in flight: %+v", o)
	default:
	}
	commit()
	got := indexes(t, append(first, second...))
	require.Len(t, got, 1, "one entry for all ten: %v", got)
}

// A batch of PipelineMin actions goes while an entry is in flight.
func TestBatchOfPipelineMinGoesWhileAnEntryIsInFlight(t *testing.T) {
	t.Parallel()
	l := inflightLeader(t, 3)
	commit := fakeInflight(l.batcher, true)
	defer commit()
	require.Len(t, indexes(t, queue(l, "a", 3)), 1)
}

// Critical actions never wait behind bulk: a small critical batch goes
// while only a bulk entry is in flight.
func TestSmallCriticalBatchDoesNotWaitBehindABulkEntry(t *testing.T) {
	t.Parallel()
	l := inflightLeader(t, 64)
	commit := fakeInflight(l.batcher, false)
	defer commit()
	require.Len(t, indexes(t, queue(l, "a", 1)), 1)
}

// A small bulk batch waits behind a bulk entry like any small batch.
func TestSmallBulkBatchWaitsForABulkEntryInFlight(t *testing.T) {
	t.Parallel()
	l := inflightLeader(t, 64)
	b := l.batcher
	commit := fakeInflight(b, false)
	p := newTestProposal(bulkIncr("w", "b", 1))
	b.bulk <- p
	require.Eventually(t, func() bool { return len(b.bulk) == 0 }, 10*time.Second, time.Millisecond)
	q := newTestProposal(bulkIncr("w", "c", 1))
	b.bulk <- q
	require.Eventually(t, func() bool { return len(b.bulk) == 0 }, 10*time.Second, time.Millisecond)
	commit()
	require.Len(t, indexes(t, []*proposal{p, q}), 1, "both in the entry after the one in flight")
}

func TestConfigRefusesANegativePipelineMin(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "n1", t.TempDir())
	cfg.Batch.PipelineMin = -1
	require.ErrorContains(t, cfg.Validate(), "bad batch config")
}
