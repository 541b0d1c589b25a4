package store

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

// blockingLogs is a log store whose writes wait until release closes.
type blockingLogs struct {
	raft.LogStore
	release chan struct{}
}

func (b *blockingLogs) StoreLogs([]*raft.Log) error { <-b.release; return nil }
func (b *blockingLogs) StoreLog(*raft.Log) error    { <-b.release; return nil }

func TestDiskStallDetectorReportsAWriteThatHangsAndOnlyThat(t *testing.T) {
	release := make(chan struct{})
	st := &stallStores{LogStore: &blockingLogs{release: release}, stable: raft.NewInmemStore()}
	stalled := make(chan time.Duration, 1)
	s := &Store{stop: make(chan struct{}), metrics: newMetrics(), log: testLogger(),
		cfg: Config{OnDiskStall: func(d time.Duration) { stalled <- d }}}

	// Quick writes never trip it.
	require.NoError(t, st.Set([]byte("k"), []byte("v")))
	require.NoError(t, st.SetUint64([]byte("n"), 7))
	v, err := st.Get([]byte("k"))
	require.NoError(t, err)
	require.Equal(t, []byte("v"), v)
	n, err := st.GetUint64([]byte("n"))
	require.NoError(t, err)
	require.Equal(t, uint64(7), n)
	require.Zero(t, st.stalled(time.Now()))

	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = st.StoreLogs([]*raft.Log{{Index: 1}})
		_ = st.StoreLog(&raft.Log{Index: 2})
	}()
	go s.watchDisk(st, 50*time.Millisecond, 5*time.Millisecond)
	select {
	case d := <-stalled:
		require.Greater(t, d, 50*time.Millisecond)
	case <-time.After(30 * time.Second):
		t.Fatal("a hung log write was not reported")
	}
	close(release)
	<-done
	require.Zero(t, st.stalled(time.Now()), "no write in progress")
	close(s.stop)
}

func TestDiskStallDetectorStopsWithTheStore(t *testing.T) {
	st := &stallStores{LogStore: raft.NewInmemStore(), stable: raft.NewInmemStore()}
	s := &Store{stop: make(chan struct{}), metrics: newMetrics(), log: testLogger(),
		cfg: Config{OnDiskStall: func(time.Duration) { t.Error("no stall here") }}}
	ended := make(chan struct{})
	go func() {
		s.watchDisk(st, time.Hour, time.Millisecond)
		close(ended)
	}()
	require.NoError(t, st.StoreLogs([]*raft.Log{{Index: 1}}))
	close(s.stop)
	<-ended
}
