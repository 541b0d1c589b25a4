package store

import (
	"fmt"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// A peer's refusal is logged for what it is: no such world in the group
// on that peer, or no archive of the group served at all.
func TestRefillLogsWhyAPeerDidNotServeTheArchive(t *testing.T) {
	unknown := fmt.Errorf("%w: %w: node n2 holds no world arena in group 3", ErrNotServed, fsm.ErrUnknownWorld)
	require.Contains(t, notServedMessage(unknown), "holds no such world")
	require.NotContains(t, notServedMessage(unknown), "does not serve")
	other := fmt.Errorf("%w: node n2 does not serve group 3 by name", ErrNotServed)
	require.Contains(t, notServedMessage(other), "does not serve this group's archive")
}

// Without an audit tree, one peer holds the lost range and the other's
// answer starts later (it has not swept a moved world's events from
// before the move yet; pruned here): that is no contradiction. Nothing is
// refused (no false alarm), nothing given up (a peer holds the range),
// and the range stays missing for a later refill.
func TestRefillTakesAPeerAnsweringLaterSeqsAsNotHoldingTheRange(t *testing.T) {
	t.Parallel()
	c, victim, _ := damagedCluster(t)
	v := c.nodes[victim]
	var pruned, holder fsm.NodeInfo
	for i, s := range c.nodes {
		if i == victim {
			continue
		}
		n := fsm.NodeInfo{ID: c.cfgs[i].ID, HTTPAddr: c.cfgs[i].HTTPAddr}
		if pruned.ID != "" {
			holder = n
			continue
		}
		pruned = n
		require.NoError(t, s.feed.waitArchived(s.adapter.appliedIndex()))
		_, err := s.arch.prune(0, 10, 10000)
		require.NoError(t, err)
	}
	peers := peersOf(c)
	cfg := DefaultRefillConfig()
	cfg.Peers, cfg.PageSize = peers, 8
	requireUnconfirmed := func(what string) {
		t.Helper()
		err := v.refillOnce(ctxT(t), cfg)
		require.ErrorIs(t, err, ErrUnverifiable, what)
		require.ErrorIs(t, err, errUnconfirmed, what)
		st := v.ArchiveStatus()
		require.Zero(t, st.Refused, what)
		require.Zero(t, st.Refilled, what)
		require.Positive(t, st.MissingEvents, what)
		floor, err := v.arch.pruned("arena")
		require.NoError(t, err)
		require.Zero(t, floor, "nothing given up: a peer holds the range (%s)", what)
	}
	requireUnconfirmed("a peer answering later seqs contradicts nothing")

	// The second peer down, or none at all: unconfirmed, not refused.
	peers.mu.Lock()
	delete(peers.stores, pruned.ID)
	peers.mu.Unlock()
	requireUnconfirmed("the other peer down")
	cfg.Members = func() []fsm.NodeInfo { return []fsm.NodeInfo{holder} }
	requireUnconfirmed("no other peer")
}
