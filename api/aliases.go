package api

import (
	"context"
	"log/slog"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/play"
)

// Names of the edge's shared package that the server's users need, kept
// here so that embedding gsd takes one import.

// AuthConfig configures player identity by JWT (edge.AuthConfig).
type AuthConfig = edge.AuthConfig

// KeySet is a set of verification keys (edge.KeySet).
type KeySet = edge.KeySet

// MaxLeeway bounds AuthConfig.Leeway.
const MaxLeeway = edge.MaxLeeway

// HeaderClusterKey carries the cluster secret on admin and internal calls.
const HeaderClusterKey = edge.HeaderClusterKey

// CodeForbidden answers a credential that may not do what it asks.
const CodeForbidden = edge.CodeForbidden

// NewSingleGroupRouter routes every world to g's group.
func NewSingleGroupRouter(g edge.LeaderGroup) *edge.SingleGroupRouter {
	return edge.NewSingleGroupRouter(g)
}

// LoadJWKSFile reads a JWK Set file (edge.LoadJWKSFile).
func LoadJWKSFile(path string) (KeySet, error) { return edge.LoadJWKSFile(path) }

// NewJWKSURL fetches the JWK Set at url and keeps it fresh (edge.NewJWKSURL).
func NewJWKSURL(ctx context.Context, url string, log *slog.Logger) (KeySet, error) {
	return edge.NewJWKSURL(ctx, url, log)
}

// PlayConfig configures the WebSocket play endpoint (play.Config).
type PlayConfig = play.Config

// DefaultPlayConfig returns the play endpoint's defaults.
func DefaultPlayConfig() PlayConfig { return play.DefaultConfig() }

// UDPConfig configures the UDP input lane (play.UDPConfig).
type UDPConfig = play.UDPConfig

// DefaultUDPConfig returns the UDP lane's defaults.
func DefaultUDPConfig() UDPConfig { return play.DefaultUDPConfig() }

// InterestConfig configures play connections' interest grid (play.InterestConfig).
type InterestConfig = play.InterestConfig

// UDP is a served UDP input lane (play.UDP).
type UDP = play.UDP
