package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// AuditLeafV2 is the first byte of a version 2 audit leaf: version 1's
// content with the player identifiers salted per player, for worlds
// created salted (issue 15; fsm's salt table). Like version 1 its bytes
// are frozen.
const AuditLeafV2 byte = 0x02

// The tags of a version 2 identifier, and the value tag of a salted
// string.
const (
	leafIDClear      byte = 0           // followed by str(name)
	leafIDSalted     byte = 1           // followed by the 32-byte HMAC
	leafValueSalted  byte = 5           // a string value: followed by the 32-byte HMAC
	SaltedIDLen           = sha256.Size // the length of a salted id
	auditSaltLen          = 32
	maxAuditSaltsSeq      = 1<<63 - 1
)

// SaltedIDs answers, for one event's leaf, whether a name is a salted
// player id and its HMAC-SHA256(salt, name) if so. Nil salts nothing.
type SaltedIDs func(name string) (digest [SaltedIDLen]byte, ok bool)

// SaltedID returns HMAC-SHA256(salt, id): what a version 2 leaf commits
// to in place of a salted player's id.
func SaltedID(salt []byte, id string) [SaltedIDLen]byte {
	m := hmac.New(sha256.New, salt)
	m.Write([]byte(id))
	var out [SaltedIDLen]byte
	m.Sum(out[:0])
	return out
}

// AppendAuditLeafV2 appends the version 2 audit leaf of e to dst: the
// version 1 leaf (AppendAuditLeaf) where every player identifier that
// salted says is salted is replaced by its HMAC: the player, entity
// names and string values (a set's elements too). Entities keep version
// 1's order, bytewise by their names as the event says them.
//
// Layout (as version 1; id and value as below):
//
//	0x02 world uvarint(seq) varint(time) id(player) uvarint(client_seq)
//	priority status reason
//	count(entities) { id(entity) count(fields) { field uvarint(version) } }
//	count(changes) { id(entity) field op value count(set) { value }
//	                 uvarint(version) exists }
//	id:    0x00 str(name) | 0x01 HMAC-SHA256(salt, name)
//	value: version 1's | 0x05 HMAC-SHA256(salt, string)
func AppendAuditLeafV2(dst []byte, e *Event, salted SaltedIDs) []byte {
	dst = append(dst, AuditLeafV2)
	dst = appendLeafString(dst, e.World)
	dst = binary.AppendUvarint(dst, e.Seq)
	dst = binary.AppendVarint(dst, e.Time)
	dst = appendLeafID(dst, e.Player, salted)
	dst = binary.AppendUvarint(dst, e.ClientSeq)
	dst = appendLeafString(dst, e.Priority)
	dst = appendLeafString(dst, e.Status)
	dst = appendLeafString(dst, e.Reason)

	dst = binary.AppendUvarint(dst, uint64(len(e.Versions)))
	if len(e.Versions) == 1 { // most events: no sort, no allocation
		for ent, fields := range e.Versions {
			dst = appendLeafFields(appendLeafID(dst, ent, salted), fields)
		}
	} else {
		for _, ent := range sortedKeys(e.Versions) {
			dst = appendLeafFields(appendLeafID(dst, ent, salted), e.Versions[ent])
		}
	}

	dst = binary.AppendUvarint(dst, uint64(len(e.Changes)))
	for i := range e.Changes {
		c := &e.Changes[i]
		dst = appendLeafID(dst, c.Entity, salted)
		dst = appendLeafString(dst, c.Field)
		dst = appendLeafString(dst, c.Op)
		if c.Value != nil {
			dst = appendLeafValueV2(dst, *c.Value, salted)
		} else {
			dst = append(dst, leafValueNull)
		}
		dst = binary.AppendUvarint(dst, uint64(len(c.Set)))
		for _, v := range c.Set {
			dst = appendLeafValueV2(dst, v, salted)
		}
		dst = binary.AppendUvarint(dst, c.Version)
		switch {
		case c.Exists == nil:
			dst = append(dst, 0)
		case *c.Exists:
			dst = append(dst, 2)
		default:
			dst = append(dst, 1)
		}
	}
	return dst
}

func appendLeafID(dst []byte, name string, salted SaltedIDs) []byte {
	if salted != nil {
		if d, ok := salted(name); ok {
			return append(append(dst, leafIDSalted), d[:]...)
		}
	}
	return appendLeafString(append(dst, leafIDClear), name)
}

func appendLeafValueV2(dst []byte, v Value, salted SaltedIDs) []byte {
	if v.Kind == KindString && salted != nil {
		if d, ok := salted(v.Str); ok {
			return append(append(dst, leafValueSalted), d[:]...)
		}
	}
	return appendLeafValue(dst, v)
}

// AuditSalts is a salted world incarnation's salt table as a verifier of
// its version 2 leaves gets it (GET /v1/worlds/{world}/audit/salts, and
// gsdctl audit fetch's .salts file). An erased player is not in it; the
// digests of erased salts that the world kept (log version 14) are in
// Erased, without the players' ids.
type AuditSalts struct {
	World       string            `json:"world"`
	Incarnation uint64            `json:"incarnation,omitempty"`
	Salts       []AuditSalt       `json:"salts"`
	Erased      []AuditErasedSalt `json:"erased,omitempty"`
}

