package main

import (
	"context"
	"crypto"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/api"
	"github.com/gsd-dev/gsd/internal/credential"
	"github.com/spf13/pflag"
)

// authOptions are the JWT flags; with no key file auth stays off.
type authOptions struct {
	hs256KeyFile  string
	publicKeyFile string
	jwksFile      string
	jwksURL       string
	issuer        string
	audience      string
	leeway        time.Duration
}

func (a *authOptions) flags(f *pflag.FlagSet) {
	f.StringVar(&a.hs256KeyFile, "jwt-hs256-key-file", "", "file holding the HS256 secret players' tokens are signed with (turns auth on)")
	f.StringVar(&a.publicKeyFile, "jwt-public-key-file", "", "PEM file of RSA (RS256) and Ed25519 (EdDSA) public keys that verify players' tokens (turns auth on)")
	f.StringVar(&a.jwksFile, "jwt-jwks-file", "", "JWK Set (RFC 7517 JSON) file whose keys, by kid, verify players' RS256 and EdDSA tokens (turns auth on)")
	f.StringVar(&a.jwksURL, "jwt-jwks-url", "", "URL of a JWK Set, fetched at start and refreshed in the background (hourly, and on an unknown kid), that verifies players' RS256 and EdDSA tokens (turns auth on)")
	f.StringVar(&a.issuer, "jwt-issuer", "", "required iss of players' tokens")
	f.StringVar(&a.audience, "jwt-audience", "", "required aud of players' tokens")
	f.DurationVar(&a.leeway, "jwt-leeway", 30*time.Second, fmt.Sprintf("clock skew allowed on exp and nbf (at most %s)", api.MaxLeeway))
}

// config returns the api's auth config, nil when no key is given. With
// fetch false (flag checks) a JWKS URL is only parsed; with fetch true it is
// fetched, and refreshed until ctx ends.
func (a *authOptions) config(ctx context.Context, fetch bool, log *slog.Logger) (*api.AuthConfig, error) {
	if a.hs256KeyFile == "" && a.publicKeyFile == "" && a.jwksFile == "" && a.jwksURL == "" {
		if a.issuer != "" || a.audience != "" {
			return nil, usageError{fmt.Errorf("--jwt-issuer and --jwt-audience need a key: --jwt-hs256-key-file, --jwt-public-key-file, --jwt-jwks-file or --jwt-jwks-url")}
		}
		return nil, nil
	}
	c := &api.AuthConfig{Issuer: a.issuer, Audience: a.audience, Leeway: a.leeway}
	if a.hs256KeyFile != "" {
		k, err := credential.LoadHS256Key(a.hs256KeyFile)
		if err != nil {
			return nil, usageError{err}
		}
		c.HS256Key = k
	}
	if a.publicKeyFile != "" {
		keys, err := credential.LoadPublicKeys(a.publicKeyFile)
		if err != nil {
			return nil, usageError{err}
		}
		c.PublicKeys = append([]crypto.PublicKey(nil), keys...)
	}
	if a.jwksFile != "" && a.jwksURL != "" {
		return nil, usageError{fmt.Errorf("--jwt-jwks-file and --jwt-jwks-url: give one")}
	}
	if a.jwksFile != "" {
		ks, err := api.LoadJWKSFile(a.jwksFile)
		if err != nil {
			return nil, usageError{err}
		}
		c.JWKS = ks
	}
	if a.jwksURL != "" {
		u, err := url.Parse(a.jwksURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, usageError{fmt.Errorf("--jwt-jwks-url %q: want an http or https URL", a.jwksURL)}
		}
		c.JWKS = unfetchedKeySet{}
		if fetch {
			if c.JWKS, err = api.NewJWKSURL(ctx, a.jwksURL, log); err != nil {
				return nil, err
			}
		}
	}
	if err := c.Validate(); err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// unfetchedKeySet stands for a JWKS URL while the flags are checked.
type unfetchedKeySet struct{}

func (unfetchedKeySet) Keyfunc(*jwt.Token) (any, error) {
	return nil, fmt.Errorf("the JWK Set is not fetched")
}
