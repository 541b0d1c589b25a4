package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

// auditVerifier checks refilled events against an audit tree, as gsd's
// auditor does (cmd/gsd), with the tree's own checkpoint.
type auditVerifier struct{ logs map[string]*audit.Log }

func (v auditVerifier) VerifyRefill(world string, evs []*fsm.Event) (int, error) {
	l := v.logs[world]
	if l == nil {
		return 0, nil
	}
	cp, err := l.Checkpoint()
	if err != nil {
		return 0, err
	}
	ws := make([]*wire.Event, len(evs))
	for i, e := range evs {
		w := e.Wire()
		ws[i] = &w
	}
	return l.VerifyEvents(cp, ws...)
}

// storePeers fetches from in-process stores; forge, when set, changes the
// events a node answers.
type storePeers struct {
	mu     sync.Mutex
	stores map[string]*Store
	forge  map[string]bool
	garble bool // every answer's events of another world: a malformed page
	shift  bool // every answer's seqs one later: events relabelled
	stale  bool // every answer's events from before the world's creation
	calls  int
	// notServed answer ErrNotServed (an older gsd, or a node without the
	// group); asked counts the calls to each node.
	notServed map[string]bool
	asked     map[string]int
}

func (p *storePeers) FetchArchive(_ context.Context, node fsm.NodeInfo, world string, from uint64, max int) ([]*fsm.Event, error) {
	p.mu.Lock()
	s, forge, garble, shift, stale := p.stores[node.ID], p.forge[node.ID], p.garble, p.shift, p.stale
	p.calls++
	if p.asked != nil {
		p.asked[node.ID]++
	}
	notServed := p.notServed[node.ID]
	p.mu.Unlock()
	if notServed {
		return nil, fmt.Errorf("%w: node %s answered for another group", ErrNotServed, node.ID)
	}
	if s == nil || s.isClosed() {
		return nil, errors.New("node down")
	}
	_, recs, err := s.ArchiveRecords(world, from, max, 1<<20)
	if err != nil {
		return nil, err
	}
	out := make([]*fsm.Event, len(recs))
	for i, r := range recs {
		if out[i], err = fsm.DecodeEvent(r); err != nil {
			return nil, err
		}
		if forge {
			out[i].Player = "forged"
		}
		if garble {
			out[i].World = "elsewhere"
		}
		if shift {
			out[i].Seq++
		}
		if stale {
			out[i].Index = 0
		}
	}
	return out, nil
}

// damagedCluster is a 3-node cluster whose node victim lost its archive
// while stopped (a corrupt file after an unclean stop, moved aside) and
// restarted from its snapshot: the log no longer holds the early events.
// It returns the cluster, the victim's index and the victim's audit tree
// as it was before the crash (the auditor's file survives the archive's).
func damagedCluster(t *testing.T) (*cluster, int, map[string]*audit.Log) {
	return damagedClusterBy(t, junkPages)
}

// junkPages is a power loss: no clean marker, every page after the meta
// pages junk.
func junkPages(t *testing.T, path string) {
	require.NoError(t, os.Remove(path+".clean"))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	info, err := f.Stat()
	require.NoError(t, err)
	_, err = f.WriteAt(bytes.Repeat([]byte{0xA5}, int(info.Size())-8192), 8192)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// truncated cuts the file to a third after a clean stop (the clean
// marker stays): bbolt would fault reading past its end.
func truncated(t *testing.T, path string) {
	require.FileExists(t, path+".clean")
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.NoError(t, os.Truncate(path, info.Size()/3))
}

func damagedClusterBy(t *testing.T, damage func(*testing.T, string)) (*cluster, int, map[string]*audit.Log) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.TrailingLogs = 4; cfg.SnapshotThreshold = 16 })
	l := c.leader()
	mustCreateWorld(t, l, "arena")
	for seq := uint64(1); seq <= 60; seq++ {
		_, _, err := l.Act(ctxT(t), incr("arena", "p1", seq, "e1", "score", 1))
		require.NoError(t, err)
	}
	c.waitReplicated()
	victim := (indexOf(c, l) + 1) % 3
	v := c.nodes[victim]
	require.NoError(t, v.feed.waitArchived(v.adapter.appliedIndex()))
	held, err := v.arch.read("arena", 1, 1000)
	require.NoError(t, err)
	require.Len(t, held, 60)
	tree, err := audit.Open("arena", &audit.MemStore{})
	require.NoError(t, err)
	for _, e := range held {
		w := e.Wire()
		require.NoError(t, tree.Append(&w))
	}
	_, err = v.Snapshot(ctxT(t)) // the victim's log no longer replays the early events
	require.NoError(t, err)
	c.crash(victim)

	damage(t, filepath.Join(c.cfgs[victim].Dir, "events.db"))

	for seq := uint64(61); seq <= 70; seq++ { // committed while it is down
		_, _, err := c.leader().Act(ctxT(t), incr("arena", "p1", seq, "e1", "score", 1))
		require.NoError(t, err)
	}
	c.restart(victim)
	c.ensureSameHashes("arena")
	return c, victim, map[string]*audit.Log{"arena": tree}
}

