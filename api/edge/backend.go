package edge

import (
	"context"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
)

// Backend is this node's view of the replicated state: what the edge
// reads here whichever node leads (stale reads, the event feed, sessions
// as applied here) and the node's own status. *store.Store implements it.
// Commands that only a world's leader may run (actions, linearizable
// reads, session commands, world creation, membership) are never run
// through it: the edge asks the Router (router.go) where they go and runs
// them on the Group it names, or calls the node it names.
type Backend interface {
	Worlds() []fsm.WorldInfo
	World(id string) (fsm.WorldInfo, error)
	// Entity reads an entity; the edge uses it for stale reads only.
	Entity(ctx context.Context, world, id string, c store.Consistency) (fsm.EntityView, error)
	Hash(world string, seq uint64) (fsm.HashPoint, error)
	Subscribe(world string, from uint64) (*store.Subscription, error)
	// SessionInfo, Sessions, Banned and Bans read this node's
	// applied state (stale): the edge watches its connections' sessions
	// there, whichever node proposed the change.
	SessionInfo(world, id string) (fsm.SessionInfo, error)
	Sessions(world string) ([]fsm.SessionInfo, error)
	Banned(world, player string) (reason string, banned bool)
	Bans(world string) ([]fsm.Ban, error)

	// Status, Ready and Snapshot are about this node itself (GET
	// /v1/status, /readyz, POST /v1/cluster/snapshot, the node id in its
	// sessions), never about where a world's commands go.
	Status() store.Status
	Ready() bool
	Snapshot(ctx context.Context) (uint64, error)
}

// HeldWorlds is what a Backend over several groups has (shard.Backend):
// a world's copy on any group of this node, a fenced one included, when
// Worlds does not list it (it moved to a group this node does not run).
// The node still serves such a world's audit tree up to the move
// (?incarnation=N), so GuardHashes applies the copy's rules to it.
type HeldWorlds interface {
	HeldWorld(id string) (fsm.WorldInfo, bool)
}

var (
	_ Backend     = (*store.Store)(nil)
	_ LeaderGroup = (*store.Store)(nil)
)
