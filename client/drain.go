package client

import (
	"context"
	"net/http"

	"github.com/gsd-dev/gsd/wire"
)

// HeaderClusterKey carries the cluster secret to the admin endpoints of a
// cluster started with one (docs/API.md, "Cluster credential").
const HeaderClusterKey = wire.HeaderClusterKey

// WithClusterSecret sends the cluster secret with every request, for the
// admin endpoints (membership, kick, ban, export, import, drain).
func WithClusterSecret(secret string) Option {
	return WithHeader(HeaderClusterKey, secret)
}

// DrainResult answers a drain: the node, whether it drains, how many play
// connections it moved and the sessions whose connection ended otherwise.
type DrainResult = wire.DrainResult

// Drain makes the node at the client's first address stop taking play
// connections and move its players to other nodes (to: one node id, or
// "" to spread them over all). It answers once every connection moved or
// ended. A drain is never forwarded: give the Client only the address of
// the node to drain, since a failover would drain another node.
func (c *Client) Drain(ctx context.Context, to string) (DrainResult, error) {
	var out DrainResult
	var body any
	if to != "" {
		body = wire.DrainRequest{To: to}
	}
	err := c.do(ctx, &request{method: http.MethodPost, path: path("node", "drain"), body: body, write: true}, &out)
	return out, err
}

// Undrain makes the node at the client's first address take play
// connections again.
func (c *Client) Undrain(ctx context.Context) (DrainResult, error) {
	var out DrainResult
	err := c.do(ctx, &request{method: http.MethodDelete, path: path("node", "drain"), write: true}, &out)
	return out, err
}
