package pg

import (
	"errors"

	"github.com/gsd-dev/gsd/sink/feed"
)

// Sentinel errors of the sink. The sink retries every failure itself;
// these name what it logs and counts (gsd_pgsink_errors_total).
var (
	// ErrSchemaNewer reports a database whose sink schema a newer gsd
	// wrote: this binary does not know its tables, so it writes nothing.
	ErrSchemaNewer = errors.New("gsd/pg: database schema is newer than this gsd")
	// ErrIncarnation reports that the database's rows of the world
	// incarnation the sink would go on with are not this world's events:
	// a world of the same name and incarnation from a cluster rebuilt
	// from empty data dirs against the same database (its worlds are
	// created at the same log indexes), or from before incarnations with
	// its first event no longer held here. Nothing is written for it.
	ErrIncarnation = errors.New("gsd/pg: the database holds another incarnation of this world")

	// errNotLeading stops a mirror's session when the node stopped
	// leading the world's group between two of the sink's checks.
	errNotLeading = feed.ErrNotLeading
	// errFeedOrder reports events that do not follow the mirror's
	// position (a feed out of order; never expected).
	errFeedOrder = feed.ErrFeedOrder
	// errDB marks a failure of the database.
	errDB = errors.New("gsd/pg: database")
)
