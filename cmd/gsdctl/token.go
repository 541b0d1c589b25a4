package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/internal/credential"
	"github.com/spf13/cobra"
)

// tokenCmd mints development tokens: HS256 with the key file a gsd node
// was started with (--jwt-hs256-key-file). Production tokens come from the
// game's own identity service.
func (a *app) tokenCmd() *cobra.Command {
	var (
		keyFile, issuer, audience string
		ttl                       time.Duration
		admin                     bool
	)
	cmd := &cobra.Command{
		Use:   "token PLAYER",
		Short: "Mint a development player token (HS256)",
		Example: `  gsdctl token ann --key-file hs256.key --audience my-game
  gsd --jwt-hs256-key-file hs256.key --jwt-audience my-game`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyFile == "" {
				return usageError{errors.New("--key-file is required")}
			}
			if ttl <= 0 {
				return usageError{errors.New("--ttl must be positive")}
			}
			key, err := credential.LoadHS256Key(keyFile)
			if err != nil {
				return usageError{err}
			}
			now := time.Now()
			rc := jwt.RegisteredClaims{
				Subject:   args[0],
				Issuer:    issuer,
				IssuedAt:  jwt.NewNumericDate(now),
				NotBefore: jwt.NewNumericDate(now),
				ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			}
			if audience != "" {
				rc.Audience = jwt.ClaimStrings{audience}
			}
			claims := tokenClaims{RegisteredClaims: rc, Admin: admin}
			tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(a.stdout, tok)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&keyFile, "key-file", "", "file holding the HS256 secret (at least 32 bytes)")
	f.StringVar(&issuer, "issuer", "", "iss claim")
	f.StringVar(&audience, "audience", "", "aud claim")
	f.DurationVar(&ttl, "ttl", time.Hour, "how long the token is valid")
	f.BoolVar(&admin, "admin", false, `add the claim "`+credential.AdminClaim+`": true: an admin token, for the admin endpoints of a cluster with a secret`)
	return cmd
}

// tokenClaims are a token's registered claims plus the admin flag.
type tokenClaims struct {
	jwt.RegisteredClaims
	Admin bool `json:"gsd_admin,omitempty"`
}
