package fsm

import (
	"github.com/gsd-dev/gsd/wire"
)

// The digests of erased salts (issue 15, log version 14).
//
// An erasure that keeps its digest (CmdEraseSaltKeep, proposed once every
// voter reads log 14; CmdEraseSalt before) deletes the player's salt as
// CmdEraseSalt does and keeps, for the world's incarnation, what the
// player's leaves committed to in place of the id: the digest
// HMAC-SHA256(salt, id), and the range of the world's seqs it salted
// (Since: the salt's since; Until: the world's last seq when the erasure
// applied). It keeps neither the id nor the salt. Every replica computes
// the digest from the salt it erases, so every replica keeps the same.
//
// The digest alone does not give the id back: it is an HMAC under a key
// nobody holds any more. It is a stable pseudonym of the player within
// its range (every leaf of the range that names the player commits to
// it), which a verifier needs to recompute those leaves whole but the
// player's identity (anticheat/audit's VerifySaltedLog); like the salts it
// is served to moderators and admins only. A salt that salted no seq (no
// event of the world committed since it was drawn) keeps nothing: no leaf
// commits to it.
//
// The digests go with the world's incarnation (a deleted world takes
// them along), travel in snapshots (format 10, written only while a world
// keeps one) and, like the salt table, are not in the state hash.

// ErasedSalt is the digest an erased salt gave its player's id in the
// leaves of the world's seqs Since to Until.
type ErasedSalt struct {
	Digest [wire.SaltedIDLen]byte
	Since  uint64
	Until  uint64
}

// keepErased keeps the digest of e, which is being erased: the leaves of
// the seqs from its since to the world's last committed to it.
func (w *world) keepErased(e saltEntry) {
	if w.seq < e.Since {
		return // it salted no leaf
	}
	w.erased = append(w.erased, ErasedSalt{Digest: e.digest, Since: e.Since, Until: w.seq})
}

// SaltTable is a salted world incarnation's salts and kept digests of
// erased salts: what a verifier of its version 2 leaves needs.
type SaltTable struct {
	Incarnation uint64
	Salts       []Salt       // by player
	Erased      []ErasedSalt // in the order of their erasures
}

// SaltTable returns a salted world's salt table and erased digests, read
// at once. ErrNotSupported for a world whose leaves are not salted.
func (f *FSM) SaltTable(world string) (SaltTable, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	w, err := f.saltedWorld(world)
	if err != nil {
		return SaltTable{}, err
	}
	t := SaltTable{Incarnation: w.incarnation, Salts: make([]Salt, 0, len(w.salts)), Erased: append([]ErasedSalt(nil), w.erased...)}
	for _, p := range sortedKeys(w.salts) {
		t.Salts = append(t.Salts, w.salts[p].Salt)
	}
	return t, nil
}

// writeErased writes a world's kept digests (snapshot format 10).
func writeErased(e *encoder, w *world) {
	e.uvarint(uint64(len(w.erased)))
	for _, x := range w.erased {
		e.b = append(e.b, x.Digest[:]...)
		e.uvarint(x.Since)
		e.uvarint(x.Until)
	}
}

// readErased reads what writeErased wrote.
func readErased(d *decoder, w *world) {
	n := d.count(wire.SaltedIDLen + 2)
	if n > 0 && !w.isSalted() {
		d.fail("world %s keeps erased digests but is not salted", w.id)
		return
	}
	for i := 0; i < n && d.err == nil; i++ {
		var x ErasedSalt
		d.salt(&x.Digest)
		x.Since, x.Until = d.uvarint(), d.uvarint()
		if d.err == nil && (x.Since == 0 || x.Until < x.Since) {
			d.fail("erased digest of seqs %d to %d", x.Since, x.Until)
		}
		w.erased = append(w.erased, x)
	}
}
