package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/hashicorp/raft"
)

// Config configures a Store.
type Config struct {
	ID        string // Raft server id; unique in the cluster
	Dir       string // data directory (raft log, snapshots, event archive)
	RaftAddr  string // address the Raft transport listens on (unless StreamLayer or Transport is set)
	Advertise string // address peers dial; defaults to RaftAddr, else the transport's address
	HTTPAddr  string // this node's HTTP address, replicated for forwarding
	Region    string // region name; also the CRDT replica id of worlds created here

	// GroupID names the Raft group this Store is a member of; 0 is the
	// node's first group (the only one before shards). It is the "group"
	// label of the Store's metrics, so Stores of different groups share a
	// registry.
	GroupID uint64

	// StreamLayer, when set, carries the group's Raft connections instead
	// of a listener of the Store's own on RaftAddr (shard.Mux gives each
	// group one over a shared port). The Store builds its transport on it.
	StreamLayer raft.StreamLayer
	// Transport, when set, is used as it is (tests: raft.InmemTransport).
	// It resolves peers' addresses itself: ResolvePeer and the node table
	// are not consulted. At most one of StreamLayer and Transport is set;
	// New takes ownership of it (closes it on Close, or when New fails).
	Transport raft.Transport

	// Bootstrap makes a node with no Raft state form a one-node cluster.
	// A node with existing state never bootstraps.
	Bootstrap bool
	// Voters, when set, are the first configuration a bootstrapping node
	// forms instead of itself alone: every voter of a group formed from a
	// static shard map bootstraps with the same list (raft accepts that).
	// The list must name this node.
	Voters []raft.Server

	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	ApplyTimeout       time.Duration // how long a proposal may wait in raft

	SnapshotThreshold uint64        // log entries between snapshots
	SnapshotInterval  time.Duration // how often to check the threshold
	TrailingLogs      uint64        // entries kept after a snapshot for slow followers
	SnapshotRetain    int

	Batch BatchConfig
	// Budget, when set, bounds the entries in flight over every group
	// given the same Budget (budget.go): shard.Manager gives each node's
	// groups one of Batch.NodeInflight entries. Nil: only
	// Batch.MaxInflight bounds this group's.
	Budget *Budget
	FSM    fsm.Config

	// TailSize is how many recent events per world stay in memory for
	// subscribers (more while the archive writer catches up).
	TailSize int

	// Retention bounds the event archive; events beyond it are pruned and
	// subscribers asking for them get ErrArchiveGap.
	Retention Retention

	// ResolvePeer, when set, overrides the address used to dial a peer (the
	// fault-injection suite puts a proxy on every link this way). Returning
	// false falls back to the replicated node table, then to the Raft
	// configuration's address.
	ResolvePeer func(id string) (string, bool)

	// DiskStallTimeout bounds one raft log write; a longer one is a stalled
	// disk and OnDiskStall is called (0 disables the detector).
	DiskStallTimeout time.Duration
	// OnDiskStall is called once when a write outlasts DiskStallTimeout;
	// the daemon exits there so that a node with a working disk leads.
	OnDiskStall func(stalled time.Duration)
	// CheckpointInterval is how often the leader proposes hash checkpoints
	// of the worlds that changed (checkpoint.go); 0 proposes none.
	CheckpointInterval time.Duration
	// OnCheckpointMismatch is called, on Raft's apply goroutine, when this
	// replica's hash differs from a checkpoint's; it must not block.
	OnCheckpointMismatch func(CheckpointMismatch)
	// HealReplica, when set, turns on automatic healing of a replica whose
	// state differs from the majority's (checkpoint_heal.go): the leader
	// removes it, calls HealReplica (with this group's id) so that the node moves this group's
	// data aside and starts it empty, and adds it again. It returns once
	// the node has taken the order, not once it is back.
	HealReplica func(ctx context.Context, group uint64, node fsm.NodeInfo) error
	// ConfirmMark asks another voter for its hash of world at the
	// checkpoint of log index index (Store.CheckpointMark on that node):
	// the leader heals only when a majority of the voters, itself
	// included, confirm the hash it carried. Required with HealReplica.
	ConfirmMark func(ctx context.Context, group uint64, node fsm.NodeInfo, world string, index uint64) (hash uint64, known bool, err error)
	// HealCooldown is the least time from the end of one heal of this
	// group to the start of the next; 0 means DefaultHealCooldown.
	HealCooldown time.Duration

	// NodeVersions, when set, tells the leader what a voter reads when the
	// voter has not reported to it and the group's node table does not
	// say (false: unknown, the baseline is assumed). A node runs one
	// binary for all its groups, so shard.Manager answers from the node
	// table of the group every node reports to.
	NodeVersions func(id string) (fsm.Versions, bool)

	// Versions are the formats this node reads, reported to the leader's
	// version gate; zero means fsm.Supported(). Tests set older ones to
	// play a node running an older binary.
	Versions fsm.Versions

	// NoSync skips fsync in the Raft log (tests and benchmarks only: a
	// crash can lose acknowledged writes).
	NoSync bool

	Logger *slog.Logger
}

// Retention bounds the event archive. Zero fields mean no bound.
type Retention struct {
	MaxAge            time.Duration // events older than this (by leader time) go
	MaxEventsPerWorld uint64        // only the newest this many per world stay
	Interval          time.Duration // how often to prune
}

