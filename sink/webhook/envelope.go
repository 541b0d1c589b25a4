package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// SchemaVersion is the version of the batch envelope and of the events
// in it (docs/EVENTS.md). It rises only when a field changes meaning or
// goes away; new fields may appear within a version.
const SchemaVersion = 1

// Headers of every batch request.
const (
	// HeaderKeyID names the key that signed the body (Config.KeyID).
	HeaderKeyID = "X-Gsd-Key-Id"
	// HeaderSignature is "sha256=" and the hex HMAC-SHA256 of the body.
	HeaderSignature = "X-Gsd-Signature"
	// HeaderBatch is "<world>/<first>-<last>": the same on every retry of
	// a batch; with HeaderIncarnation a receiver may use it as an
	// idempotency key.
	HeaderBatch = "X-Gsd-Batch"
	// HeaderIncarnation is the batch's Incarnation in decimal.
	HeaderIncarnation = "X-Gsd-Incarnation"
)

// Batch is the body of one request: a JSON object holding a world's
// events first..last, every seq in between once, in order.
type Batch struct {
	Schema int    `json:"schema"`
	World  string `json:"world"`
	// Incarnation names the world's incarnation (feed.Position,
	// docs/EVENTS.md): the Raft index of its creation, as GET /v1/worlds
	// shows it; negative (event 1's leader time, negated) for a world
	// created before incarnations. A world deleted and created again
	// under its name starts a new incarnation whose seqs start over at
	// 1, so events are unique by (world, incarnation, seq). 0: unknown
	// (the export resumed from a checkpoint older than incarnations and
	// this node no longer holds the world's event 1).
	Incarnation int64        `json:"incarnation"`
	First       uint64       `json:"first"`
	Last        uint64       `json:"last"`
	Events      []wire.Event `json:"events"`
}

// encodeBatch returns the body of a batch of world's events.
func encodeBatch(world string, inc int64, evs []*fsm.Event) ([]byte, error) {
	b := Batch{Schema: SchemaVersion, World: world, Incarnation: inc, First: evs[0].Seq, Last: evs[len(evs)-1].Seq, Events: make([]wire.Event, len(evs))}
	for i, ev := range evs {
		b.Events[i] = ev.Wire()
	}
	body, err := json.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("encode world %s events %d..%d: %w", world, b.First, b.Last, err)
	}
	return body, nil
}

// Sign returns the HeaderSignature value of body under secret.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify reports whether sig (a HeaderSignature value) signs body under
// secret, in constant time.
func Verify(secret, body []byte, sig string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(sig))
}