// records reads world's events from seq 1 on as node s stores them.
func allRecords(t *testing.T, s *Store, world string) [][]byte {
	t.Helper()
	_, recs, err := s.ArchiveRecords(world, 1, 1000, 1<<30)
	require.NoError(t, err)
	return recs
}

func runRefill(t *testing.T, s *Store, cfg RefillConfig) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.RunRefill(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
}

func peersOf(c *cluster) *storePeers {
	p := &storePeers{stores: map[string]*Store{}, forge: map[string]bool{}}
	for i, s := range c.nodes {
		p.stores[c.cfgs[i].ID] = s
	}
	return p
}

// The Must show: a node whose archive was corrupted while stopped
// detects what it lacks on restart, refills it from its peers, verified
// against its audit tree's root, and serves every event again, byte for
// byte as another node does. A forged answer is refused.
func TestDamagedArchiveIsRefilledFromPeersAndVerifiedAgainstTheAuditRoot(t *testing.T) {
	t.Parallel()
	for name, damage := range map[string]func(*testing.T, string){"corrupt": junkPages, "truncated": truncated} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testRefillAfter(t, damage)
		})
	}
}

func testRefillAfter(t *testing.T, damage func(*testing.T, string)) {
	c, victim, trees := damagedClusterBy(t, damage)
	v := c.nodes[victim]
	other := c.nodes[(victim+1)%3]

	st := v.ArchiveStatus()
	require.NotEmpty(t, st.Missing, "detected on open")
	require.Equal(t, "arena", st.Missing[0].World)
	require.Equal(t, uint64(1), st.Missing[0].From)
	require.GreaterOrEqual(t, st.MissingEvents, uint64(16))
	_, err := v.Subscribe("arena", 1)
	require.ErrorIs(t, err, ErrArchiveGap)

	// The first peer asked forges every event it answers.
	peers := peersOf(c)
	for _, n := range v.fsm.Nodes() {
		if n.ID != v.cfg.ID {
			peers.forge[n.ID] = true
			break
		}
	}
	cfg := DefaultRefillConfig()
	cfg.Peers, cfg.Verifier, cfg.PageSize = peers, auditVerifier{trees}, 16
	runRefill(t, v, cfg)
	require.Eventually(t, func() bool {
		st := v.ArchiveStatus()
		return st.MissingEvents == 0 && st.Refilled > 0 && st.Error == ""
	}, 20*time.Second, 10*time.Millisecond)
	st = v.ArchiveStatus()
	require.Positive(t, st.Refused, "the forged event is refused")
	require.Equal(t, st.Refilled, st.Verified[VerifiedByAudit])

	require.NoError(t, other.feed.waitArchived(other.adapter.appliedIndex()))
	require.NoError(t, v.feed.waitArchived(v.adapter.appliedIndex()))
	want := allRecords(t, other, "arena")
	require.Len(t, want, 70)
	require.Equal(t, want, allRecords(t, v, "arena"), "byte for byte")
	sub, err := v.Subscribe("arena", 1)
	require.NoError(t, err)
	got, err := sub.Next(ctxT(t))
	require.NoError(t, err)
	require.Equal(t, uint64(1), got[0].Seq)
	for _, e := range got {
		require.NotEqual(t, "forged", e.Player)
	}
}

func TestRefillStoresNothingWhenEveryPeerForges(t *testing.T) {
	t.Parallel()
	c, victim, trees := damagedCluster(t)
	v := c.nodes[victim]
	before := v.ArchiveStatus().MissingEvents
	peers := peersOf(c)
	for id := range peers.stores {
		peers.forge[id] = true
	}
	cfg := DefaultRefillConfig()
	cfg.Peers, cfg.Verifier, cfg.PageSize = peers, auditVerifier{trees}, 8
	err := v.refillOnce(ctxT(t), cfg)
	require.ErrorIs(t, err, audit.ErrProof)
	st := v.ArchiveStatus()
	require.Equal(t, before, st.MissingEvents, "nothing stored")
	require.Zero(t, st.Refilled)
	require.Positive(t, st.Refused)
	require.NotEmpty(t, st.Error)
	_, err = v.Subscribe("arena", 1)
	require.ErrorIs(t, err, ErrArchiveGap)
}

