package meta

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/internal/raftlog"
	"github.com/gsd-dev/gsd/shard"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"
)

// Config configures a node's member of the meta group.
type Config struct {
	ID string // this node's id (its Raft server id in every group)
	// Bootstrap forms the meta group when this node has no meta Raft
	// state, with Servers as its first configuration; every member is
	// given the same Servers (raft accepts identical bootstraps).
	// Servers are 3 or 5 voters, and any other node as a raft.Nonvoter:
	// a nonvoter gets the map without voting on it. Raft refuses a
	// bootstrap by a nonvoter, so the voters bootstrap and the leader
	// adds the nonvoters.
	Bootstrap bool
	Servers   []raft.Server
	// Membership is the group that holds the node table in the map the
	// FSM publishes (gsd's group 0).
	Membership uint64
	// Raft timeouts of the meta group.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	// ApplyTimeout bounds a proposal's wait to enter the leader's log.
	ApplyTimeout time.Duration
	// ReportInterval is how often the node tells the meta group which
	// groups it leads, when the map's hints are not already that, and the
	// load of the shards it leads (players, and events per second over
	// the interval) when it changed. 0: never.
	ReportInterval time.Duration
	// Seed, when set, is the map the meta group starts from (gsd's
	// --shard-map): the node proposes it (OpSeed) until the meta map is
	// not empty. It applies to an empty map only, once, so later changes
	// through the meta group are never undone by a restart.
	Seed *shard.Map
	// OpenShards makes the node start, on each report tick, the shards
	// the map makes it a voter of and it does not run yet (with the
	// Manager's store template, bootstrapped with the map's voters), and
	// moves voter replacements on (reconcile.go): a node replaced in a
	// shard stops it and deletes its data. A shard removed from the map
	// is not stopped: its data stays until an operator acts.
	OpenShards bool
	// Voters, when positive, makes the meta leader keep the group's own
	// members to the map's nodes from the report loop (members.go):
	// every node a member, at most Voters of them voters (odd from 3 on,
	// spread over regions), a node removed from the map removed from the
	// group. 0: the members stay as formed (Servers).
	Voters int
	NoSync bool // skip fsync (tests)
	Logger *slog.Logger

	// probeTimeout bounds one probe of a member (0: the package's
	// probeTimeout); tests set a long one to hold a probe open.
	probeTimeout time.Duration
	// wrapProbe, when set, wraps the gate's and mark_down's probe of a
	// member (tests: watch which members are asked at once).
	wrapProbe func(probeFunc) probeFunc
}

// suffrage returns this node's suffrage in Servers.
func (c Config) suffrage() raft.ServerSuffrage {
	for _, s := range c.Servers {
		if string(s.ID) == c.ID {
			return s.Suffrage
		}
	}
	return raft.Nonvoter
}

// DefaultConfig returns the meta group's defaults: raft's LAN timeouts,
// reports every 2 s, members that follow the map with 5 voters.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout: time.Second, ElectionTimeout: time.Second, LeaderLeaseTimeout: 500 * time.Millisecond,
		ApplyTimeout: 10 * time.Second, ReportInterval: 2 * time.Second, Voters: 5,
	}
}

