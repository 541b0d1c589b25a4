package shard

import "errors"

// Sentinel errors of package shard, checked with errors.Is.
var (
	// ErrBadHeader: an accepted connection sent a short or unknown group header.
	ErrBadHeader = errors.New("gsd/shard: bad group header")
	// ErrGroupTaken: Listen was called twice for one group.
	ErrGroupTaken = errors.New("gsd/shard: group already listening")
	// ErrLayout: a data directory holds a group's files twice (legacy and new layout).
	ErrLayout = errors.New("gsd/shard: ambiguous data directory layout")
	// ErrUnknownGroup: the Manager runs no such group.
	ErrUnknownGroup = errors.New("gsd/shard: no such group on this node")
	// ErrBadMap: a shard map does not validate.
	ErrBadMap = errors.New("gsd/shard: bad shard map")
	// ErrClosed: the Mux or the Layer is closed.
	ErrClosed = errors.New("gsd/shard: closed")
)