// Without an audit tree, two peers must answer the same bytes; when they
// disagree nothing is stored.
func TestRefillWithoutAnAuditTreeNeedsTwoPeersToAgree(t *testing.T) {
	t.Parallel()
	c, victim, _ := damagedCluster(t)
	v := c.nodes[victim]
	peers := peersOf(c)
	for _, n := range v.fsm.Nodes() {
		if n.ID != v.cfg.ID {
			peers.forge[n.ID] = true
			break
		}
	}
	cfg := DefaultRefillConfig()
	cfg.Peers, cfg.PageSize = peers, 16
	err := v.refillOnce(ctxT(t), cfg)
	require.ErrorIs(t, err, ErrUnverifiable)
	require.Zero(t, v.ArchiveStatus().Refilled)

	clear(peers.forge)
	require.NoError(t, v.refillOnce(ctxT(t), cfg))
	st := v.ArchiveStatus()
	require.Zero(t, st.MissingEvents)
	require.Equal(t, st.Refilled, st.Verified[VerifiedByTwoPeers])
	other := c.nodes[(victim+1)%3]
	require.NoError(t, other.feed.waitArchived(other.adapter.appliedIndex()))
	require.NoError(t, v.feed.waitArchived(v.adapter.appliedIndex()))
	require.Equal(t, allRecords(t, other, "arena"), allRecords(t, v, "arena"))
}

func TestRefillConfigAndArchiveRecordsRefuseBadInput(t *testing.T) {
	require.NoError(t, RefillConfig{Peers: &storePeers{}, Interval: time.Second, PageSize: 1}.Validate())
	err := RefillConfig{}.Validate()
	require.ErrorContains(t, err, "Peers")
	require.ErrorContains(t, err, "Interval")
	require.ErrorContains(t, err, "PageSize")

	c := newCluster(t, 1, nil)
	s := c.leader()
	require.Error(t, s.RunRefill(ctxT(t), RefillConfig{}))
	_, _, err = s.ArchiveRecords("arena", 0, 10, 100)
	require.ErrorIs(t, err, fsm.ErrMalformed)
	_, _, err = s.ArchiveRecords("arena", 1, 0, 100)
	require.ErrorIs(t, err, fsm.ErrMalformed)

	// A lone node lacking events says it has no one to ask.
	mustCreateWorld(t, s, "arena")
	for seq := uint64(1); seq <= 3; seq++ {
		_, _, err := s.Act(ctxT(t), incr("arena", "p1", seq, "e1", "score", 1))
		require.NoError(t, err)
		// A round per event, so a run per event: pruning below then
		// deletes the older two.
		require.NoError(t, s.feed.waitArchived(s.adapter.appliedIndex()))
	}
	// The tail serves what the archive does not hold.
	_, recs, err := s.ArchiveRecords("arena", 1, 10, 1<<20)
	require.NoError(t, err)
	require.Len(t, recs, 3)
	_, _, err = s.arch.pruneWorld([]byte("arena"), 0, 1, 10)
	require.NoError(t, err)
	require.NoError(t, s.arch.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(prunedBucket).Delete([]byte("arena")) }))
	missing, err := s.CheckArchive()
	require.NoError(t, err)
	require.NotEmpty(t, missing)
	cfg := DefaultRefillConfig()
	cfg.Peers = &storePeers{}
	require.ErrorContains(t, s.refillOnce(ctxT(t), cfg), "no other node")
	require.Contains(t, s.ArchiveStatus().Error, "no other node")
}

