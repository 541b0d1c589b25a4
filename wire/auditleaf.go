package wire

import (
	"encoding/binary"
	"slices"
	"strconv"
)

// AuditLeafV1 is the first byte of a version 1 audit leaf. The leaf of a
// committed event is what the world's Merkle audit log (anticheat/audit)
// hashes; a signed checkpoint commits to the leaves, so their encoding is
// frozen: a later change to Event (a new field, a renamed key) never
// changes the bytes of version 1, and a new leaf format takes a new
// version byte, leaving every old checkpoint verifiable.
const AuditLeafV1 byte = 0x01

// The value tags of a version 1 leaf.
const (
	leafValueNull   byte = 0 // absent, null, or a kind without a JSON form
	leafValueFalse  byte = 1
	leafValueTrue   byte = 2
	leafValueNumber byte = 3 // followed by the number's JSON text
	leafValueString byte = 4 // followed by the string
)

// AppendAuditLeaf appends the version 1 audit leaf of e to dst.
//
// The leaf commits to the event as its JSON form says (an event exported
// from an NDJSON stream gives the bytes the server hashed): the world,
// seq, leader time, player, client seq, priority, status, reason, the
// versions by entity and field (in bytewise order of the names), and
// the changes in their order, each with its entity, field, op, value, set
// elements, version and exists flag. A number is committed as its JSON
// text, so an integral float and the int JSON turns it into agree. Left
// out: the Raft index (a fact of the group that committed the event, not
// of the world, which keeps its seqs when it moves between groups) and
// the duplicate flag (a fact of one answer, never of the feed).
//
// Player data in the leaf: the player id, and whatever the game puts in
// field values and entity names. The leaf holds them as they are, so
// they must not need erasing: gsd's player ids are the opaque subjects of
// the players' tokens, and erasing a person means forgetting, in the
// game's account system, who a subject was (docs/ANTICHEAT.md). A game
// that stores personal data in fields keeps it out of audited worlds.
//
// Layout (str: uvarint length, then the bytes; every count a uvarint):
//
//	0x01 world uvarint(seq) varint(time) player uvarint(client_seq)
//	priority status reason
//	count(entities) { entity count(fields) { field uvarint(version) } }
//	count(changes) { entity field op value count(set) { value }
//	                 uvarint(version) exists }
//	value:  0x00 (none or null) | 0x01 false | 0x02 true
//	      | 0x03 str(JSON number) | 0x04 str(string)
//	exists: 0x00 absent | 0x01 false | 0x02 true
func AppendAuditLeaf(dst []byte, e *Event) []byte {
	dst = append(dst, AuditLeafV1)
	dst = appendLeafString(dst, e.World)
	dst = binary.AppendUvarint(dst, e.Seq)
	dst = binary.AppendVarint(dst, e.Time)
	dst = appendLeafString(dst, e.Player)
	dst = binary.AppendUvarint(dst, e.ClientSeq)
	dst = appendLeafString(dst, e.Priority)
	dst = appendLeafString(dst, e.Status)
	dst = appendLeafString(dst, e.Reason)

	dst = binary.AppendUvarint(dst, uint64(len(e.Versions)))
	if len(e.Versions) == 1 { // most events: no sort, no allocation
		for ent, fields := range e.Versions {
			dst = appendLeafEntity(dst, ent, fields)
		}
	} else {
		for _, ent := range sortedKeys(e.Versions) {
			dst = appendLeafEntity(dst, ent, e.Versions[ent])
		}
	}

	dst = binary.AppendUvarint(dst, uint64(len(e.Changes)))
	for i := range e.Changes {
		c := &e.Changes[i]
		dst = appendLeafString(dst, c.Entity)
		dst = appendLeafString(dst, c.Field)
		dst = appendLeafString(dst, c.Op)
		if c.Value != nil {
			dst = appendLeafValue(dst, *c.Value)
		} else {
			dst = append(dst, leafValueNull)
		}
		dst = binary.AppendUvarint(dst, uint64(len(c.Set)))
		for _, v := range c.Set {
			dst = appendLeafValue(dst, v)
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

// appendLeafEntity appends an entity's versions by field, fields in order.
func appendLeafEntity(dst []byte, ent string, fields map[string]uint64) []byte {
	return appendLeafFields(appendLeafString(dst, ent), fields)
}

// appendLeafFields appends an entity's count of fields and their
// versions, fields in order.
func appendLeafFields(dst []byte, fields map[string]uint64) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(fields)))
	if len(fields) == 1 {
		for f, v := range fields {
			return binary.AppendUvarint(appendLeafString(dst, f), v)
		}
	}
	for _, f := range sortedKeys(fields) {
		dst = appendLeafString(dst, f)
		dst = binary.AppendUvarint(dst, fields[f])
	}
	return dst
}

func appendLeafString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// appendLeafValue appends v as its JSON form says (Value.MarshalJSON).
func appendLeafValue(dst []byte, v Value) []byte {
	switch v.Kind {
	case KindInt:
		return appendLeafString(append(dst, leafValueNumber), strconv.FormatInt(v.Int, 10))
	case KindFloat:
		return appendLeafString(append(dst, leafValueNumber), strconv.FormatFloat(v.Float, 'g', -1, 64))
	case KindString:
		return appendLeafString(append(dst, leafValueString), v.Str)
	case KindBool:
		if v.Int != 0 {
			return append(dst, leafValueTrue)
		}
		return append(dst, leafValueFalse)
	}
	return append(dst, leafValueNull)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
