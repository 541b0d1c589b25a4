package webhook

import (
	"errors"

	"github.com/gsd-dev/gsd/sink/feed"
)

// Sentinel errors of the sink. The sink retries every failure itself;
// these name what it logs and counts (gsd_webhook_failures_total).
var (
	// ErrRejected reports a receiver that answered a batch with a status
	// other than 2xx.
	ErrRejected = errors.New("gsd/webhook: receiver did not accept the batch")

	// errNotLeading stops a world's export when the node stopped leading
	// the world's group between two of the sink's checks.
	errNotLeading = feed.ErrNotLeading
	// errFeedOrder reports events that do not follow the position.
	errFeedOrder = feed.ErrFeedOrder
	// errCheckpoint marks a failure to write the checkpoint file.
	errCheckpoint = errors.New("gsd/webhook: checkpoint")
)
