package edge

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/internal/credential"
	"golang.org/x/time/rate"
)

// MaxLeeway bounds AuthConfig.Leeway: a larger clock-skew allowance would
// let expired tokens live on.
const MaxLeeway = 5 * time.Minute

// AuthConfig turns on player identity by JWT. With it, a player is who the
// token's sub says, and nothing in a request body can say otherwise.
type AuthConfig struct {
	// HS256Key is a shared secret for HS256 tokens (nil: none accepted).
	HS256Key []byte
	// PublicKeys verify RS256 (*rsa.PublicKey) and EdDSA
	// (ed25519.PublicKey) tokens.
	PublicKeys []crypto.PublicKey
	// JWKS, when set, verifies RS256 and EdDSA tokens with the key of a
	// JWK Set that their kid names (LoadJWKSFile, NewJWKSURL).
	JWKS KeySet
	// Issuer, when set, must equal the token's iss.
	Issuer string
	// Audience, when set, must be among the token's aud.
	Audience string
	// Leeway is the clock skew allowed on exp and nbf, at most MaxLeeway.
	Leeway time.Duration
	// Now is the clock (nil: time.Now); tests set it.
	Now func() time.Time
}

// Validate checks the config.
func (c *AuthConfig) Validate() error {
	var errs []error
	if len(c.HS256Key) == 0 && len(c.PublicKeys) == 0 && c.JWKS == nil {
		errs = append(errs, errors.New("auth needs an HS256 key, a public key or a JWK Set"))
	}
	if len(c.HS256Key) > 0 && len(c.HS256Key) < credential.MinHS256KeyLen {
		errs = append(errs, fmt.Errorf("the HS256 key must be at least %d bytes", credential.MinHS256KeyLen))
	}
	for i, k := range c.PublicKeys {
		switch k.(type) {
		case *rsa.PublicKey, ed25519.PublicKey:
		default:
			errs = append(errs, fmt.Errorf("public key %d: %T is neither RSA nor Ed25519", i, k))
		}
	}
	if c.Leeway < 0 || c.Leeway > MaxLeeway {
		errs = append(errs, fmt.Errorf("auth leeway must be within 0..%s", MaxLeeway))
	}
	return errors.Join(errs...)
}

// methods returns the signing methods the configured keys can verify.
func (c *AuthConfig) methods() []string {
	var out []string
	if len(c.HS256Key) > 0 {
		out = append(out, jwt.SigningMethodHS256.Alg())
	}
	rsaKey, edKey := c.JWKS != nil, c.JWKS != nil
	for _, k := range c.PublicKeys {
		_, isRSA := k.(*rsa.PublicKey)
		rsaKey = rsaKey || isRSA
		edKey = edKey || !isRSA
	}
	if rsaKey {
		out = append(out, jwt.SigningMethodRS256.Alg())
	}
	if edKey {
		out = append(out, jwt.SigningMethodEdDSA.Alg())
	}
	return out
}

// Authenticator verifies players' tokens.
type Authenticator struct {
	cfg    AuthConfig
	parser *jwt.Parser
}

func NewAuthenticator(cfg AuthConfig) *Authenticator {
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(cfg.methods()),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(cfg.Leeway),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	if cfg.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(cfg.Now))
	}
	return &Authenticator{cfg: cfg, parser: jwt.NewParser(opts...)}
}

// keys returns the keys that can verify t's method (WithValidMethods has
// already refused any other method).
func (a *Authenticator) keys(t *jwt.Token) (any, error) {
	var set jwt.VerificationKeySet
	switch t.Method.Alg() {
	case jwt.SigningMethodHS256.Alg():
		set.Keys = append(set.Keys, a.cfg.HS256Key)
	default:
		for _, k := range a.cfg.PublicKeys {
			if _, isRSA := k.(*rsa.PublicKey); isRSA == (t.Method.Alg() == jwt.SigningMethodRS256.Alg()) {
				set.Keys = append(set.Keys, k)
			}
		}
		if a.cfg.JWKS != nil {
			if k, err := a.cfg.JWKS.Keyfunc(t); err == nil {
				set.Keys = append(set.Keys, k)
			} else if len(set.Keys) == 0 {
				return nil, fmt.Errorf("no key in the JWK Set for this token: %w", err)
			}
		}
	}
	return set, nil
}

