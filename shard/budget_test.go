package shard

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

// A Manager gives all its groups one in-flight budget of
// Batch.NodeInflight entries; 0 gives none, and a budget the template
// carries is kept.
func TestManagerSharesOneInflightBudgetOfNodeInflight(t *testing.T) {
	t.Parallel()
	cfg := testStoreConfig("n1")
	cfg.Batch.NodeInflight = 3
	m, err := NewManager(ManagerConfig{DataDir: t.TempDir(), Store: cfg}, groupMux(t), nil)
	require.NoError(t, err)
	require.NotNil(t, m.cfg.Store.Budget)
	require.Equal(t, 3, m.cfg.Store.Budget.Size())

	cfg.Batch.NodeInflight = 0
	m, err = NewManager(ManagerConfig{DataDir: t.TempDir(), Store: cfg}, groupMux(t), nil)
	require.NoError(t, err)
	require.Nil(t, m.cfg.Store.Budget, "no node-wide bound")

	own, err := store.NewBudget(5)
	require.NoError(t, err)
	cfg.Budget = own
	cfg.Batch.NodeInflight = 2
	m, err = NewManager(ManagerConfig{DataDir: t.TempDir(), Store: cfg}, groupMux(t), nil)
	require.NoError(t, err)
	require.Same(t, own, m.cfg.Store.Budget)
}

// Two groups of one node sharing a budget of one entry both serve
// concurrent writers, and every slot comes back.
func TestManagerGroupsServeWritersUnderASharedBudget(t *testing.T) {
	t.Parallel()
	cfg := testStoreConfig("n1")
	cfg.Batch.NodeInflight = 1
	m, err := NewManager(ManagerConfig{DataDir: t.TempDir(), Store: cfg}, groupMux(t), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	var groups []*store.Store
	for g := uint64(1); g <= 2; g++ {
		st, err := m.Open(g, GroupOptions{Bootstrap: true})
		require.NoError(t, err)
		waitLeader(t, st)
		mustCreateWorld(t, st, fmt.Sprintf("w%d", g))
		groups = append(groups, st)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, world := groups[w%2], fmt.Sprintf("w%d", w%2+1)
			for seq := uint64(1); seq <= 10; seq++ {
				ev, _, err := st.Act(context.Background(), incr(world, fmt.Sprintf("p%d", w), seq, "e"))
				if err == nil && ev.Status != fsm.StatusApplied {
					err = fmt.Errorf("writer %d seq %d: %s", w, seq, ev.Status)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	// The waiter frees a slot after it answered the entry's callers.
	require.Eventually(t, func() bool { return m.cfg.Store.Budget.InUse() == 0 }, 10*time.Second, time.Millisecond)
}
