package store

import (
	"context"
	"io"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/stretchr/testify/require"
)

// The store-level benchmarks: W writers, each waiting for its own event to
// commit before sending the next, into a 3-replica loopback group with fsync.
// BenchmarkRawRaft runs the same workload on bare hashicorp/raft with a no-op
// FSM, so the ratio survives this noisy machine.
//
//	go test -run '^$' -bench 'Commit|RawRaft' -benchtime 20000x ./store/

func BenchmarkCommit(b *testing.B) {
	for _, w := range []int{1, 64, 1024, 4096} {
		b.Run("writers="+strconv.Itoa(w), func(b *testing.B) {
			c := newCluster(b, 3, nil)
			l := c.leader()
			mustCreateWorld(b, l, "bench")
			run(b, w, func(ctx context.Context, writer int, seq uint64) error {
				a := incr("bench", "p"+strconv.Itoa(writer), seq, "e"+strconv.Itoa(writer%1000), "score", 1)
				_, _, err := l.Act(ctx, a)
				return err
			})
		})
	}
}

func BenchmarkRawRaft(b *testing.B) {
	for _, w := range []int{1, 64, 1024, 4096} {
		b.Run("writers="+strconv.Itoa(w), func(b *testing.B) {
			l := newRawCluster(b, 3)
			payload := fsm.EncodeAction(incr("bench", "p1", 1, "e1", "score", 1))
			run(b, w, func(ctx context.Context, writer int, seq uint64) error {
				return l.Apply(payload, 10*time.Second).Error()
			})
		})
	}
}

// run splits b.N events over w writers and reports events/s and latency.
func run(b *testing.B, w int, op func(ctx context.Context, writer int, seq uint64) error) {
	ctx := context.Background()
	var next atomic.Int64
	lat := make([][]int64, w)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < w; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := uint64(1); next.Add(1) <= int64(b.N); seq++ {
				t0 := time.Now()
				if err := op(ctx, i, seq); err != nil {
					b.Error(err)
					return
				}
				lat[i] = append(lat[i], int64(time.Since(t0)))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := hdrhistogram.New(1, int64(30*time.Second), 3)
	for _, l := range lat {
		for _, v := range l {
			_ = all.RecordValue(v)
		}
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(all.ValueAtQuantile(50))/1e6, "p50-ms")
	b.ReportMetric(float64(all.ValueAtQuantile(99))/1e6, "p99-ms")
}

type nopFSM struct{}

func (nopFSM) Apply(*raft.Log) any                 { return nil }
func (nopFSM) Snapshot() (raft.FSMSnapshot, error) { return nopSnap{}, nil }
func (nopFSM) Restore(r io.ReadCloser) error       { return r.Close() }

type nopSnap struct{}

func (nopSnap) Persist(s raft.SnapshotSink) error { return s.Close() }
func (nopSnap) Release()                          {}

// newRawCluster starts n bare raft nodes with bolt logs (fsync on) over
// loopback TCP, configured like the store's, and returns the leader.
func newRawCluster(b *testing.B, n int) *raft.Raft {
	base := b.TempDir()
	var (
		nodes   []*raft.Raft
		servers []raft.Server
	)
	for i := 0; i < n; i++ {
		cfg := testConfig(b, "r"+strconv.Itoa(i), filepath.Join(base, strconv.Itoa(i)))
		rc := cfg.raftConfig()
		rc.Logger = nil
		rc.LogLevel = "error"
		ls, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(base, strconv.Itoa(i)+".db")})
		require.NoError(b, err)
		tr, err := raft.NewTCPTransport(cfg.RaftAddr, nil, 3, 10*time.Second, io.Discard)
		require.NoError(b, err)
		r, err := raft.NewRaft(rc, nopFSM{}, ls, ls, raft.NewInmemSnapshotStore(), tr)
		require.NoError(b, err)
		nodes = append(nodes, r)
		servers = append(servers, raft.Server{ID: rc.LocalID, Address: tr.LocalAddr()})
		b.Cleanup(func() {
			_ = r.Shutdown().Error()
			tr.CloseStreams()
			_ = tr.Close()
			_ = ls.Close()
		})
	}
	require.NoError(b, nodes[0].BootstrapCluster(raft.Configuration{Servers: servers}).Error())
	var leader *raft.Raft
	require.Eventually(b, func() bool {
		for _, r := range nodes {
			if r.State() == raft.Leader {
				leader = r
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond)
	return leader
}
