// Package meta is the meta group: the shard map held once, replicated by
// a small Raft group of its own (3 or 5 voters, other nodes as
// nonvoters), so that every node can route every world (issue 14).
//
// The state (State) is the cluster's nodes (id, Raft and HTTP address,
// region), its shards (id and voters), which world lives on which shard,
// each group's last known leader (reported by the nodes that lead) and
// each shard's load. FSM is the raft.FSM that applies Commands to it;
// every applied entry publishes a new shard.View behind an atomic
// pointer, which the shard.Router loads on each Locate (FSM is a
// shard.MapSource). Worlds the map does not list hash over the shards as
// shard.Map.ShardOf does, so a cluster keeps the placement a static map
// gave it.
//
// Placement (placement.go) is pure: a new world goes to the shard with
// the most headroom (PlaceWorld), a new shard's voters are spread over
// the nodes (SpreadVoters). The FSM runs both itself on place_world and
// create_shard commands, so every replica decides alike.
//
// Group runs the meta group on a node: raft over the Manager's Layer for
// shard.MetaGroup, proposals (forwarded to the meta leader over the same
// Layer), a reporter that tells the meta group which groups this node
// leads, the opening of the shards the map gives the node, and the seed
// of an empty map from a static one (gsd --shard-map --meta). From the
// same loop the meta leader keeps the group's own members to the map's
// nodes (members.go; the nodes are probed off the loop, prober.go), and
// shard voter replacements move on
// (reconcile.go; a joiner catches up with the shard's leader,
// catchup.go, and starts from a clean directory, joindir.go; the calls
// that wait on another node run off the loop, background.go).
package meta
