package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/internal/raftlog"
	"github.com/gsd-dev/gsd/wire"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
)

// Store is one node's member of one Raft group.
type Store struct {
	cfg     Config
	log     *slog.Logger
	fsm     *fsm.FSM
	adapter *fsmAdapter
	feed    *feed
	arch    *archive

	raft      *raft.Raft
	transport raft.Transport
	logStore  *raftboltdb.BoltStore
	batcher   *batcher
	metrics   *metrics
	stall     *stallStores // times raft log writes for the stall detector

	reportMu sync.Mutex
	reported map[string]fsm.Versions // versions nodes reported to this node as leader (versions.go)

	checkMu sync.Mutex
	reports map[checkpointKey]map[string]uint64 // mismatch reporters' hashes per checkpoint of this leader (checkpoint.go)
	lastMis *wire.MismatchReport                // the last of them, for Status
	noticed map[string]bool                     // world and node of the divergence events this leader proposed (checkpoint_heal.go)

	healMu  sync.Mutex
	healing string    // the node a heal is in flight for
	healEnd time.Time // when the last heal ended

	refill refillState // what the event archive lacks, and refills (refill.go)

	ready    atomic.Bool // leader and its barrier applied: reads may be served
	stop     chan struct{}
	wg       sync.WaitGroup
	closeMu  sync.Mutex
	closed   bool
	closeErr error
}

// New opens (or creates) the node's data in cfg.Dir and starts Raft. A node
// with no Raft state and cfg.Bootstrap forms a one-node cluster; a node with
// state rejoins its cluster from it. reg, when not nil, gets the Store's
// metrics labelled with cfg.GroupID.
func New(cfg Config, reg prometheus.Registerer) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		cfg.closeInjected()
		return nil, err
	}
	if cfg.Advertise == "" && cfg.StreamLayer == nil && cfg.Transport == nil {
		cfg.Advertise = cfg.RaftAddr
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		cfg.closeInjected()
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	log := cfg.Logger.With("node", cfg.ID)
	if cfg.GroupID != 0 {
		log = log.With("group", cfg.GroupID)
	}
	s := &Store{cfg: cfg, log: log, stop: make(chan struct{}), reported: make(map[string]fsm.Versions), reports: make(map[checkpointKey]map[string]uint64), noticed: make(map[string]bool)}
	var err error
	if s.fsm, err = fsm.New(cfg.FSM); err != nil {
		cfg.closeInjected()
		return nil, err
	}
	if s.arch, err = openArchive(filepath.Join(cfg.Dir, "events.db"), s.log); err != nil {
		cfg.closeInjected()
		return nil, err
	}
	s.feed = newFeed(s.arch, cfg.TailSize, s.log)
	s.adapter = newFSMAdapter(s.fsm, s.feed)
	s.adapter.onCheckpoint = s.checkpointApplied
	s.metrics = newMetrics()
	if reg != nil {
		// Before Raft starts, so that a collision leaves no Raft state behind.
		if err := s.metrics.register(reg, s); err != nil {
			cfg.closeInjected()
			s.feed.close()
			s.arch.close()
			return nil, err
		}
	}
	if err := s.openRaft(); err != nil {
		s.metrics.unregister()
		s.feed.close()
		s.arch.close()
		return nil, err
	}
	s.metrics.raft.Store(s.raft)
	s.checkArchiveOnOpen()
	s.batcher = newBatcher(cfg.Batch, s.raft, cfg.ApplyTimeout, s.metrics)
	s.batcher.fairness = s.fsm.Fair
	s.batcher.budget = cfg.Budget
	s.batcher.alone = s.adapter.alone
	s.wg.Add(2)
	go s.watchLeadership()
	go func() {
		defer s.wg.Done()
		s.feed.pruner(cfg.Retention, s.stop)
	}()
	if cfg.CheckpointInterval > 0 {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.proposeCheckpoints(cfg.CheckpointInterval)
		}()
	}
	if cfg.DiskStallTimeout > 0 {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.watchDisk(s.stall, cfg.DiskStallTimeout, min(cfg.DiskStallTimeout/4, time.Second))
		}()
	}
	return s, nil
}

