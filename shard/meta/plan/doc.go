// Package plan is placement's arithmetic, pure and standard library
// only: the headroom order the meta group places new worlds by (Place),
// and plans of world moves that use the same order to even out shards
// (Rebalance) or empty one (Drain). The meta group's FSM places with it
// (meta.PlaceWorld); gsdctl plans with it from the shard map it reads,
// then runs each move through the move route. It lives apart from
// shard/meta because gsdctl must not link Raft.
package plan
