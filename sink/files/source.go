package files

import "github.com/gsd-dev/gsd/sink/feed"

// Source is what the sink reads on one node (feed.Source; in production
// feed.NewStoreSource of the node's store).
type Source = feed.Source

// Subscription reads a world's committed events in seq order without gaps
// (feed.Subscription).
type Subscription = feed.Subscription