// Validate checks the config.
func (c Config) Validate() error {
	var errs []error
	if c.ID == "" {
		errs = append(errs, errors.New("a node id (ID) is required"))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("a logger is required"))
	}
	if c.Bootstrap && !slices.ContainsFunc(c.Servers, func(s raft.Server) bool { return string(s.ID) == c.ID }) {
		errs = append(errs, fmt.Errorf("the bootstrap servers (Servers) do not name this node (%s)", c.ID))
	}
	if c.HeartbeatTimeout <= 0 || c.ElectionTimeout <= 0 || c.LeaderLeaseTimeout <= 0 || c.ApplyTimeout <= 0 {
		errs = append(errs, errors.New("timeouts must be positive"))
	}
	if c.ReportInterval < 0 {
		errs = append(errs, errors.New("ReportInterval must not be negative"))
	}
	if c.Voters < 0 {
		errs = append(errs, errors.New("the meta voters (Voters) must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("meta group config: %w", err)
	}
	return nil
}

// Group is this node's member of the meta group: Raft on the Manager's
// Layer for shard.MetaGroup, with the FSM; it is the node's
// shard.MapSource (View).
type Group struct {
	cfg   Config
	mgr   *shard.Manager
	fsm   *FSM
	raft  *raft.Raft
	layer *splitLayer
	trans *raft.NetworkTransport
	logs  *raftboltdb.BoltStore
	log   *slog.Logger

	// joinMarks is, per shard this node joins, the shard leader's last
	// log index when this node last asked (catchup.go); the report
	// loop's only.
	joinMarks map[uint64]uint64
	// askLast asks a shard's leader for its last log index (leaderLast;
	// tests stand in for it); leaderAsks runs those asks off the loop,
	// one per shard at a time, and proposals the loop's replacement
	// steps (background.go).
	askLast    func(ctx context.Context, shard uint64, leader string) (uint64, error)
	leaderAsks *tasks[uint64, askedLast]
	proposals  tasks[stepKey, struct{}]
	// memberMarks is, per meta nonvoter, this leader's last log index
	// when it last took the nonvoter's answer of how far it applied
	// (with the prober's probe number then), and barrierTerm the term
	// this leader last waited for its FSM in (members.go); the report
	// loop's only (the prober's goroutines never touch them).
	memberMarks map[string]memberMark
	barrierTerm uint64
	// prober probes the nodes the report loop decides about, off the
	// loop (prober.go); its state is behind its own lock.
	prober *prober
	// probe asks one member which commands it reads (probeMember; a
	// test may wrap it before proposing): the gate and mark_down's
	// admission ask every member at once through it (probeAll).
	probe probeFunc
	// downMu guards markingDown, the mark_down commands being admitted
	// and proposed on this leader; an add or promotion (confirmed) holds
	// it from its checks to its configuration change (members.go).
	downMu      sync.Mutex
	markingDown int

	stopCtx   context.Context // cancelled by Close: stops the loop and its proposals
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

var (
	_ shard.MapSource = (*Group)(nil)
	_ shard.Publish   = (*Group)(nil).Publish
)

// Open starts the meta group on mgr's node, under shard.MetaGroup; the
// Manager closes it with its other groups (or CloseGroup(MetaGroup)).
func Open(mgr *shard.Manager, cfg Config) (*Group, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var g *Group
	_, err := mgr.OpenService(shard.MetaGroup, func(l *shard.Layer, dir string) (shard.Service, error) {
		var err error
		g, err = start(mgr, l, dir, cfg)
		return g, err
	})
	if err != nil {
		return nil, fmt.Errorf("meta group: %w", err)
	}
	return g, nil
}

// start runs Raft for the meta group; it closes l when it fails.
func start(mgr *shard.Manager, l *shard.Layer, dir string, cfg Config) (_ *Group, err error) {
	g := &Group{cfg: cfg, mgr: mgr, fsm: NewFSM(cfg.Membership), joinMarks: map[uint64]uint64{},
		leaderAsks: newTasks[uint64, askedLast](), memberMarks: map[string]memberMark{},
		log: cfg.Logger.With("group", "meta", "node", cfg.ID)}
	g.askLast = g.leaderLast
	g.stopCtx, g.cancel = context.WithCancel(context.Background())
	g.probe = g.probeMember
	if cfg.wrapProbe != nil {
		g.probe = cfg.wrapProbe(g.probe)
	}
	g.prober = newProber(g.stopCtx, g.probeMember, g.answerKeep())
	hlog := raftlog.New("raft-meta", g.log)
	g.layer = newSplitLayer(l, g)
	g.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: g.layer, MaxPool: 3, Timeout: 10 * time.Second, Logger: hlog,
		// One AppendEntries in flight: v1.7.3's pipeline can deadlock
		// (see store's raftMaxRPCsInFlight).
		MaxRPCsInFlight: 1,
	})
	defer func() {
		if err != nil {
			g.cancel()
			g.trans.CloseStreams()
			_ = g.trans.Close()
			g.layer.wait()
			if g.logs != nil {
				_ = g.logs.Close()
			}
		}
	}()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("meta group data dir: %w", err)
	}
	g.logs, err = raftboltdb.New(raftboltdb.Options{
		Path: filepath.Join(dir, "raft.db"), NoSync: cfg.NoSync,
		BoltOptions: &bolt.Options{Timeout: 5 * time.Second},
	})
	if err != nil {
		return nil, fmt.Errorf("open raft log: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, hlog)
	if err != nil {
		return nil, fmt.Errorf("open snapshot store: %w", err)
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout
	rc.Logger = hlog
	hasState, err := raft.HasExistingState(g.logs, g.logs, snaps)
	if err != nil {
		return nil, fmt.Errorf("inspect raft state: %w", err)
	}
	if g.raft, err = raft.NewRaft(rc, g.fsm, g.logs, g.logs, snaps, g.trans); err != nil {
		return nil, fmt.Errorf("start raft: %w", err)
	}
	// A nonvoter cannot bootstrap (raft refuses): the leader adds it.
	if cfg.Bootstrap && !hasState && cfg.suffrage() == raft.Voter {
		f := g.raft.BootstrapCluster(raft.Configuration{Servers: cfg.Servers})
		if err := f.Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			_ = g.raft.Shutdown().Error()
			return nil, fmt.Errorf("bootstrap: %w", err)
		}
	}
	if cfg.ReportInterval > 0 {
		g.wg.Add(1)
		go g.reportLoop()
	}
	return g, nil
}

// View returns the current shard map and leader hints (the FSM's).
func (g *Group) View() *shard.View { return g.fsm.View() }

// Members returns the meta group's Raft configuration as this node
// knows it (its latest, committed or not).
func (g *Group) Members() ([]raft.Server, error) {
	f := g.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	return f.Configuration().Servers, nil
}

// IsLeader reports whether this node leads the meta group.
func (g *Group) IsLeader() bool { return g.raft.State() == raft.Leader }

// Leader returns the meta group's leader's node id, "" when none is known.
func (g *Group) Leader() string {
	_, id := g.raft.LeaderWithID()
	return string(id)
}

// Propose applies c through the meta group and returns its result: on
// this node when it leads, else forwarded to the leader over the meta
// group's Layer (forward.go). Either way it returns once this node's
// replica has applied c (read-your-placement: the next request through
// this node routes by it). The errors wrap ErrBadCommand (c is invalid),
// ErrRefused (the state refuses it), ErrNotLeader (no leader known or
// reachable; when the leadership was lost or the answer did not come
// while c was in flight, c may have applied all the same) or ErrBehind
// (c applied at the leader, not here within ctx or ApplyTimeout).
// Repeating a command is safe: add_node, assign_world and place_world
// answer as the first time, create_shard and the removals are refused
// as done.
func (g *Group) Propose(ctx context.Context, c Command) (Result, error) {
	res, err := g.propose(ctx, c)
	if err != nil || res.Index == 0 {
		// Index 0: a leader on an older binary answered; nothing to wait for.
		return res, err
	}
	return res, g.waitApplied(ctx, res.Index)
}

// propose is Propose without waiting for this node's replica: the
// reports', which only the leader's routing hints need.
func (g *Group) propose(ctx context.Context, c Command) (Result, error) {
	if err := c.Validate(); err != nil {
		return Result{}, err
	}
	if g.IsLeader() {
		return g.apply(ctx, c)
	}
	addr, id := g.raft.LeaderWithID()
	if addr == "" || string(id) == g.cfg.ID {
		return Result{}, fmt.Errorf("%w: no known leader", ErrNotLeader)
	}
	return g.forward(ctx, addr, c)
}

// apply applies c on this node, which must lead the meta group.
func (g *Group) apply(ctx context.Context, c Command) (Result, error) {
	b, err := c.Encode()
	if err != nil {
		return Result{}, err
	}
	if !g.IsLeader() {
		return Result{}, fmt.Errorf("%w: %s does not lead", ErrNotLeader, g.cfg.ID)
	}
	if c.Op == OpMarkDown {
		// No add or promotion between admitDown's look at the
		// configuration and the mark's apply (members.go's confirmed).
		defer g.markDown()()
	}
	if err := g.admit(ctx, c); err != nil {
		return Result{}, err
	}
	timeout := g.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	f := g.raft.Apply(b, timeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrEnqueueTimeout) {
			return Result{}, fmt.Errorf("%w: %w", ErrNotLeader, err)
		}
		return Result{}, fmt.Errorf("meta apply: %w", err)
	}
	a, ok := f.Response().(*Applied)
	if !ok {
		return Result{}, fmt.Errorf("meta apply: unexpected response %T", f.Response())
	}
	if a.Err == nil && (c.Op == OpMarkDown || c.Op == OpRemoveNode) { // answers from before they left: prober.go
		g.prober.forget(func(id string) bool { return id == c.Node || slices.Contains(c.Nodes, id) })
	}
	res := a.Result
	res.Index = f.Index()
	return res, a.Err
}

