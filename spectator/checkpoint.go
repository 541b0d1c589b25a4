package spectator

import "github.com/gsd-dev/gsd/wire"

// CheckpointFunc returns world's newest signed audit checkpoint (a note,
// anticheat/audit) of a tree of at most seq events, or nil when there is
// none: the node keeps no audit log of the world, holds no audit key, or
// signed nothing that old yet. It must never return a newer checkpoint: a
// delayed view would learn from its size how many events came since.
type CheckpointFunc func(world string, seq uint64) []byte

// AddCheckpoint sets k's audit checkpoint from f (nil: none) when the
// world's rules hide no field. A checkpoint commits to every event whole,
// hidden changes included, and two of them can give away one event's
// leaf hash (the root of 2^n+1 leaves is the hash of the root of the
// first 2^n and of the last leaf), against which a hidden value from a
// small domain can be guessed: so a world that restricts fields gives
// checkpoints only to those who may see every field, as its audit routes
// do (edge.Core.GuardHashes). Callers that know their viewer sees all
// pass nil for a.
func AddCheckpoint(k *wire.Keyframe, a *Access, f CheckpointFunc) {
	if f == nil || a != nil && a.Restricted() {
		return
	}
	k.Checkpoint = string(f(k.World, k.Seq))
}