// KeySet finds the key that verifies a token (by its kid): a JWK Set read
// by keyfunc from a file or a URL.
type KeySet interface {
	Keyfunc(t *jwt.Token) (any, error)
}

// LoadJWKSFile reads a JWK Set (RFC 7517 JSON) from a file.
func LoadJWKSFile(path string) (KeySet, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	ks, err := keyfunc.NewJWKSetJSON(b)
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %w", path, err)
	}
	return ks, nil
}

// NewJWKSURL fetches a JWK Set from url now (an error if it cannot), then
// refreshes it in the background (hourly, and when a token names an unknown
// kid, at most every 5 minutes) until ctx ends; failed refreshes are logged
// and the keys held so far stay in use.
func NewJWKSURL(ctx context.Context, url string, log *slog.Logger) (KeySet, error) {
	store, err := jwkset.NewStorageFromHTTP(url, jwkset.HTTPClientStorageOptions{
		Ctx:             ctx,
		RefreshInterval: time.Hour,
		HTTPTimeout:     10 * time.Second,
		RefreshErrorHandler: func(ctx context.Context, err error) {
			log.Error("jwks refresh failed; keeping the keys held", "url", url, "err", err)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %w", url, err)
	}
	client, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs:          map[string]jwkset.Storage{url: store},
		RateLimitWaitMax:  time.Minute,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(5*time.Minute), 1),
	})
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %w", url, err)
	}
	ks, err := keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: client})
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %w", url, err)
	}
	return ks, nil
}

// RoleClaim is the JWT claim that names the caller's role: "player"
// (also when absent), "server" (a game server), "admin", or a role of the
// world's rules (docs/API.md, "Roles"). The admin claim (AdminClaim,
// "gsd_admin": true) makes a token an admin's too.
const RoleClaim = "gsd_role"

// Identity is who a request acts as: the token's subject and role. With
// auth off it is empty: the body names the player, and actions carry no
// role (fsm does not restrict them, as before roles).
type Identity struct {
	Player string
	Role   string
}

// role returns the role c's claims give: admin with the admin claim,
// else the role claim, else player. An admin claim beside another role
// is refused: the token's issuer said two things.
func (c *AdminClaims) role() (string, error) {
	switch {
	case c.Admin && c.Role != "" && c.Role != fsm.RoleAdmin:
		return "", fmt.Errorf("the token has %q and %q: %q", credential.AdminClaim, RoleClaim, c.Role)
	case c.Admin:
		return fsm.RoleAdmin, nil
	case c.Role == "":
		return fsm.RolePlayer, nil
	}
	if err := CheckName("token role", c.Role); err != nil {
		return "", err
	}
	return c.Role, nil
}

// Verify checks a raw token and returns its subject, the player.
func (a *Authenticator) Verify(raw string) (string, error) {
	id, _, err := a.VerifyIdentity(raw)
	return id.Player, err
}

// VerifyIdentity checks a raw token and returns who it names (subject and
// role) and how long it stays valid.
func (a *Authenticator) VerifyIdentity(raw string) (Identity, time.Duration, error) {
	if raw == "" {
		return Identity{}, 0, fmt.Errorf("%w: no token", ErrUnauthorized)
	}
	var claims AdminClaims
	if _, err := a.parser.ParseWithClaims(raw, &claims, a.keys); err != nil {
		return Identity{}, 0, fmt.Errorf("%w: %v", ErrUnauthorized, err)
	}
	if err := CheckName("token subject", claims.Subject); err != nil {
		return Identity{}, 0, fmt.Errorf("%w: %v", ErrUnauthorized, err)
	}
	role, err := claims.role()
	if err != nil {
		return Identity{}, 0, fmt.Errorf("%w: %v", ErrUnauthorized, err)
	}
	now := time.Now
	if a.cfg.Now != nil {
		now = a.cfg.Now
	}
	// WithExpirationRequired has made sure exp is there.
	return Identity{Player: claims.Subject, Role: role}, claims.ExpiresAt.Add(a.cfg.Leeway).Sub(now()), nil
}

// Bearer returns the token of an "Authorization: Bearer" header, or "".
func Bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// Identify returns who a request acts as: nobody with auth off (the body
// names the player; no role), else the token's subject and role.
func (s *Core) Identify(r *http.Request) (Identity, error) {
	if s.auth == nil {
		return Identity{}, nil
	}
	id, _, err := s.auth.VerifyIdentity(Bearer(r))
	return id, err
}
