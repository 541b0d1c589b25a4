package shard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// ManagerConfig configures a Manager.
type ManagerConfig struct {
	// DataDir is the node's data directory; group g keeps its files in
	// GroupDir(DataDir, g).
	DataDir string
	// Store is the template of every group's store.Config: node identity
	// (ID, HTTPAddr, Region), timeouts, batching, FSM and Logger. The
	// Manager sets Dir, GroupID, StreamLayer, Bootstrap and Voters per
	// group, and gives all groups one store.Budget of Batch.NodeInflight
	// entries unless Store.Budget is set; RaftAddr, Advertise and Transport must be empty (the groups
	// share the Mux).
	Store store.Config
	// Membership is the group whose node table every node reports its
	// versions to (gsd's group 0). The other groups' leaders take a
	// voter's versions from there when the voter has not reported to
	// them (store.Config.NodeVersions): all of a node's groups run one
	// binary.
	Membership uint64
}

// Validate checks the config.
func (c ManagerConfig) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("a data directory (DataDir) is required"))
	}
	if c.Store.RaftAddr != "" || c.Store.Advertise != "" || c.Store.Transport != nil || c.Store.StreamLayer != nil {
		errs = append(errs, errors.New("Store.RaftAddr, Advertise, Transport and StreamLayer must be empty: groups share the mux"))
	}
	if c.Store.ID == "" {
		errs = append(errs, errors.New("a node id (Store.ID) is required"))
	}
	if c.Store.Logger == nil {
		errs = append(errs, errors.New("a logger (Store.Logger) is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("shard manager config: %w", err)
	}
	return nil
}

// GroupOptions says how Manager.Open starts a group.
type GroupOptions struct {
	// Bootstrap forms the group when its directory holds no Raft state
	// (with existing state the group rejoins from it, whatever this says).
	Bootstrap bool
	// Voters, with Bootstrap, are the group's first voters; every voter
	// bootstraps with the same list. Empty: this node alone.
	Voters []raft.Server
}

// MetaGroup is the reserved group id of the meta group (shard/meta), the
// replicated shard map: the largest uint64, so it never collides with the
// small shard ids users choose (Map.Validate refuses it as a shard id).
// Group 0 keeps the node table, as before shards.
const MetaGroup uint64 = math.MaxUint64

// A Service is a Raft group the Manager runs that is not a store.Store:
// the meta group. Close stops it, and closes the Layer it was given.
type Service interface {
	Close(ctx context.Context) error
}

// Manager runs a node's Raft groups: each a store.Store with its own data
// directory, all carried by one Mux. The Mux must outlive the Manager.
type Manager struct {
	cfg ManagerConfig
	mux *Mux
	reg prometheus.Registerer
	log *slog.Logger

	openMu sync.Mutex // serialises Opens, a Store's CloseGroup and Close's start
	mu     sync.RWMutex
	groups map[uint64]*store.Store
	svcs   map[uint64]Service // groups that are not Stores (OpenService)
	closed bool
}

// NewManager returns a Manager for the node's data directory, moving a
// single-group layout (gsd before shards) to group 0's directory first.
// reg, when not nil, gets every group's metrics, labelled by group.
func NewManager(cfg ManagerConfig, mux *Mux, reg prometheus.Registerer) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if mux == nil {
		return nil, errors.New("shard manager: a mux is required")
	}
	if cfg.Store.Budget == nil && cfg.Store.Batch.NodeInflight > 0 {
		// One budget for all the node's groups: entries in flight cost
		// the node alike whichever group proposed them (store/budget.go).
		b, err := store.NewBudget(cfg.Store.Batch.NodeInflight)
		if err != nil {
			return nil, err
		}
		cfg.Store.Budget = b
	}
	log := cfg.Store.Logger.With("node", cfg.Store.ID)
	moved, err := MigrateLegacyLayout(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if moved {
		log.Info("moved the single-group data layout to group 0's directory", "dir", GroupDir(cfg.DataDir, 0))
	}
	return &Manager{cfg: cfg, mux: mux, reg: reg, log: log, groups: make(map[uint64]*store.Store), svcs: make(map[uint64]Service)}, nil
}

// Open starts group on this node and returns its Store. A group runs at
// most once per Manager: a second Open fails with ErrGroupTaken until
// CloseGroup.
func (m *Manager) Open(group uint64, o GroupOptions) (*store.Store, error) {
	m.openMu.Lock()
	defer m.openMu.Unlock()
	if err := m.checkFree(group); err != nil {
		return nil, err
	}
	layer, err := m.mux.Listen(group)
	if err != nil {
		return nil, fmt.Errorf("open group %d: %w", group, err)
	}
	cfg := m.cfg.Store
	cfg.Dir = GroupDir(m.cfg.DataDir, group)
	cfg.GroupID = group
	cfg.StreamLayer = layer
	cfg.Bootstrap = o.Bootstrap
	cfg.Voters = o.Voters
	if group != m.cfg.Membership {
		cfg.NodeVersions = m.nodeVersions
	}
	st, err := store.New(cfg, m.reg) // closes the layer when it fails
	if err != nil {
		return nil, fmt.Errorf("open group %d: %w", group, err)
	}
	m.mu.Lock()
	m.groups[group] = st
	m.mu.Unlock()
	return st, nil
}

// checkFree fails when the Manager is closed or runs group already.
// openMu is held.
func (m *Manager) checkFree(group uint64) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	_, running := m.groups[group]
	_, svc := m.svcs[group]
	switch {
	case m.closed:
		return ErrClosed
	case running || svc:
		return fmt.Errorf("%w: %d", ErrGroupTaken, group)
	}
	return nil
}

