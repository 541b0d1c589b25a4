package store

import (
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// A leader whose disk hangs keeps sending heartbeats from its replication
// goroutines while its main loop sits in a log write, so the followers never
// elect anyone else and every write waits for the disk (hashicorp/raft #503;
// the fault suite's hung-disk-leader-503 scenario shows it). The detector
// times each log and stable-store write; when one runs longer than
// Config.DiskStallTimeout it calls Config.OnDiskStall once, and gsd exits
// there (crash-only, as CockroachDB does on a stalled disk) so that the
// others elect a leader with a working disk.

// stallStores wraps raft's log and stable stores and records when the write
// in progress started (0: none).
type stallStores struct {
	raft.LogStore
	stable raft.StableStore
	since  atomic.Int64 // unix nanos of the oldest write in progress
}

func (s *stallStores) begin() func() {
	now := time.Now().UnixNano()
	started := s.since.CompareAndSwap(0, now)
	return func() {
		if started {
			s.since.Store(0)
		}
	}
}

func (s *stallStores) StoreLog(l *raft.Log) error {
	defer s.begin()()
	return s.LogStore.StoreLog(l)
}

func (s *stallStores) StoreLogs(ls []*raft.Log) error {
	defer s.begin()()
	return s.LogStore.StoreLogs(ls)
}

func (s *stallStores) Set(k, v []byte) error {
	defer s.begin()()
	return s.stable.Set(k, v)
}

func (s *stallStores) SetUint64(k []byte, v uint64) error {
	defer s.begin()()
	return s.stable.SetUint64(k, v)
}

func (s *stallStores) Get(k []byte) ([]byte, error)       { return s.stable.Get(k) }
func (s *stallStores) GetUint64(k []byte) (uint64, error) { return s.stable.GetUint64(k) }

// stalled returns how long the write in progress has taken (0: none).
func (s *stallStores) stalled(now time.Time) time.Duration {
	since := s.since.Load()
	if since == 0 {
		return 0
	}
	return now.Sub(time.Unix(0, since))
}

// watchDisk checks the write in progress every tick until stop closes, and
// reports a stall longer than limit once.
func (s *Store) watchDisk(st *stallStores, limit, tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			d := st.stalled(now)
			s.metrics.diskStall.Set(d.Seconds())
			if d > limit {
				s.log.Error("raft log write stalled", "for", d, "limit", limit)
				if s.cfg.OnDiskStall != nil {
					s.cfg.OnDiskStall(d)
				}
				return
			}
		}
	}
}