// BatchConfig bounds the group-commit batcher.
type BatchConfig struct {
	MaxActions  int           // actions per log entry
	MaxBytes    int           // encoded bytes per log entry
	MaxWait     time.Duration // how long to gather while earlier batches are in flight
	MaxInflight int           // proposals in flight at once
	// PipelineMin is the least actions a batch carries to be proposed
	// while the group's earlier entries are in flight (a critical batch
	// behind bulk entries only goes regardless); a smaller one waits for
	// them to commit. 0 pipelines every batch.
	PipelineMin int
	// BulkPipelineMin is PipelineMin for a batch of bulk actions and
	// session acks only (no critical action, no other command): with
	// fewer, it waits for the group's entries in flight to commit,
	// gathering meanwhile, and goes at once when a critical action joins
	// it. Bulk changes reach players coalesced per tick (50 ms), so a
	// commit's wait costs them nothing seen, while every entry costs each
	// replica a log record, an FSM dispatch and a feed batch (not a synced
	// append of its own: BatchApplyCh writes the entries queued together
	// in one); a critical batch never waits for it. The wait is the
	// larger of the two minimums (one below PipelineMin changes nothing).
	// Session acks wait too (a drain transfer, a bye or a connection's
	// end waits for their commit: at most one commit longer). 0 turns it
	// off: bulk batches left to PipelineMin, acks critical as before.
	BulkPipelineMin int
	// NodeInflight is the size of the Budget shard.Manager shares among a
	// node's groups: entries in flight over all of them (0: no node-wide
	// bound). The default, the node's GOMAXPROCS but at least 2, keeps
	// one core's worth of entries per core: per-entry work is CPU, and a
	// group waiting for the budget gathers a bigger entry meanwhile.
	NodeInflight int
	QueueSize    int // pending actions per lane before ErrOverloaded
}

// DefaultConfig returns LAN defaults.
func DefaultConfig() Config {
	return Config{
		Region:             "local",
		HeartbeatTimeout:   1000 * time.Millisecond,
		ElectionTimeout:    1000 * time.Millisecond,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		CommitTimeout:      50 * time.Millisecond, // followers hear of idle commits from commit notices (notice.go)
		ApplyTimeout:       10 * time.Second,
		SnapshotThreshold:  8192,
		SnapshotInterval:   30 * time.Second,
		TrailingLogs:       10240,
		SnapshotRetain:     2,
		Batch: BatchConfig{
			MaxActions:      512,
			MaxBytes:        1 << 20,
			MaxWait:         time.Millisecond,
			MaxInflight:     16,
			BulkPipelineMin: 64,
			NodeInflight:    max(2, runtime.GOMAXPROCS(0)),
			QueueSize:       65536,
		},
		FSM:      fsm.DefaultConfig(),
		TailSize: 4096,
		Retention: Retention{
			MaxAge:   24 * time.Hour,
			Interval: time.Minute,
		},
		Logger: slog.Default(),
	}
}

// Validate checks the config.
func (c Config) Validate() error {
	var errs []error
	if c.ID == "" {
		errs = append(errs, errors.New("config.ID is required"))
	}
	if c.Dir == "" {
		errs = append(errs, errors.New("config.Dir is required"))
	}
	switch {
	case c.StreamLayer != nil && c.Transport != nil:
		errs = append(errs, errors.New("config.StreamLayer and config.Transport: set at most one"))
	case c.RaftAddr == "" && c.StreamLayer == nil && c.Transport == nil:
		errs = append(errs, errors.New("config.RaftAddr is required"))
	}
	if len(c.Voters) > 0 && !slices.ContainsFunc(c.Voters, func(v raft.Server) bool { return string(v.ID) == c.ID }) {
		errs = append(errs, fmt.Errorf("config.Voters does not name this node (%s)", c.ID))
	}
	if c.Batch.MaxActions < 1 || c.Batch.MaxBytes < 1024 || c.Batch.MaxInflight < 1 || c.Batch.QueueSize < 1 || c.Batch.MaxWait < 0 || c.Batch.NodeInflight < 0 || c.Batch.PipelineMin < 0 || c.Batch.BulkPipelineMin < 0 {
		errs = append(errs, fmt.Errorf("bad batch config %+v", c.Batch))
	}
	if c.TailSize < 1 {
		errs = append(errs, errors.New("config.TailSize must be >= 1"))
	}
	if c.Retention.MaxAge < 0 || (c.Retention.Interval <= 0 && (c.Retention.MaxAge > 0 || c.Retention.MaxEventsPerWorld > 0)) {
		errs = append(errs, errors.New("config.Retention: MaxAge must be >= 0 and Interval > 0 when a bound is set"))
	}
	if c.CheckpointInterval < 0 {
		errs = append(errs, errors.New("config.CheckpointInterval must be >= 0"))
	}
	if c.HealCooldown < 0 {
		errs = append(errs, errors.New("config.HealCooldown must be >= 0"))
	}
	if c.HealReplica != nil && c.ConfirmMark == nil {
		errs = append(errs, errors.New("config.HealReplica needs config.ConfirmMark: a leader heals only what a majority confirms"))
	}
	if c.ApplyTimeout <= 0 {
		errs = append(errs, errors.New("config.ApplyTimeout must be > 0"))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("config.Logger is required"))
	}
	if err := c.FSM.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("store config: %w", err)
	}
	return nil
}

// closeInjected closes the injected StreamLayer or Transport: New owns them
// even when it fails before it built the transport.
func (c Config) closeInjected() {
	if c.StreamLayer != nil {
		c.StreamLayer.Close()
	}
	if c.Transport != nil {
		_ = closeTransport(c.Transport)
	}
}

func (c Config) raftConfig() *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.ID)
	rc.HeartbeatTimeout = c.HeartbeatTimeout
	rc.ElectionTimeout = c.ElectionTimeout
	rc.LeaderLeaseTimeout = c.LeaderLeaseTimeout
	rc.CommitTimeout = c.CommitTimeout
	rc.SnapshotThreshold = c.SnapshotThreshold
	rc.SnapshotInterval = c.SnapshotInterval
	rc.TrailingLogs = c.TrailingLogs
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 256
	return rc
}