// Events no other node holds any more (their retention deleted them) are
// given up, not retried for ever; the rest of the range is refilled.
func TestRefillGivesUpWhatEveryPeerPrunedAndRefillsTheRest(t *testing.T) {
	t.Parallel()
	c, victim, trees := damagedCluster(t)
	v := c.nodes[victim]
	var floors []uint64
	for i, s := range c.nodes {
		if i == victim {
			continue
		}
		require.NoError(t, s.feed.waitArchived(s.adapter.appliedIndex()))
		_, err := s.arch.prune(0, 40, 10000)
		require.NoError(t, err)
		floor, err := s.arch.pruned("arena")
		require.NoError(t, err)
		require.Positive(t, floor)
		floors = append(floors, floor)
	}
	peers := peersOf(c)
	cfg := DefaultRefillConfig()
	cfg.Peers, cfg.Verifier, cfg.PageSize = peers, auditVerifier{trees}, 8
	require.NoError(t, v.refillOnce(ctxT(t), cfg))
	st := v.ArchiveStatus()
	require.Zero(t, st.MissingEvents)
	require.Positive(t, st.Refilled)
	require.Zero(t, st.Refused)
	floor, err := v.arch.pruned("arena")
	require.NoError(t, err)
	require.Equal(t, min(floors[0], floors[1]), floor, "given up up to the oldest a peer still holds")
	_, recs, err := v.ArchiveRecords("arena", floor+1, 1000, 1<<30)
	require.NoError(t, err)
	require.Len(t, recs, 70-int(floor))
}

// A forging peer's "not held" cannot make the refiller give a range up
// while another peer's answer was refused: it retries instead. Nor can
// peers that relabel events (each one seq later: "we do not hold seq 1"):
// the page they show instead fails verification.
func TestRefillDoesNotGiveUpWhenAnAnswerWasRefused(t *testing.T) {
	t.Parallel()
	c, victim, trees := damagedCluster(t)
	v := c.nodes[victim]
	peers := peersOf(c)
	var pruned bool
	for i, s := range c.nodes {
		if i == victim {
			continue
		}
		if !pruned {
			require.NoError(t, s.feed.waitArchived(s.adapter.appliedIndex()))
			_, err := s.arch.prune(0, 10, 10000)
			require.NoError(t, err)
			pruned = true
			continue
		}
		peers.forge[c.cfgs[i].ID] = true
	}
	cfg := DefaultRefillConfig()
	cfg.Peers, cfg.Verifier, cfg.PageSize = peers, auditVerifier{trees}, 8
	require.Error(t, v.refillOnce(ctxT(t), cfg))
	floor, err := v.arch.pruned("arena")
	require.NoError(t, err)
	require.Zero(t, floor, "nothing given up")
	require.Positive(t, v.ArchiveStatus().MissingEvents)
}

// A refill that failed (every peer forging) is retried at once on
// RefillNow, without waiting for the interval.
func TestRefillNowRetriesAtOnce(t *testing.T) {
	t.Parallel()
	c, victim, trees := damagedCluster(t)
	v := c.nodes[victim]
	peers := peersOf(c)
	for id := range peers.stores {
		peers.forge[id] = true
	}
	cfg := DefaultRefillConfig()
	cfg.Peers, cfg.Verifier, cfg.Interval = peers, auditVerifier{trees}, time.Hour
	runRefill(t, v, cfg)
	require.Eventually(t, func() bool { return v.ArchiveStatus().Refused > 0 }, 20*time.Second, 10*time.Millisecond)
	peers.mu.Lock()
	clear(peers.forge)
	peers.mu.Unlock()
	v.RefillNow()
	require.Eventually(t, func() bool {
		st := v.ArchiveStatus()
		return st.MissingEvents == 0 && st.Refilled > 0
	}, 20*time.Second, 10*time.Millisecond)
}

// A page of another world, or of the world's earlier incarnation (a peer
// that missed its delete and re-creation), is refused; nothing is stored.
func TestRefillRefusesAMalformedPage(t *testing.T) {
	t.Parallel()
	c, victim, _ := damagedCluster(t)
	v := c.nodes[victim]
	before := v.ArchiveStatus().MissingEvents
	for name, garble := range map[string]func(*storePeers){
		"another world":          func(p *storePeers) { p.garble = true },
		"an earlier incarnation": func(p *storePeers) { p.stale = true },
	} {
		peers := peersOf(c)
		garble(peers)
		cfg := DefaultRefillConfig()
		cfg.Peers = peers
		err := v.refillOnce(ctxT(t), cfg)
		require.ErrorIs(t, err, errMalformedPage, name)
		st := v.ArchiveStatus()
		require.Positive(t, st.Refused, name)
		require.Equal(t, before, st.MissingEvents, name)
		require.Zero(t, st.Refilled, name)
	}
}

