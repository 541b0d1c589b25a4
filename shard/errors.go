package shard

import "errors"

// Sentinel errors of package shard, checked with errors.Is.
var (
	// ErrBadHeader: an accepted connection sent a short or unknown group header.
	ErrBadHeader = errors.New("gsd/shard: bad group header")
	// ErrGroupTaken: Listen was called twice for one group.
	ErrGroupTaken = errors.New("gsd/shard: group already listening")
	// ErrClosed: the Mux or the Layer is closed.
	ErrClosed = errors.New("gsd/shard: closed")
)
