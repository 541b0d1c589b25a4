package wire

import (
	"bytes"
	"container/heap"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Signed envelopes carry a payload across a trust boundary (a hand-off
// ticket between clusters, an audit checkpoint, a relay's feed): ed25519
// signatures under keys named by id, a keyring that lets a new key sign
// while the old one still verifies for a grace period, an expiry window,
// and a receiver-side replay cache. They are for trust boundaries only:
// one signature costs tens of microseconds, far too much per forwarded
// action inside a cluster, where mTLS covers the links.
//
// Bytes: an envelope is the canonical msgpack (MarshalMsgpack) of
// {"b": body, "s": signature}, where body is the canonical msgpack of
// EnvelopeBody and the signature is ed25519 over EnvelopeDomain followed
// by body. The receiver checks the signature over the body's bytes as
// they came, then decodes them, so nothing depends on re-encoding.

// EnvelopeDomain prefixes the signed bytes, so a signature over an
// envelope is never a valid signature over anything else that gsd's keys
// sign (checkpoints are signed notes, with their own form).
const EnvelopeDomain = "gsd/envelope/v1\n"

// Limits of envelopes.
const (
	MaxEnvelopeBytes = 1 << 20 // the encoded envelope, payload included
	MaxKeyIDLen      = 64
	EnvelopeNonceLen = 16
)

// The reason codes of a refused envelope (EnvelopeReason), for answers
// and metrics.
const (
	EnvelopeMalformed  = "malformed"
	EnvelopeUnknownKey = "unknown_key"
	EnvelopeForged     = "forged"
	EnvelopeExpired    = "expired"
	EnvelopeReplayed   = "replayed"
)

// The errors of refused envelopes. Keyring.Open wraps exactly one of them.
var (
	ErrEnvelopeMalformed  = errors.New("gsd/wire: envelope: malformed")
	ErrEnvelopeUnknownKey = errors.New("gsd/wire: envelope: unknown key")
	ErrEnvelopeForged     = errors.New("gsd/wire: envelope: forged")
	ErrEnvelopeExpired    = errors.New("gsd/wire: envelope: expired")
	ErrEnvelopeReplayed   = errors.New("gsd/wire: envelope: replayed")
)

// EnvelopeReason returns the reason code of an error of Keyring.Open, or
// "" for any other error.
func EnvelopeReason(err error) string {
	for _, r := range []struct {
		err  error
		code string
	}{
		{ErrEnvelopeMalformed, EnvelopeMalformed},
		{ErrEnvelopeUnknownKey, EnvelopeUnknownKey},
		{ErrEnvelopeForged, EnvelopeForged},
		{ErrEnvelopeExpired, EnvelopeExpired},
		{ErrEnvelopeReplayed, EnvelopeReplayed},
	} {
		if errors.Is(err, r.err) {
			return r.code
		}
	}
	return ""
}

// EnvelopeBody is what an envelope's signature covers.
type EnvelopeBody struct {
	Key     string `json:"k"` // the signing key's id
	Purpose string `json:"p"` // what the payload is, e.g. "ticket": a receiver opens only its own
	Nonce   []byte `json:"n"` // EnvelopeNonceLen random bytes: the replay cache's key with Key
	Issued  int64  `json:"i"` // unix ms
	Expires int64  `json:"x"` // unix ms; refused from then on
	Payload []byte `json:"d"`
}

// envelope is the encoded form: the body's bytes and their signature.
type envelope struct {
	Body []byte `json:"b"`
	Sig  []byte `json:"s"`
}

// SigningKey is a key that signs envelopes.
type SigningKey struct {
	ID  string
	Key ed25519.PrivateKey
}

// VerifyingKey is a key that verifies envelopes until NotAfter (zero: no
// end).
type VerifyingKey struct {
	ID       string
	Key      ed25519.PublicKey
	NotAfter time.Time
}

// Keyring holds the key that signs and the keys that verify. Rotation:
// Rotate makes a new key the signer and keeps the old one verifying for
// a grace period, so envelopes in flight still open and every receiver
// has time to learn the new key (Add) before it is used everywhere. It
// is safe for concurrent use.
type Keyring struct {
	maxTTL time.Duration
	skew   time.Duration

	mu     sync.RWMutex
	signer SigningKey
	keys   map[string]VerifyingKey
}

// NewKeyring returns an empty keyring that seals and opens envelopes living
// at most maxTTL (the replay cache remembers an envelope that long), and
// accepts an issue time up to skew ahead of the receiver's clock.
func NewKeyring(maxTTL, skew time.Duration) *Keyring {
	return &Keyring{maxTTL: maxTTL, skew: skew, keys: make(map[string]VerifyingKey)}
}

func checkKeyID(id string) error {
	if id == "" || len(id) > MaxKeyIDLen {
		return fmt.Errorf("gsd/wire: key id %q: must be 1 to %d bytes", id, MaxKeyIDLen)
	}
	return nil
}

// Add makes k verify envelopes. An id already held with another key is
// refused: an id names one key forever.
func (r *Keyring) Add(k VerifyingKey) error {
	if err := checkKeyID(k.ID); err != nil {
		return err
	}
	if len(k.Key) != ed25519.PublicKeySize {
		return fmt.Errorf("gsd/wire: key %s: a public key has %d bytes, not %d", k.ID, ed25519.PublicKeySize, len(k.Key))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addLocked(k)
}

func (r *Keyring) addLocked(k VerifyingKey) error {
	if old, ok := r.keys[k.ID]; ok && !bytes.Equal(old.Key, k.Key) {
		return fmt.Errorf("gsd/wire: key id %s already names another key", k.ID)
	}
	r.keys[k.ID] = VerifyingKey{ID: k.ID, Key: bytes.Clone(k.Key), NotAfter: k.NotAfter}
	return nil
}

// SetSigner makes k the key that seals, and a key that verifies (with no
// end). The previous signer, if any, keeps verifying as it did.
func (r *Keyring) SetSigner(k SigningKey) error {
	if err := checkKeyID(k.ID); err != nil {
		return err
	}
	if len(k.Key) != ed25519.PrivateKeySize {
		return fmt.Errorf("gsd/wire: key %s: a private key has %d bytes, not %d", k.ID, ed25519.PrivateKeySize, len(k.Key))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.addLocked(VerifyingKey{ID: k.ID, Key: k.Key.Public().(ed25519.PublicKey)}); err != nil {
		return err
	}
	r.signer = SigningKey{ID: k.ID, Key: bytes.Clone(k.Key)}
	return nil
}

// Rotate makes next the signer and retires the current signer's key at
// now+grace: until then it still verifies.
func (r *Keyring) Rotate(next SigningKey, now time.Time, grace time.Duration) error {
	r.mu.RLock()
	old := r.signer
	r.mu.RUnlock()
	if err := r.SetSigner(next); err != nil {
		return err
	}
	if old.ID != "" && old.ID != next.ID {
		return r.Retire(old.ID, now.Add(grace))
	}
	return nil
}

// Retire makes the key id stop verifying at at: what a receiver does when
// its senders rotate away from a key.
func (r *Keyring) Retire(id string, at time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	k, ok := r.keys[id]
	if !ok {
		return fmt.Errorf("gsd/wire: no key %q to retire", id)
	}
	k.NotAfter = at
	r.keys[id] = k
	return nil
}

// Seal signs payload for purpose with the signer's key, valid from now
// for ttl, under a fresh random nonce.
func (r *Keyring) Seal(purpose string, payload []byte, now time.Time, ttl time.Duration) ([]byte, error) {
	if ttl <= 0 || ttl > r.maxTTL {
		return nil, fmt.Errorf("gsd/wire: envelope lifetime %v outside (0, %v]", ttl, r.maxTTL)
	}
	r.mu.RLock()
	s := r.signer
	r.mu.RUnlock()
	if s.ID == "" {
		return nil, errors.New("gsd/wire: keyring has no signing key")
	}
	b := EnvelopeBody{Key: s.ID, Purpose: purpose, Nonce: make([]byte, EnvelopeNonceLen),
		Issued: now.UnixMilli(), Expires: now.Add(ttl).UnixMilli(), Payload: payload}
	rand.Read(b.Nonce) // never fails (crypto/rand, Go 1.24 and later)
	return SealBody(s, b), nil
}

// SealBody signs b as it is with s (its Key field is not checked): for
// tests that need envelopes Seal would not make, and for senders that pick
// their own nonces.
func SealBody(s SigningKey, b EnvelopeBody) []byte {
	body, _ := MarshalMsgpack(b) // strings, bytes and ints: never fails
	msg := append([]byte(EnvelopeDomain), body...)
	out, _ := MarshalMsgpack(envelope{Body: body, Sig: ed25519.Sign(s.Key, msg)})
	return out
}

// Open checks an envelope for purpose at now and returns its body: its
// key is known and not retired, its signature is the key's, it was made
// for purpose, it is within its lifetime, and, with a replay cache, it was
// not opened before. A refusal wraps one of the ErrEnvelope errors
// (EnvelopeReason gives its code).
func (r *Keyring) Open(b []byte, purpose string, now time.Time, replay *ReplayCache) (EnvelopeBody, error) {
	var body EnvelopeBody
	if len(b) > MaxEnvelopeBytes {
		return body, fmt.Errorf("%w: %d bytes, over %d", ErrEnvelopeMalformed, len(b), MaxEnvelopeBytes)
	}
	var env envelope
	if err := decodeBounded(b, &env); err != nil {
		return body, fmt.Errorf("%w: %v", ErrEnvelopeMalformed, err)
	}
	if err := decodeBounded(env.Body, &body); err != nil {
		return EnvelopeBody{}, fmt.Errorf("%w: body: %v", ErrEnvelopeMalformed, err)
	}
	r.mu.RLock()
	k, ok := r.keys[body.Key]
	r.mu.RUnlock()
	switch {
	case !ok:
		return body, fmt.Errorf("%w: %q", ErrEnvelopeUnknownKey, body.Key)
	case !k.NotAfter.IsZero() && !now.Before(k.NotAfter):
		return body, fmt.Errorf("%w: %s was retired at %s", ErrEnvelopeUnknownKey, body.Key, k.NotAfter.UTC().Format(time.RFC3339))
	}
	msg := append([]byte(EnvelopeDomain), env.Body...)
	if !ed25519.Verify(k.Key, msg, env.Sig) {
		return body, fmt.Errorf("%w: the signature is not %s's", ErrEnvelopeForged, body.Key)
	}
	if body.Purpose != purpose {
		return body, fmt.Errorf("%w: signed for %q, opened as %q", ErrEnvelopeForged, body.Purpose, purpose)
	}
	ms := now.UnixMilli()
	switch {
	case len(body.Nonce) != EnvelopeNonceLen:
		return body, fmt.Errorf("%w: a nonce of %d bytes, not %d", ErrEnvelopeMalformed, len(body.Nonce), EnvelopeNonceLen)
	case body.Expires <= body.Issued || body.Expires > body.Issued+r.maxTTL.Milliseconds(): // no subtraction to overflow
		return body, fmt.Errorf("%w: issued at %d ms and expiring at %d ms: the lifetime must be in (0, %d] ms", ErrEnvelopeMalformed, body.Issued, body.Expires, r.maxTTL.Milliseconds())
	case ms >= body.Expires:
		return body, fmt.Errorf("%w: at %d ms, %d ms ago", ErrEnvelopeExpired, body.Expires, ms-body.Expires)
	case body.Issued > ms+r.skew.Milliseconds():
		return body, fmt.Errorf("%w: issued %d ms ahead of this clock", ErrEnvelopeExpired, body.Issued-ms)
	}
	if replay != nil {
		if err := replay.admit(body.Key, body.Nonce, body.Expires, ms); err != nil {
			return body, err
		}
	}
	return body, nil
}

// decodeBounded decodes b into v once checkMsgpack has found that every
// length it declares fits in it: the msgpack library allocates a bin's
// declared length before reading it, so 8 bytes could make it allocate
// 4 GiB.
func decodeBounded(b []byte, v any) error {
	if err := checkMsgpack(b); err != nil {
		return err
	}
	return UnmarshalMsgpack(b, v)
}

// checkMsgpack reports whether b holds exactly one msgpack value whose
// declared lengths and counts fit in b, nested at most MsgpackMaxDepth
// deep. It walks b once, without recursion or allocations that b's claims
// could inflate.
func checkMsgpack(b []byte) error {
	var open []int // the items left in each enclosing array or map
	off, left := 0, 1
	for left > 0 || len(open) > 0 {
		if left == 0 {
			left, open = open[len(open)-1], open[:len(open)-1]
			continue
		}
		items, raw, head, err := msgpackHead(b[off:])
		if err != nil {
			return err
		}
		left--
		if raw > len(b)-off-head {
			return errTruncated
		}
		off += head + raw
		if items == 0 {
			continue
		}
		if items > len(b)-off {
			return errTruncated // every item takes a byte at least
		}
		if len(open) == MsgpackMaxDepth {
			return fmt.Errorf("nested deeper than %d", MsgpackMaxDepth)
		}
		open = append(open, left)
		left = items
	}
	if off != len(b) {
		return fmt.Errorf("%d trailing bytes", len(b)-off)
	}
	return nil
}

// ReplayCache remembers the envelopes a receiver opened until they expire,
// in bounded memory. When it is full it forgets the one that expires
// first and from then on refuses, as possible replays, envelopes that
// expire no later than the one it forgot: it never accepts an envelope
// twice, and under a flood it refuses rather than grows. Size it above
// the envelopes a receiver opens within one maximum lifetime. It is safe
// for concurrent use.
type ReplayCache struct {
	mu    sync.Mutex
	max   int
	seen  map[replayKey]struct{}
	order replayHeap
	floor int64 // envelopes expiring at or before it are refused
}

type replayKey struct {
	key   string
	nonce [EnvelopeNonceLen]byte
}

type replayEntry struct {
	expires int64
	key     replayKey
}

// NewReplayCache returns a cache of at most n envelopes (at least 1).
func NewReplayCache(n int) *ReplayCache {
	return &ReplayCache{max: max(n, 1), seen: make(map[replayKey]struct{})}
}

// Len returns the number of envelopes the cache remembers.
func (c *ReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

func (c *ReplayCache) admit(key string, nonce []byte, expires, now int64) error {
	k := replayKey{key: key, nonce: [EnvelopeNonceLen]byte(nonce)}
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.order) > 0 && c.order[0].expires <= now {
		delete(c.seen, heap.Pop(&c.order).(replayEntry).key)
	}
	if expires <= c.floor {
		return fmt.Errorf("%w: the cache was full and no longer remembers envelopes expiring before %d ms", ErrEnvelopeReplayed, c.floor+1)
	}
	if _, ok := c.seen[k]; ok {
		return fmt.Errorf("%w: nonce %x of key %s was seen before", ErrEnvelopeReplayed, nonce, key)
	}
	if len(c.seen) >= c.max {
		e := heap.Pop(&c.order).(replayEntry)
		delete(c.seen, e.key)
		c.floor = max(c.floor, e.expires)
	}
	c.seen[k] = struct{}{}
	heap.Push(&c.order, replayEntry{expires: expires, key: k})
	return nil
}

// replayHeap orders entries by expiry, soonest first.
type replayHeap []replayEntry

func (h replayHeap) Len() int           { return len(h) }
func (h replayHeap) Less(i, j int) bool { return h[i].expires < h[j].expires }
func (h replayHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *replayHeap) Push(x any)        { *h = append(*h, x.(replayEntry)) }
func (h *replayHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