// Events the archive writer has not stored yet are served from the tail,
// from the oldest the tail holds when from is older.
func TestArchiveRecordsServeTheTailBeforeTheArchiveHasIt(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, nil)
	s := c.leader()
	mustCreateWorld(t, s, "arena")
	fail := func() error { return errors.New("disk full") }
	s.arch.failWrite.Store(&fail)
	for seq := uint64(1); seq <= 4; seq++ {
		_, _, err := s.Act(ctxT(t), incr("arena", "p1", seq, "e1", "score", 1))
		require.NoError(t, err)
	}
	first, recs, err := s.ArchiveRecords("arena", 2, 10, 1<<20)
	require.NoError(t, err)
	require.Equal(t, uint64(2), first)
	require.Len(t, recs, 3)
	ev, err := fsm.DecodeEvent(recs[0])
	require.NoError(t, err)
	require.Equal(t, uint64(2), ev.Seq)
	first, recs, err = s.ArchiveRecords("arena", 5, 10, 1<<20)
	require.NoError(t, err)
	require.Equal(t, uint64(5), first)
	require.Empty(t, recs)
	// The tail starting after from: it answers from its first.
	s.feed.mu.Lock()
	tl := s.feed.tails["arena"]
	tl.first, tl.events = tl.first+1, tl.events[1:]
	s.feed.mu.Unlock()
	first, recs, err = s.ArchiveRecords("arena", 1, 10, 1<<20)
	require.NoError(t, err)
	require.Equal(t, uint64(2), first)
	require.Len(t, recs, 3)
	s.arch.failWrite.Store(nil)
}

func TestRefillDoesNotGiveUpForPeersShowingRelabelledEvents(t *testing.T) {
	t.Parallel()
	c, victim, trees := damagedCluster(t)
	v := c.nodes[victim]
	peers := peersOf(c)
	peers.shift = true
	cfg := DefaultRefillConfig()
	cfg.Peers, cfg.Verifier, cfg.PageSize = peers, auditVerifier{trees}, 8
	err := v.refillOnce(ctxT(t), cfg)
	require.ErrorIs(t, err, audit.ErrProof)
	floor, err := v.arch.pruned("arena")
	require.NoError(t, err)
	require.Zero(t, floor, "nothing given up")
	require.Positive(t, v.ArchiveStatus().Refused)
	require.Zero(t, v.ArchiveStatus().Refilled)
}

// A shard's refill asks the nodes its Members name (the group's voters),
// not its node table; a peer that does not serve the group's archive (an
// older gsd) is skipped with nothing stored from it or counted as
// refused, and the others fill the range.
func TestRefillAsksTheGroupsMembersAndSkipsAPeerThatDoesNotServeIt(t *testing.T) {
	t.Parallel()
	c, victim, trees := damagedCluster(t)
	v := c.nodes[victim]
	peers := peersOf(c)
	peers.asked = map[string]int{}
	var others []fsm.NodeInfo
	for i, cfg := range c.cfgs {
		if i != victim {
			others = append(others, fsm.NodeInfo{ID: cfg.ID, HTTPAddr: cfg.HTTPAddr})
		}
	}
	peers.notServed = map[string]bool{others[0].ID: true}
	cfg := DefaultRefillConfig()
	cfg.Peers, cfg.Verifier, cfg.PageSize = peers, auditVerifier{trees}, 16
	cfg.Members = func() []fsm.NodeInfo {
		// This node, a member without an address yet, and the two others.
		return append([]fsm.NodeInfo{{ID: c.cfgs[victim].ID, HTTPAddr: "self"}, {ID: "joining"}}, others...)
	}
	require.NoError(t, v.refillOnce(ctxT(t), cfg))
	st := v.ArchiveStatus()
	require.Zero(t, st.MissingEvents)
	require.Positive(t, st.Refilled)
	require.Zero(t, st.Refused, "a peer that does not serve the group refuses nothing")
	peers.mu.Lock()
	require.Positive(t, peers.asked[others[0].ID])
	require.Positive(t, peers.asked[others[1].ID])
	require.Zero(t, peers.asked[c.cfgs[victim].ID], "never itself")
	require.Zero(t, peers.asked["joining"], "nor a node without an address")
	peers.mu.Unlock()

	// With no member but itself, nothing is asked and nothing changes.
	c2, victim2, _ := damagedCluster(t)
	v2 := c2.nodes[victim2]
	before := v2.ArchiveStatus().MissingEvents
	cfg.Members = func() []fsm.NodeInfo { return []fsm.NodeInfo{{ID: c2.cfgs[victim2].ID, HTTPAddr: "self"}} }
	require.ErrorContains(t, v2.refillOnce(ctxT(t), cfg), "no other node to refill from")
	require.Equal(t, before, v2.ArchiveStatus().MissingEvents)
}