// reportLoop tells the meta group, every ReportInterval, which groups
// this node leads (when the hints say otherwise) and the load of the
// shards it leads (players, events per second; when it changed since its
// last report).
func (g *Group) reportLoop() {
	defer g.wg.Done()
	t := time.NewTicker(g.cfg.ReportInterval)
	defer t.Stop()
	r := &reported{sent: map[uint64]Load{}, marks: map[uint64]mark{}}
	seeded := g.cfg.Seed == nil
	for {
		select {
		case <-g.stopCtx.Done():
			return
		case <-t.C:
		}
		if g.IsLeader() {
			if g.following() {
				g.followMap()
			} else {
				g.addNonvoters()
			}
		}
		if !seeded {
			seeded = g.seed()
		}
		if g.cfg.OpenShards {
			g.openShards()
			g.reconcile()
		}
		c := g.report(r, time.Now())
		if c.Leads == nil && c.Load == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(g.stopCtx, g.cfg.ApplyTimeout)
		_, err := g.propose(ctx, c)
		cancel()
		if err != nil {
			g.log.Debug("meta report", "err", err)
			continue
		}
		for s, l := range c.Load {
			r.sent[s] = l
		}
	}
}

// seed proposes the seed map and reports whether the meta map holds one
// (this node's, or another's: every node seeds from the same file).
func (g *Group) seed() bool {
	if m := g.fsm.View().Map; len(m.Nodes) > 0 || len(m.Shards) > 0 {
		return true
	}
	ctx, cancel := context.WithTimeout(g.stopCtx, g.cfg.ApplyTimeout)
	defer cancel()
	_, err := g.Propose(ctx, Command{Op: OpSeed, Seed: g.cfg.Seed})
	if err != nil && !errors.Is(err, ErrRefused) {
		g.log.Debug("seed the meta map", "err", err)
		return false
	}
	return true
}