// openRaft opens the log and snapshot stores and the transport and starts
// Raft. When it fails, what it opened is closed, the injected transport too.
func (s *Store) openRaft() (err error) {
	cfg := s.cfg
	hlog := raftlog.New("raft", s.log)
	defer func() {
		if err == nil {
			return
		}
		if s.transport != nil {
			_ = closeTransport(s.transport)
		} else {
			cfg.closeInjected()
		}
		if s.logStore != nil {
			s.logStore.Close()
		}
	}()
	s.logStore, err = raftboltdb.New(raftboltdb.Options{
		Path: filepath.Join(cfg.Dir, "raft.db"), NoSync: cfg.NoSync,
		// Fail instead of waiting forever when another process holds the file.
		BoltOptions: &bolt.Options{Timeout: 5 * time.Second},
	})
	if err != nil {
		return fmt.Errorf("open raft log: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, max(cfg.SnapshotRetain, 1), hlog)
	if err != nil {
		return fmt.Errorf("open snapshot store: %w", err)
	}
	if s.transport, err = s.newTransport(hlog); err != nil {
		return err
	}
	if s.cfg.Advertise == "" {
		s.cfg.Advertise = string(s.transport.LocalAddr())
	}
	rc := cfg.raftConfig()
	rc.Logger = hlog
	logs, stable, snapStore := withFailpoints(s, s.logStore, snaps) // the stores themselves unless built with -tags gsd_failpoints
	s.stall = &stallStores{LogStore: logs, stable: stable}
	stable = s.stall
	// Over the stall detector, so that it still times every write.
	if logs, err = raft.NewLogCache(logCacheEntries, s.stall); err != nil {
		return fmt.Errorf("raft log cache: %w", err)
	}
	hasState, err := raft.HasExistingState(logs, stable, snapStore)
	if err != nil {
		return fmt.Errorf("inspect raft state: %w", err)
	}
	s.raft, err = raft.NewRaft(rc, s.adapter, logs, stable, snapStore, s.transport)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	if f := s.raft.GetConfiguration(); f.Error() == nil {
		s.adapter.storeConfiguration(f.Configuration())
	}
	if cfg.Bootstrap && !hasState {
		servers := cfg.Voters
		if len(servers) == 0 {
			servers = []raft.Server{{ID: raft.ServerID(cfg.ID), Address: s.transport.LocalAddr()}}
		}
		s.log.Info("bootstrapping a new cluster", "voters", len(servers))
		f := s.raft.BootstrapCluster(raft.Configuration{Servers: servers})
		if err := f.Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			s.raft.Shutdown()
			return fmt.Errorf("bootstrap: %w", err)
		}
	}
	return nil
}

// newTransport returns the group's Raft transport: the injected one, one on
// the injected stream layer, or one with a TCP listener of its own.
func (s *Store) newTransport(hlog hclog.Logger) (raft.Transport, error) {
	cfg := s.cfg
	if cfg.Transport != nil {
		return cfg.Transport, nil
	}
	tc := &raft.NetworkTransportConfig{
		ServerAddressProvider: addrProvider{s},
		Logger:                hlog,
		MaxPool:               3,
		Timeout:               10 * time.Second,
		MaxRPCsInFlight:       raftMaxRPCsInFlight,
	}
	if cfg.StreamLayer != nil {
		tc.Stream = cfg.StreamLayer
		return raft.NewNetworkTransportWithConfig(tc), nil
	}
	adv, err := net.ResolveTCPAddr("tcp", cfg.Advertise)
	if err != nil {
		return nil, fmt.Errorf("resolve advertise address %q: %w", cfg.Advertise, err)
	}
	t, err := raft.NewTCPTransportWithConfig(cfg.RaftAddr, adv, tc)
	if err != nil {
		return nil, fmt.Errorf("raft transport on %s: %w", cfg.RaftAddr, err)
	}
	return t, nil
}

// closeTransport closes t, and first its pooled outgoing connections, so
// that peers' handlers see EOF.
func closeTransport(t raft.Transport) error {
	if nt, ok := t.(*raft.NetworkTransport); ok {
		nt.CloseStreams()
	}
	if c, ok := t.(raft.WithClose); ok {
		return c.Close()
	}
	return nil
}

// logCacheEntries is how many of the newest log entries Raft reads from
// memory instead of the log store: the leader reads every entry back once
// per follower to replicate it, and a follower once to apply it, and each
// read from raft-boltdb is a bbolt transaction and a msgpack decode into
// fresh buffers (3-7% of a group's CPU, and the most allocated bytes
// after the FSM's). Replication and apply lag the newest entry by about
// the entries in flight (Batch.MaxInflight, 16 by default), so 64 covers
// them with room; an entry holds at most Batch.MaxBytes, and is usually a
// few KB.
const logCacheEntries = 64

// raftMaxRPCsInFlight is 1: replication to each follower sends one
// AppendEntries at a time instead of pipelining them. hashicorp/raft
// v1.7.3's pipeline can deadlock: with the default of 2 in flight both of
// the transport pipeline's channels are unbuffered, and when the decoder
// goroutine stops on a refused append (Success false, or a newer term, as
// around a leader change) the replication loop may still send once more.
// That send then waits forever for the transport's response decoder, which
// waits forever for the decoder goroutine that is gone; the pipeline is
// closed only once that loop returns. The follower gets no more entries
// (heartbeats go on, so nobody calls an election), and raft.Shutdown waits
// for the stuck goroutine forever: Store.Close hung on a failover in the
// api cluster tests.
const raftMaxRPCsInFlight = 1

// addrProvider resolves a peer's Raft address: the override hook, then the
// replicated node table; otherwise raft uses its configuration's address.
type addrProvider struct{ s *Store }

func (p addrProvider) ServerAddr(id raft.ServerID) (raft.ServerAddress, error) {
	if p.s.cfg.ResolvePeer != nil {
		if a, ok := p.s.cfg.ResolvePeer(string(id)); ok {
			return raft.ServerAddress(a), nil
		}
	}
	if n, ok := p.s.fsm.Node(string(id)); ok && n.RaftAddr != "" {
		return raft.ServerAddress(n.RaftAddr), nil
	}
	if a, ok := p.s.adapter.serverAddr(id); ok {
		return a, nil
	}
	return "", fmt.Errorf("no address known for %s", id)
}

// watchLeadership keeps ready and the metrics in step with leadership: a new
// leader applies a barrier (so entries of earlier terms are applied) before
// it serves linearizable reads, and records its own addresses.
func (s *Store) watchLeadership() {
	defer s.wg.Done()
	ch := s.raft.LeaderCh()
	for {
		select {
		case <-s.stop:
			return
		case leader := <-ch:
			s.metrics.leaderChanges.Inc()
			s.ready.Store(false)
			if !leader {
				s.metrics.isLeader.Set(0)
				continue
			}
			s.metrics.isLeader.Set(1)
			if !s.barrier() {
				continue
			}
			s.ready.Store(true)
			s.log.Info("became leader", "term", s.raft.CurrentTerm())
			go s.registerSelf()
		}
	}
}

// barrier applies a barrier as the new leader, retrying while this node
// stays leader: until it succeeds the node serves no linearizable reads.
func (s *Store) barrier() bool {
	for s.raft.State() == raft.Leader {
		err := s.raft.Barrier(s.cfg.ApplyTimeout).Error()
		if err == nil {
			return true
		}
		s.log.Warn("leader barrier failed; retrying", "err", err)
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-s.stop:
			t.Stop()
			return false
		case <-t.C:
		}
	}
	return false
}

