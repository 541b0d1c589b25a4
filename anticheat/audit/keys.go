package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/gsd-dev/gsd/wire"
	"golang.org/x/mod/sumdb/note"
)

// Key files hold note keys (golang.org/x/mod/sumdb/note), one line each:
//
//	private: PRIVATE+KEY+<name>+<hash>+<base64(0x01 || ed25519 seed)>
//	public:  <name>+<hash>+<base64(0x01 || ed25519 public key)>
//
// where hash is 8 hex digits, the first four bytes of SHA-256(name "\n"
// 0x01 public key): the key id. The same key signs checkpoints (as note
// signatures) and envelopes (wire.Keyring, under the id <name>+<hash>).

// GenerateKey returns a new ed25519 audit key named name, as the texts of
// its private and public key files.
func GenerateKey(name string) (private, public string, err error) {
	private, public, _ = note.GenerateKey(rand.Reader, name) // crypto/rand never fails
	if _, err := ParseSigningKey(private); err != nil {
		return "", "", fmt.Errorf("gsd/audit: key name %q: want 1 to %d bytes, no spaces, no +", name, wire.MaxKeyIDLen-9)
	}
	return private, public, nil
}

// SigningKey is an audit key that signs.
type SigningKey struct {
	note.Signer                 // signs checkpoints
	Envelope    wire.SigningKey // signs envelopes
}

// VerifyingKey is an audit key that verifies.
type VerifyingKey struct {
	note.Verifier                   // verifies checkpoints
	Envelope      wire.VerifyingKey // verifies envelopes
}

// ID returns the key's id, <name>+<hash>.
func (k SigningKey) ID() string { return k.Envelope.ID }

// ID returns the key's id, <name>+<hash>.
func (k VerifyingKey) ID() string { return k.Envelope.ID }

// ParseSigningKey parses a private key file's text.
func ParseSigningKey(text string) (SigningKey, error) {
	text = strings.TrimSpace(text)
	s, err := note.NewSigner(text)
	if err != nil {
		return SigningKey{}, fmt.Errorf("gsd/audit: private key: %w", err)
	}
	id, err := keyID(s.Name(), s.KeyHash())
	if err != nil {
		return SigningKey{}, fmt.Errorf("gsd/audit: private key: %w", err)
	}
	return SigningKey{Signer: s, Envelope: wire.SigningKey{ID: id, Key: ed25519.NewKeyFromSeed(keyBytes(text, 5))}}, nil
}

// ParseVerifyingKey parses a public key file's text.
func ParseVerifyingKey(text string) (VerifyingKey, error) {
	text = strings.TrimSpace(text)
	v, err := note.NewVerifier(text)
	if err != nil {
		return VerifyingKey{}, fmt.Errorf("gsd/audit: public key: %w", err)
	}
	id, err := keyID(v.Name(), v.KeyHash())
	if err != nil {
		return VerifyingKey{}, fmt.Errorf("gsd/audit: public key: %w", err)
	}
	return VerifyingKey{Verifier: v, Envelope: wire.VerifyingKey{ID: id, Key: ed25519.PublicKey(keyBytes(text, 3))}}, nil
}

func keyID(name string, hash uint32) (string, error) {
	id := fmt.Sprintf("%s+%08x", name, hash)
	if len(id) > wire.MaxKeyIDLen {
		return "", fmt.Errorf("key name %q: at most %d bytes", name, wire.MaxKeyIDLen-9)
	}
	return id, nil
}

// keyBytes returns the key of a note key text that note accepted: its
// parts-th +-separated part (base64, which has + signs of its own), after
// its algorithm byte (note checked that it is ed25519's and that 32 bytes
// follow it).
func keyBytes(text string, parts int) []byte {
	b, _ := base64.StdEncoding.DecodeString(strings.SplitN(text, "+", parts)[parts-1])
	return b[1:]
}