// openShards starts the shards the map makes this node a voter of and
// that it does not run.
func (g *Group) openShards() {
	m := g.fsm.View().Map
	for _, id := range m.ShardsOf(g.cfg.ID) {
		if _, ok := g.mgr.Group(id); ok {
			continue
		}
		voters, err := m.Voters(id)
		if err == nil {
			_, err = g.mgr.Open(id, shard.GroupOptions{Bootstrap: true, Voters: voters})
		}
		if err != nil && !errors.Is(err, shard.ErrGroupTaken) && !errors.Is(err, shard.ErrClosed) {
			g.log.Warn("open shard from the meta map", "shard", id, "err", err)
		}
	}
}

// reported is what the report loop last told the meta group of each
// shard it leads, and where each shard's event count stood.
type reported struct {
	sent  map[uint64]Load
	marks map[uint64]mark
}

// mark is a shard's event count (the sum of its worlds' seqs) at a time.
type mark struct {
	events uint64
	at     time.Time
}

// rate returns the events per second since m, and false when it cannot
// tell (no mark yet, no time passed, or fewer events than before: a
// world was deleted).
func (m mark) rate(events uint64, now time.Time) (uint64, bool) {
	d := now.Sub(m.at)
	if m.at.IsZero() || d <= 0 || events < m.events {
		return 0, false
	}
	return uint64(float64(events-m.events) / d.Seconds()), true
}