// registerSelf writes this node's addresses into the replicated node table
// when they are missing or changed, and the versions reported to it.
func (s *Store) registerSelf() {
	self := s.Self()
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ApplyTimeout)
	defer cancel()
	if cur, ok := s.fsm.Node(s.cfg.ID); !ok || !sameAddrs(cur, self) {
		if _, err := s.propose(ctx, fsm.Command{Kind: fsm.CmdPutNode, Node: &self}); err != nil {
			s.log.Warn("register own addresses", "err", err)
			return
		}
	}
	if err := s.flushReports(ctx); err != nil {
		s.log.Warn("record reported versions", "err", err)
	}
}

// sameAddrs reports whether two node entries have the same addresses.
func sameAddrs(a, b fsm.NodeInfo) bool {
	a.Versions, b.Versions = fsm.Versions{}, fsm.Versions{}
	return a == b
}

// IsLeader reports whether this node is the leader.
func (s *Store) IsLeader() bool { return s.raft.State() == raft.Leader }

// LeaderReady reports whether this node leads and has applied its term's
// barrier, so Act takes actions (IsLeader can be true a moment earlier).
func (s *Store) LeaderReady() bool { return s.IsLeader() && s.ready.Load() }

// GroupID is the Raft group this Store is a member of (Config.GroupID).
func (s *Store) GroupID() uint64 { return s.cfg.GroupID }

