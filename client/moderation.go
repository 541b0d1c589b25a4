package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/gsd-dev/gsd/wire"
)

// The moderation routes (docs/API.md, "Moderation"): the anti-cheat
// detectors' flags and their review. They need a token of role moderator
// (WithHeader("Authorization", "Bearer ...")), an admin token or the
// cluster secret.

// FlagFilter narrows Flags; empty fields match every flag.
type FlagFilter struct {
	World, Detector, Player, State string
}

// Flags lists the flags that match f, oldest first (a stale read of the
// answering node).
func (c *Client) Flags(ctx context.Context, f FlagFilter) ([]wire.Flag, error) {
	q := url.Values{}
	for k, v := range map[string]string{"world": f.World, "detector": f.Detector, "player": f.Player, "state": f.State} {
		if v != "" {
			q.Set(k, v)
		}
	}
	var out wire.FlagList
	err := c.do(ctx, &request{method: http.MethodGet, path: path("moderation", "flags"), query: q}, &out)
	return out.Flags, err
}

// Flag returns one flag with its evidence and history.
func (c *Client) Flag(ctx context.Context, id string) (wire.Flag, error) {
	var out wire.Flag
	err := c.do(ctx, &request{method: http.MethodGet, path: path("moderation", "flags", id)}, &out)
	return out, err
}

// ReviewFlag applies op (confirm, dismiss or appeal) to flag id for
// reason; by names the moderator when no token does. It is not repeated
// once it may have been applied: a review that did commit answers
// review_conflict when sent again.
func (c *Client) ReviewFlag(ctx context.Context, id, op, by, reason string) (wire.FlagReviewed, error) {
	var out wire.FlagReviewed
	err := c.do(ctx, &request{method: http.MethodPost, path: path("moderation", "flags", id, op),
		body: wire.FlagReviewRequest{By: by, Reason: reason}, mode: retryUnapplied, write: true}, &out)
	return out, err
}

// RaiseFlag records a flag (admin); recording the same suspicion again
// changes nothing (Created false), so it is retried like an action.
func (c *Client) RaiseFlag(ctx context.Context, f wire.FlagRaise) (wire.FlagRaised, error) {
	var out wire.FlagRaised
	err := c.do(ctx, &request{method: http.MethodPost, path: path("moderation", "flags"), body: f, write: true}, &out)
	return out, err
}
