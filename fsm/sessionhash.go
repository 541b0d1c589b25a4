package fsm

import (
	"encoding/binary"

	"github.com/cespare/xxhash/v2"
)

// The sessions hash: a world's sessions, bans and player data are edge
// bookkeeping, not game state, but replicas must still agree on them. Each
// session, each ban and each key of each player's data contributes one
// xxhash64 term, tagged by kind; w.meta is their wrapping sum and the
// world's state hash is w.hash (entities) + w.meta. A change subtracts the
// old term and adds the new one, so no command walks the world.

const (
	tagSession byte = 's'
	tagBan     byte = 'b'
	tagData    byte = 'd'
)

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func (s *session) hash() uint64 {
	var buf [256]byte
	b := append(buf[:0], tagSession)
	b = appendStr(b, s.id)
	b = appendStr(b, s.player)
	b = append(b, s.tokenHash[:]...)
	b = binary.LittleEndian.AppendUint64(b, s.acked)
	b = binary.LittleEndian.AppendUint64(b, s.epoch)
	b = binary.LittleEndian.AppendUint64(b, uint64(s.opened))
	b = binary.LittleEndian.AppendUint64(b, uint64(s.seen))
	b = appendStr(b, s.node)
	b = appendStr(b, s.kicked)
	return xxhash.Sum64(b)
}

func banHash(player, reason string) uint64 {
	var buf [128]byte
	b := append(buf[:0], tagBan)
	b = appendStr(b, player)
	b = appendStr(b, reason)
	return xxhash.Sum64(b)
}

// dataHash is the sum of the terms of one player's data keys.
func dataHash(player string, m map[string]Value) uint64 {
	var (
		buf [256]byte
		sum uint64
	)
	for k, v := range m { // a sum does not depend on the order
		b := append(buf[:0], tagData)
		b = appendStr(b, player)
		b = appendStr(b, k)
		b = appendValue(b, v)
		sum += xxhash.Sum64(b)
	}
	return sum
}

// stateHash is the world's state hash: entities, sessions, bans and data,
// and its rules once updated (rulesHash).
func (w *world) stateHash() uint64 { return w.hash + w.meta + w.rulesSum }

// computeMeta recomputes the sessions hash from scratch (Restore, tests).
func (w *world) computeMeta() uint64 {
	var sum uint64
	for _, s := range w.sessions {
		sum += s.hash()
	}
	for p, r := range w.bans {
		sum += banHash(p, r)
	}
	for p, m := range w.data {
		sum += dataHash(p, m)
	}
	return sum
}

// putSession stores s (replacing the session with its id) and updates meta.
func (w *world) putSession(s *session) {
	if old := w.sessions[s.id]; old != nil {
		w.meta -= old.hash()
	}
	w.sessions[s.id] = s
	w.meta += s.hash()
}

// dropSession removes a stored session and its term.
func (w *world) dropSession(s *session) {
	w.meta -= s.hash()
	delete(w.sessions, s.id)
}

// putBan bans player for reason (replacing an earlier ban's reason).
func (w *world) putBan(player, reason string) {
	if old, ok := w.bans[player]; ok {
		w.meta -= banHash(player, old)
	}
	w.bans[player] = reason
	w.meta += banHash(player, reason)
}

// dropBan lifts a ban, if any.
func (w *world) dropBan(player string) {
	if old, ok := w.bans[player]; ok {
		w.meta -= banHash(player, old)
		delete(w.bans, player)
	}
}

// putData makes m the player's data (none when m is nil).
func (w *world) putData(player string, m map[string]Value) {
	w.meta -= dataHash(player, w.data[player])
	if m == nil {
		delete(w.data, player)
		return
	}
	w.data[player] = m
	w.meta += dataHash(player, m)
}
