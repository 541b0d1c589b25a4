package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

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

// Flags lists every flag that matches f, oldest first (stale reads of
// the answering nodes), following the list's pages: each flag recorded
// before the call is listed once, and those recorded during it at most
// once.
func (c *Client) Flags(ctx context.Context, f FlagFilter) ([]wire.Flag, error) {
	all := []wire.Flag{}
	cursor := ""
	for {
		p, err := c.FlagsPage(ctx, f, cursor, 0)
		if err != nil {
			return nil, err
		}
		all = append(all, p.Flags...)
		if p.NextCursor == "" {
			return all, nil
		}
		cursor = p.NextCursor
	}
}

// FlagsPage lists one page of the flags that match f: at most limit (0:
// the server's default, 100; at most 1000) after cursor ("" for the
// first page). Its NextCursor, when not "", asks for the next page.
func (c *Client) FlagsPage(ctx context.Context, f FlagFilter, cursor string, limit int) (wire.FlagList, error) {
	q := url.Values{}
	for k, v := range map[string]string{"world": f.World, "detector": f.Detector, "player": f.Player, "state": f.State, "cursor": cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out wire.FlagList
	err := c.do(ctx, &request{method: http.MethodGet, path: path("moderation", "flags"), query: q}, &out)
	return out, err
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
