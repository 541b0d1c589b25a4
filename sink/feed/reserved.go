package feed

import (
	"slices"
	"strings"
)

// ReservedPrefix starts the names of gsd's own worlds: the sinks'
// positions (PositionsWorld), the relay registry (gsd.relays), the
// anticheat flags (gsd.moderation).
const ReservedPrefix = "gsd."

// Reserved reports whether world is one of gsd's own worlds. The sinks
// leave them out unless told otherwise (FollowConfig.Reserved): they hold
// gsd's records, not play, and a sink that exported the world it writes
// its own positions into would write a position for each export of one.
func Reserved(world string) bool { return strings.HasPrefix(world, ReservedPrefix) }

// Selected reports whether a sink configured with worlds (empty: every
// world) and reserved (FollowConfig.Reserved) takes world: a reserved
// world only when reserved is set or worlds names it.
func Selected(world string, worlds []string, reserved bool) bool {
	if len(worlds) > 0 {
		return slices.Contains(worlds, world)
	}
	return reserved || !Reserved(world)
}
