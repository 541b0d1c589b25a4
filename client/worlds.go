package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gsd-dev/gsd/wire"
)

// WorldFilter selects worlds in a listing (GET /v1/worlds, docs/API.md):
// the zero value selects every world. A matchmaker asks for, say, worlds
// of one mode and label that have room for one more player.
type WorldFilter struct {
	Mode   string
	Labels map[string]string // every label must match
	// HasCapacity, when set, selects worlds with room for one more
	// session (true) or full ones (false).
	HasCapacity *bool
	// MinPlayers and MaxPlayers bound the worlds' sessions; nil: no bound.
	MinPlayers, MaxPlayers *int
	// Limit bounds a page (0: every world, one page); Cursor is a previous
	// page's Next.
	Limit  int
	Cursor string
}

func (f WorldFilter) query() url.Values {
	q := url.Values{}
	if f.Mode != "" {
		q.Set("mode", f.Mode)
	}
	for k, v := range f.Labels {
		q.Add("label", k+":"+v)
	}
	if f.HasCapacity != nil {
		q.Set("has_capacity", strconv.FormatBool(*f.HasCapacity))
	}
	if f.MinPlayers != nil {
		q.Set("min_players", strconv.Itoa(*f.MinPlayers))
	}
	if f.MaxPlayers != nil {
		q.Set("max_players", strconv.Itoa(*f.MaxPlayers))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.Cursor != "" {
		q.Set("cursor", f.Cursor)
	}
	return q
}

// FindWorlds lists one page of the worlds the answering node knows that
// match f (a stale read); next is the cursor of the following page, ""
// after the last.
func (c *Client) FindWorlds(ctx context.Context, f WorldFilter) (worlds []World, next string, err error) {
	var out wire.Worlds
	err = c.do(ctx, &request{method: http.MethodGet, path: path("worlds"), query: f.query()}, &out)
	return out.Worlds, out.Next, err
}

// World reads one world's summary as the answering node has it.
func (c *Client) World(ctx context.Context, world string) (World, error) {
	var out World
	err := c.do(ctx, &request{method: http.MethodGet, path: path("worlds", world)}, &out)
	return out, err
}

// DeleteWorld deletes a world (an admin call) and returns it as it was:
// its state, sessions and archived events go on every node, its connected
// players are disconnected. incarnation, when not 0, must be the world's
// (World.Incarnation), so a world deleted and created again meanwhile
// stays.
func (c *Client) DeleteWorld(ctx context.Context, world string, incarnation uint64) (World, error) {
	q := url.Values{}
	if incarnation != 0 {
		q.Set("incarnation", strconv.FormatUint(incarnation, 10))
	}
	var out World
	err := c.do(ctx, &request{method: http.MethodDelete, path: path("worlds", world), query: q, mode: retryUnapplied, write: true}, &out)
	return out, err
}
