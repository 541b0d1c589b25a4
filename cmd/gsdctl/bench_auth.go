package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gsd-dev/gsd/internal/credential"
)

// checkBenchAuth validates --auth: it applies to the play scenario only
// (the HTTP scenarios send no tokens), and an --addr cluster needs the key
// its nodes verify with.
func checkBenchAuth(o benchOptions, scenarios []string, remote bool) error {
	if !o.auth {
		if o.authKeyFile != "" {
			return errors.New("--auth-key-file needs --auth")
		}
		return nil
	}
	for _, s := range scenarios {
		if s != "play" {
			return fmt.Errorf("--auth applies to the play scenario only, not %s (the HTTP scenarios send no tokens)", s)
		}
	}
	if remote && o.authKeyFile == "" {
		return errors.New("--auth with --addr needs --auth-key-file, the HS256 key the nodes verify tokens with")
	}
	return nil
}

// benchAuthArgs returns the gsd flags that turn auth on for the local
// nodes, writing a fresh HS256 key into dir unless --auth-key-file names
// one (o.authKeyFile is then set to it).
func benchAuthArgs(o *benchOptions, dir string) ([]string, error) {
	if !o.auth {
		return nil, nil
	}
	if o.authKeyFile == "" {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		o.authKeyFile = filepath.Join(dir, "hs256.key")
		if err := os.WriteFile(o.authKeyFile, []byte(hex.EncodeToString(b)+"\n"), 0o600); err != nil {
			return nil, err
		}
	}
	return []string{"--jwt-hs256-key-file", o.authKeyFile}, nil
}

// benchAuthKey reads the key the players' tokens are signed with (nil
// without --auth).
func benchAuthKey(o benchOptions) ([]byte, error) {
	if !o.auth {
		return nil, nil
	}
	return credential.LoadHS256Key(o.authKeyFile)
}