// changed says whether l is worth a report after old: other players, or
// an event rate off by more than a tenth (at least 1/s).
func changed(old, l Load) bool {
	if old.Players != l.Players {
		return true
	}
	d := max(old.Events, l.Events) - min(old.Events, l.Events)
	return d > max(old.Events/10, 1)
}

// report is this node's report now: the groups it leads whose hint
// names another node, and the load of the shards it leads where it
// changed since the last report (r).
func (g *Group) report(r *reported, now time.Time) Command {
	v := g.fsm.View()
	c := Command{Op: OpReport, Node: g.cfg.ID}
	lead := func(group, term uint64) {
		if v.Leaders[group] == g.cfg.ID {
			return
		}
		if c.Leads == nil {
			c.Leads = map[uint64]uint64{}
		}
		c.Leads[group] = term
	}
	if g.IsLeader() {
		lead(shard.MetaGroup, g.raft.CurrentTerm())
	}
	for _, id := range g.mgr.Groups() {
		st, ok := g.mgr.Group(id)
		if !ok || !st.IsLeader() {
			continue
		}
		lead(id, st.Status().Term)
		if _, isShard := v.Map.Shard(id); !isShard {
			continue
		}
		var l Load
		var events uint64
		for _, w := range st.Worlds() {
			l.Players += uint64(max(w.Players, 0))
			events += w.Seq
		}
		old, sent := r.sent[id]
		if rate, ok := r.marks[id].rate(events, now); ok {
			l.Events = rate
		} else {
			l.Events = old.Events
		}
		r.marks[id] = mark{events: events, at: now}
		if !sent || changed(old, l) {
			if c.Load == nil {
				c.Load = map[uint64]Load{}
			}
			c.Load[id] = l
		}
	}
	return c
}

// Close stops the reports and Raft (handing the leadership on first when
// this node leads, within ctx) and closes the Layer.
func (g *Group) Close(ctx context.Context) error {
	g.closeOnce.Do(func() {
		g.cancel()
		g.wg.Wait()
		g.prober.close() // after the loop: nothing starts a probe any more
		if g.IsLeader() {
			done := make(chan error, 1)
			go func() { done <- g.raft.LeadershipTransfer().Error() }()
			select {
			case err := <-done:
				if err != nil {
					g.log.Debug("meta leadership transfer", "err", err)
				}
			case <-ctx.Done():
			}
		}
		var errs []error
		if err := g.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("raft shutdown: %w", err))
		}
		g.trans.CloseStreams()
		if err := g.trans.Close(); err != nil {
			errs = append(errs, fmt.Errorf("transport: %w", err))
		}
		g.layer.Close() // the transport closed it too; idempotent
		g.layer.wait()
		if err := g.logs.Close(); err != nil {
			errs = append(errs, fmt.Errorf("raft log: %w", err))
		}
		g.closeErr = errors.Join(errs...)
	})
	return g.closeErr
}
