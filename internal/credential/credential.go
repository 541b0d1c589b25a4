// Package credential reads the credentials gsd takes from files: the
// cluster secret, the HS256 key and the RSA and Ed25519 public keys that
// verify players' tokens; it also names the claim that makes a token an
// admin token. The edge (api) checks requests with them; cmd/gsd loads
// them for the edge, and cmd/gsdctl for the requests and tokens it makes.
//
// It imports the standard library only, so the admin CLI loads keys without
// linking the edge, the store, raft or bolt (docs/import-rules.txt).
package credential

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// AdminClaim is the JWT claim that makes a token an admin token.
const AdminClaim = "gsd_admin"

// MinClusterSecretLen is the shortest cluster secret accepted.
const MinClusterSecretLen = 32

// MinHS256KeyLen is the shortest HS256 secret accepted (RFC 7518 §3.2).
const MinHS256KeyLen = 32

// ValidClusterSecret checks a secret's length and that it can travel in a
// header.
func ValidClusterSecret(b []byte) error {
	if len(b) < MinClusterSecretLen {
		return fmt.Errorf("the cluster secret must be at least %d bytes", MinClusterSecretLen)
	}
	for _, c := range b {
		if c < 0x21 || c > 0x7e {
			return errors.New("the cluster secret must be printable ASCII without spaces (it travels in a header)")
		}
	}
	return nil
}

// LoadClusterSecret reads the cluster secret from a file; surrounding
// whitespace (a trailing newline) is not part of it.
func LoadClusterSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cluster secret: %w", err)
	}
	b = bytes.TrimSpace(b)
	if err := ValidClusterSecret(b); err != nil {
		return nil, fmt.Errorf("cluster secret %s: %w", path, err)
	}
	return b, nil
}

// LoadHS256Key reads an HS256 secret from a file; surrounding whitespace
// (a trailing newline) is not part of it.
func LoadHS256Key(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("hs256 key: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) < MinHS256KeyLen {
		return nil, fmt.Errorf("hs256 key %s: %d bytes, need at least %d", path, len(b), MinHS256KeyLen)
	}
	return b, nil
}

// LoadPublicKeys reads the RSA and Ed25519 public keys of a PEM file
// ("PUBLIC KEY" blocks, PKIX, or "RSA PUBLIC KEY", PKCS #1).
func LoadPublicKeys(path string) ([]crypto.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("public keys: %w", err)
	}
	var keys []crypto.PublicKey
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		var k any
		switch blk.Type {
		case "PUBLIC KEY":
			k, err = x509.ParsePKIXPublicKey(blk.Bytes)
		case "RSA PUBLIC KEY":
			k, err = x509.ParsePKCS1PublicKey(blk.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("public keys %s: %w", path, err)
		}
		switch k.(type) {
		case *rsa.PublicKey, ed25519.PublicKey:
			keys = append(keys, k)
		default:
			return nil, fmt.Errorf("public keys %s: %T is neither RSA nor Ed25519", path, k)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("public keys %s: no PEM public key found", path)
	}
	return keys, nil
}