// Ready reports whether this node can serve: it knows a leader.
func (s *Store) Ready() bool {
	addr, _ := s.raft.LeaderWithID()
	return addr != ""
}

// Leader returns the leader's id and HTTP address, when known.
func (s *Store) Leader() (id, httpAddr string) {
	_, lid := s.raft.LeaderWithID()
	if lid == "" {
		return "", ""
	}
	if n, ok := s.fsm.Node(string(lid)); ok {
		return string(lid), n.HTTPAddr
	}
	return string(lid), ""
}

// Close shuts the node down: hands leadership to a peer first if it leads a
// multi-node group, stops the batcher (queued actions get ErrNotLeader),
// stops Raft, and flushes the event archive.
func (s *Store) Close(ctx context.Context) error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return s.closeErr
	}
	s.closed = true
	if s.IsLeader() && s.voters() > 1 {
		done := make(chan error, 1)
		go func() { done <- s.raft.LeadershipTransfer().Error() }()
		select {
		case err := <-done:
			if err != nil {
				s.log.Warn("leadership transfer on shutdown failed", "err", err)
			}
		case <-ctx.Done():
		}
	}
	close(s.stop)
	s.feed.abortWaits()
	s.batcher.close()
	// The Store's goroutines stop before Raft does: a new leader's barrier
	// (watchLeadership) that Raft took into its buffered apply channel
	// (BatchApplyCh) but had not read when it shut down is never answered
	// in v1.7.3, and its wait would hold Close forever. A running Raft
	// answers it, at the latest by losing leadership.
	s.wg.Wait()
	var errs []error
	if err := s.raft.Shutdown().Error(); err != nil {
		errs = append(errs, fmt.Errorf("raft shutdown: %w", err))
	}
	if err := closeTransport(s.transport); err != nil {
		errs = append(errs, err)
	}
	s.metrics.unregister() // the group may open again on the same registry
	s.feed.close()
	if err := s.arch.close(); err != nil {
		errs = append(errs, err)
	}
	if err := s.logStore.Close(); err != nil {
		errs = append(errs, err)
	}
	s.closeErr = errors.Join(errs...)
	return s.closeErr
}

func (s *Store) voters() int {
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return 0
	}
	n := 0
	for _, srv := range f.Configuration().Servers {
		if srv.Suffrage == raft.Voter {
			n++
		}
	}
	return n
}
