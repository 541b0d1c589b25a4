package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Ticket is a signed hand-off of one session from one node to another (a
// drain's transfer message carries it): the source node signs it, the
// client passes it on unread in its resume, and the target node checks
// it. It binds the world, the session, the epoch the source held, the
// target node and an expiry.
type Ticket struct {
	World   string `json:"w"`
	Session string `json:"s"`
	Epoch   uint64 `json:"e"`
	Sent    uint64 `json:"q"` // last event seq the source had queued
	From    string `json:"f"`
	To      string `json:"t"`
	Expires int64  `json:"x"` // unix ms
}

// SignTicket encodes t and signs it with key:
// base64url(JSON) "." base64url(HMAC-SHA256(key, the first part)).
func SignTicket(key []byte, t Ticket) string {
	b, _ := json.Marshal(t) // strings and numbers: never fails
	return SignTicketPayload(key, b)
}

// SignTicketPayload signs arbitrary bytes as SignTicket signs a ticket's
// JSON (for tests of what OpenTicket refuses).
func SignTicketPayload(key, payload []byte) string {
	p := base64.RawURLEncoding.EncodeToString(payload)
	return p + "." + base64.RawURLEncoding.EncodeToString(ticketMAC(key, p))
}

func ticketMAC(key []byte, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// OpenTicket checks s's signature under key and decodes its ticket. It
// checks nothing the ticket says (expiry, node, session): the caller does.
func OpenTicket(key []byte, s string) (Ticket, error) {
	payload, sig, ok := strings.Cut(s, ".")
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if !ok || err != nil || !hmac.Equal(got, ticketMAC(key, payload)) {
		return Ticket{}, errors.New("bad signature")
	}
	var t Ticket
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err == nil {
		err = json.Unmarshal(b, &t)
	}
	if err != nil {
		return Ticket{}, fmt.Errorf("undecodable: %v", err)
	}
	return t, nil
}