// OpenService starts group as a Raft group that is not a Store (the meta
// group, shard/meta): start gets the group's Layer and data directory
// (GroupDir) and owns the Layer from then on, closing it when it fails.
// The Manager closes the Service with CloseGroup and Close.
func (m *Manager) OpenService(group uint64, start func(l *Layer, dir string) (Service, error)) (Service, error) {
	m.openMu.Lock()
	defer m.openMu.Unlock()
	if err := m.checkFree(group); err != nil {
		return nil, err
	}
	layer, err := m.mux.Listen(group)
	if err != nil {
		return nil, fmt.Errorf("open group %d: %w", group, err)
	}
	svc, err := start(layer, GroupDir(m.cfg.DataDir, group))
	if err != nil {
		return nil, fmt.Errorf("open group %d: %w", group, err)
	}
	m.mu.Lock()
	m.svcs[group] = svc
	m.mu.Unlock()
	return svc, nil
}

// Group returns group's Store when this node runs it.
func (m *Manager) Group(group uint64) (*store.Store, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	st, ok := m.groups[group]
	return st, ok
}

// Groups returns the ids of the groups this node runs, in order.
func (m *Manager) Groups() []uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	ids := make([]uint64, 0, len(m.groups))
	for g := range m.groups {
		ids = append(ids, g)
	}
	slices.Sort(ids)
	return ids
}

// CloseGroup stops group on this node (store.Store.Close: leadership is
// handed on first when it leads); its data stays, and Open may start it
// again. The other groups go on.
func (m *Manager) CloseGroup(ctx context.Context, group uint64) error {
	m.openMu.Lock()
	m.mu.Lock()
	st, isStore := m.groups[group]
	svc, isSvc := m.svcs[group]
	delete(m.groups, group)
	delete(m.svcs, group)
	m.mu.Unlock()
	var err error
	switch {
	case isStore:
		err = st.Close(ctx)
		m.openMu.Unlock()
	case isSvc:
		// A Service may Open groups until it stops (the meta group
		// opens shards), so it closes without the open lock.
		m.openMu.Unlock()
		err = svc.Close(ctx)
	default:
		m.openMu.Unlock()
		return fmt.Errorf("%w: %d", ErrUnknownGroup, group)
	}
	if err != nil {
		return fmt.Errorf("close group %d: %w", group, err)
	}
	return nil
}

// Close stops every group, all at once (each hands its leadership on
// within ctx), and refuses later Opens. The Mux stays open: its owner
// closes it after.
func (m *Manager) Close(ctx context.Context) error {
	m.openMu.Lock()
	m.mu.Lock()
	groups := make(map[uint64]Service, len(m.groups)+len(m.svcs))
	for g, st := range m.groups {
		groups[g] = st
	}
	for g, svc := range m.svcs {
		groups[g] = svc
	}
	m.groups = make(map[uint64]*store.Store)
	m.svcs = make(map[uint64]Service)
	m.closed = true
	m.mu.Unlock()
	// Opens from now on fail with ErrClosed; a Service that opens groups
	// (the meta group) must not wait for the lock while it stops.
	m.openMu.Unlock()
	errs := make(chan error, len(groups))
	var wg sync.WaitGroup
	for g, st := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := st.Close(ctx); err != nil {
				errs <- fmt.Errorf("close group %d: %w", g, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// nodeVersions answers what node id reads from the membership group's
// node table on this node.
func (m *Manager) nodeVersions(id string) (fsm.Versions, bool) {
	st, ok := m.Group(m.cfg.Membership)
	if !ok {
		return fsm.Versions{}, false
	}
	n, ok := st.Node(id)
	return n.Versions, ok
}
