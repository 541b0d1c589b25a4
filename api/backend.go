package api

import (
	"context"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
)

// Backend is what the edge needs from the replicated store. *store.Store
// implements it; the shard manager will later, so api stays unaware of how
// worlds are placed.
type Backend interface {
	// Act proposes an action and returns its committed event (dup=true for
	// an idempotent repeat).
	Act(ctx context.Context, a *fsm.Action) (ev *fsm.Event, dup bool, err error)
	CreateWorld(ctx context.Context, id string, rules fsm.Rules) error
	// UpdateRules replaces a world's rules and returns its new rules
	// version; expect, when not 0, is the version it replaces.
	UpdateRules(ctx context.Context, world string, rules fsm.Rules, expect uint64) (uint64, error)
	Worlds() []fsm.WorldInfo
	Entity(ctx context.Context, world, id string, c store.Consistency) (fsm.EntityView, error)
	Hash(world string, seq uint64) (fsm.HashPoint, error)
	Subscribe(world string, from uint64) (*store.Subscription, error)
	// Session proposes one session command (fsm.CmdSession*) and returns
	// the session as it left it.
	Session(ctx context.Context, kind fsm.CmdKind, c *fsm.SessionCmd) (fsm.SessionInfo, error)
	// SessionAcks proposes the acks of many sessions in one command and
	// returns how many applied (acks of sessions gone are skipped).
	SessionAcks(ctx context.Context, acks []fsm.SessionAck) (int, error)
	// SessionInfo, Sessions, Banned, Bans and PlayerData read this node's
	// applied state (stale): the edge watches its connections' sessions
	// there, whichever node proposed the change.
	SessionInfo(world, id string) (fsm.SessionInfo, error)
	Sessions(world string) ([]fsm.SessionInfo, error)
	Banned(world, player string) (reason string, banned bool)
	Bans(world string) ([]fsm.Ban, error)
	PlayerData(world string) (map[string]map[string]fsm.Value, error)

	Status() store.Status
	IsLeader() bool
	Ready() bool
	// Leader returns the leader's id and HTTP address, when known.
	Leader() (id, httpAddr string)

	Join(ctx context.Context, n fsm.NodeInfo) error
	Remove(ctx context.Context, id string) error
	TransferLeadership(ctx context.Context) error
	Snapshot(ctx context.Context) (uint64, error)
}

var _ Backend = (*store.Store)(nil)
