package spectator

import "errors"

// The package's errors.
var (
	// ErrBadRules reports visibility rules the package cannot enforce.
	ErrBadRules = errors.New("gsd/spectator: bad visibility rules")
	// ErrUnknownClass reports a viewer class the world does not declare.
	ErrUnknownClass = errors.New("gsd/spectator: unknown viewer class")
	// ErrBadDelay reports a delay outside 0..fsm.MaxViewDelay.
	ErrBadDelay = errors.New("gsd/spectator: bad delay")
	// ErrGap reports an event that does not follow the state's seq (or
	// belongs to another world).
	ErrGap = errors.New("gsd/spectator: event out of order")
	// ErrSeedTooNew reports a seed state newer than a pipeline's delay
	// allows it to show.
	ErrSeedTooNew = errors.New("gsd/spectator: seed newer than the delay allows")
	// ErrRulesChanged ends the viewers of a pipeline whose world's rules
	// changed: they join again under the new rules.
	ErrRulesChanged = errors.New("gsd/spectator: the world's rules changed")
	// ErrBadCodec reports a watch query's codec option (versions=) that
	// is malformed or cannot be served in the subprotocols offered.
	ErrBadCodec = errors.New("gsd/spectator: bad codec option")
	// ErrClosed reports a pipeline that has stopped.
	ErrClosed = errors.New("gsd/spectator: closed")
)
