package main

import (
	"crypto"
	"fmt"
	"time"

	"github.com/gsd-dev/gsd/api"
	"github.com/spf13/pflag"
)

// authOptions are the JWT flags; with no key file auth stays off.
type authOptions struct {
	hs256KeyFile  string
	publicKeyFile string
	issuer        string
	audience      string
	leeway        time.Duration
}

func (a *authOptions) flags(f *pflag.FlagSet) {
	f.StringVar(&a.hs256KeyFile, "jwt-hs256-key-file", "", "file holding the HS256 secret players' tokens are signed with (turns auth on)")
	f.StringVar(&a.publicKeyFile, "jwt-public-key-file", "", "PEM file of RSA (RS256) and Ed25519 (EdDSA) public keys that verify players' tokens (turns auth on)")
	f.StringVar(&a.issuer, "jwt-issuer", "", "required iss of players' tokens")
	f.StringVar(&a.audience, "jwt-audience", "", "required aud of players' tokens")
	f.DurationVar(&a.leeway, "jwt-leeway", 30*time.Second, fmt.Sprintf("clock skew allowed on exp and nbf (at most %s)", api.MaxLeeway))
}

// config returns the api's auth config, nil when no key is given.
func (a *authOptions) config() (*api.AuthConfig, error) {
	if a.hs256KeyFile == "" && a.publicKeyFile == "" {
		if a.issuer != "" || a.audience != "" {
			return nil, usageError{fmt.Errorf("--jwt-issuer and --jwt-audience need --jwt-hs256-key-file or --jwt-public-key-file")}
		}
		return nil, nil
	}
	c := &api.AuthConfig{Issuer: a.issuer, Audience: a.audience, Leeway: a.leeway}
	if a.hs256KeyFile != "" {
		k, err := api.LoadHS256Key(a.hs256KeyFile)
		if err != nil {
			return nil, usageError{err}
		}
		c.HS256Key = k
	}
	if a.publicKeyFile != "" {
		keys, err := api.LoadPublicKeys(a.publicKeyFile)
		if err != nil {
			return nil, usageError{err}
		}
		c.PublicKeys = append([]crypto.PublicKey(nil), keys...)
	}
	if err := c.Validate(); err != nil {
		return nil, usageError{err}
	}
	return c, nil
}