// AuditErasedSalt is an erased salt's digest, HMAC-SHA256(salt, id): what
// the leaves of the world's seqs Since to Until committed to in place of
// its player's id. A stable pseudonym of the player within the range; the
// id and the salt are gone.
type AuditErasedSalt struct {
	Digest []byte `json:"digest"` // 32 bytes; standard base64 in JSON
	Since  uint64 `json:"since"`
	Until  uint64 `json:"until"`
}

// AuditSalt is one player's salt: it salts the leaves of the world's
// seqs from Since on.
type AuditSalt struct {
	Player string `json:"player"`
	Salt   []byte `json:"salt"` // 32 bytes; standard base64 in JSON
	Since  uint64 `json:"since"`
}

// SaltErased answers DELETE /v1/worlds/{world}/audit/salts/{player}.
type SaltErased struct {
	World  string `json:"world"`
	Player string `json:"player"`
}

// Check refuses a table a verifier cannot use: a salt that is not 32
// bytes, a player twice or empty, a since of 0; an erased digest that is
// not 32 bytes or whose range is empty.
//
// It also refuses a table no world keeps, whose erased digests would let
// a live player's events pass as an erased player's under another name:
// a digest twice (a digest is one erased salt's), or a digest equal to
// HMAC-SHA256(salt, player) of one of its live salts. A world never keeps
// one: an erased salt leaves the table, and a player salted again gets a
// new random salt. Whatever the ranges say: a live salt's since moved
// past the digest's range is the same forgery. This does not make the
// table authentic: a table with the live salt removed as well cannot be
// told from a genuine erasure by anything in it; the node's signature of
// the table's bytes (anticheat/audit.SaltsNote, docs/ANTICHEAT.md) can.
func (s *AuditSalts) Check() error {
	var erased map[[SaltedIDLen]byte]AuditErasedSalt
	if len(s.Erased) > 0 {
		erased = make(map[[SaltedIDLen]byte]AuditErasedSalt, len(s.Erased))
	}
	for _, e := range s.Erased {
		switch {
		case len(e.Digest) != SaltedIDLen:
			return fmt.Errorf("%w: an erased salt's digest has %d bytes, want %d", ErrMalformed, len(e.Digest), SaltedIDLen)
		case e.Since == 0 || e.Until < e.Since || e.Until > maxAuditSaltsSeq:
			return fmt.Errorf("%w: an erased salt's digest of seqs %d to %d", ErrMalformed, e.Since, e.Until)
		}
		d := [SaltedIDLen]byte(e.Digest)
		if x, ok := erased[d]; ok {
			return fmt.Errorf("%w: the erased digests of seqs %d to %d and %d to %d are the same", ErrMalformed, x.Since, x.Until, e.Since, e.Until)
		}
		erased[d] = e
	}
	seen := make(map[string]bool, len(s.Salts))
	for _, e := range s.Salts {
		switch {
		case e.Player == "":
			return fmt.Errorf("%w: a salt without a player", ErrMalformed)
		case seen[e.Player]:
			return fmt.Errorf("%w: player %q has two salts", ErrMalformed, e.Player)
		case len(e.Salt) != auditSaltLen:
			return fmt.Errorf("%w: player %q's salt has %d bytes, want %d", ErrMalformed, e.Player, len(e.Salt), auditSaltLen)
		case e.Since == 0 || e.Since > maxAuditSaltsSeq:
			return fmt.Errorf("%w: player %q's salt since seq %d", ErrMalformed, e.Player, e.Since)
		}
		if x, ok := erased[SaltedID(e.Salt, e.Player)]; ok {
			return fmt.Errorf("%w: the erased digest of seqs %d to %d is live player %q's salted id: their events would pass as an erased player's", ErrMalformed, x.Since, x.Until, e.Player)
		}
		seen[e.Player] = true
	}
	return nil
}

// Digests returns each player's HMAC-SHA256(salt, id) and since, for
// SaltedAt; call Check first.
func (s *AuditSalts) Digests() map[string]SaltDigest {
	out := make(map[string]SaltDigest, len(s.Salts))
	for _, e := range s.Salts {
		out[e.Player] = SaltDigest{Digest: SaltedID(e.Salt, e.Player), Since: e.Since}
	}
	return out
}

// SaltDigest is a player's salted id and the first seq it salts.
type SaltDigest struct {
	Digest [SaltedIDLen]byte
	Since  uint64
}

// SaltedAt returns the SaltedIDs of the leaf of seq: the players whose
// salt salts it (since at or before it).
func SaltedAt(digests map[string]SaltDigest, seq uint64) SaltedIDs {
	return func(name string) ([SaltedIDLen]byte, bool) {
		d, ok := digests[name]
		if !ok || d.Since > seq {
			return [SaltedIDLen]byte{}, false
		}
		return d.Digest, true
	}
}
