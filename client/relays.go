package client

import (
	"context"
	"net/http"

	"github.com/gsd-dev/gsd/wire"
)

// Relay is a relay's record in the relay registry.
type Relay = wire.Relay

// PutRelay registers r (replacing a relay of the same id) and returns the
// record kept; r.Live marks a relay registering itself, whose heartbeat
// is the put's time (an admin call).
func (c *Client) PutRelay(ctx context.Context, r Relay) (Relay, error) {
	var out Relay
	err := c.do(ctx, &request{method: http.MethodPost, path: path("relays"), body: r, write: true}, &out)
	return out, err
}

// Relays lists every registered relay by id, the stale ones said so (an
// admin call).
func (c *Client) Relays(ctx context.Context) ([]Relay, error) {
	var out wire.RelayList
	err := c.do(ctx, &request{method: http.MethodGet, path: path("relays")}, &out)
	return out.Relays, err
}

// RemoveRelay removes relay id from the registry (an admin call).
func (c *Client) RemoveRelay(ctx context.Context, id string) error {
	return c.do(ctx, &request{method: http.MethodDelete, path: path("relays", id), write: true}, nil)
}

// WorldRelays lists the relays to watch world through, least loaded
// first.
func (c *Client) WorldRelays(ctx context.Context, world string) ([]Relay, error) {
	var out wire.RelayList
	err := c.do(ctx, &request{method: http.MethodGet, path: path("worlds", world, "relays")}, &out)
	return out.Relays, err
}
