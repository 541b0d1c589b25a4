package fsm

import (
	"errors"
	"fmt"

	"github.com/gsd-dev/gsd/wire"
)

// Salted audit leaves (issue 15, log version 13): the per-player salts
// of a world whose audit leaves are version 2 (wire.AppendAuditLeafV2).
//
// A salted world is created by CmdCreateWorldSalted (the create, with the
// flag in its kind) and keeps it for its incarnation: its audit tree
// never mixes leaf versions. Its salt table maps a player id to a random
// 32-byte salt drawn by the leader (never by a replica: Apply is
// deterministic and draws nothing) and carried in CmdSalt, the first salt
// for a player winning. An entry says from which of the world's seqs on it
// salts leaves (Since: the seq after the world's last when it applied),
// so that a string equal to the id in an earlier event stays as it was
// committed. An action of a player without a salt is refused with
// ErrUnsalted before it takes a seq: the leader proposes the salt first
// (store), and only an erasure that lands between the two makes a client
// see the error (a retry then draws a new salt).
//
// CmdEraseSalt deletes a player's salt from the state: the next snapshot
// no longer holds it. The log entries and archive records that carried it
// go with their retention. Without the salt nobody can link the player's
// id to the leaves that committed HMAC-SHA256(salt, id): the leaf hashes
// and checkpoints kept for good no longer confirm a guessed id.
// CmdEraseSaltKeep (log version 14) also keeps the erased salt's digest
// and the seqs it salted, without the id (salt_erased.go).
//
// The table travels in snapshots (format 9) and is not in the state hash
// (replicas agree on it through the log, as on the incarnation). A salted
// world moves between shards from log version 15 on (migrate.go): its
// fence is CmdMoveWorldSalted and its export (format 2) carries the table
// and the kept digests, so its leaves go on salted alike on the new group.

// ErrUnsalted reports an action in a salted world by a player who has no
// salt (erased between the leader's salt and the action): retry.
var ErrUnsalted = errors.New("gsd/fsm: player has no audit salt")

// CodeUnsalted is ErrUnsalted's code.
const CodeUnsalted = wire.CodeUnsalted

// SaltLen is the length of a player's audit salt.
const SaltLen = 32

// SaltCmd is the payload of CmdSalt (Key set), CmdEraseSalt and
// CmdEraseSaltKeep.
type SaltCmd struct {
	World  string
	Player string
	Key    [SaltLen]byte // CmdSalt: the salt, drawn by the leader
}

// Validate checks the payload's shape; it does not look at state.
func (c *SaltCmd) Validate() error {
	if err := checkName("world", c.World); err != nil {
		return err
	}
	return checkName("player", c.Player)
}

// Salt is one player's entry in a salted world's table.
type Salt struct {
	Player string
	Key    [SaltLen]byte
	// Since is the first of the world's seqs whose leaf the salt salts.
	Since uint64
}

// saltEntry is a table entry: the salt and the player's salted id,
// computed once.
type saltEntry struct {
	Salt
	digest [wire.SaltedIDLen]byte
}

func newSaltEntry(s Salt) saltEntry {
	return saltEntry{Salt: s, digest: wire.SaltedID(s.Key[:], s.Player)}
}

// SaltedName is a player id an event names and its salted form,
// HMAC-SHA256(salt, id) (wire.SaltedID).
type SaltedName struct {
	Name   string
	Digest [wire.SaltedIDLen]byte
}

// Salting is, for an event of a salted world, the player ids it names
// (as its player, an entity or a string value) that had a salt when it
// applied: what its version 2 audit leaf commits to in their place. The
// event carries it, in the archive too, so that a leaf can be built after
// the salt was erased (an auditor behind, a tree rebuilt from the
// archive), with the same bytes on every replica.
type Salting struct{ Names []SaltedName }

// Lookup answers wire.AppendAuditLeafV2's question for the event: nil
// salts nothing.
func (s *Salting) Lookup(name string) ([wire.SaltedIDLen]byte, bool) {
	if s != nil {
		for i := range s.Names {
			if s.Names[i].Name == name {
				return s.Names[i].Digest, true
			}
		}
	}
	return [wire.SaltedIDLen]byte{}, false
}

// salting returns what ev names of w's salted players; nil: none.
func (w *world) salting(ev *Event) *Salting {
	var s *Salting
	add := func(name string) {
		e, ok := w.salts[name]
		if !ok {
			return
		}
		if _, dup := s.Lookup(name); dup {
			return
		}
		if s == nil {
			s = &Salting{}
		}
		s.Names = append(s.Names, SaltedName{Name: name, Digest: e.digest})
	}
	add(ev.Player)
	for i := range ev.Changes {
		c := &ev.Changes[i]
		add(c.Entity)
		if c.Value.Kind == KindString {
			add(c.Value.Str)
		}
		for _, v := range c.Set {
			if v.Kind == KindString {
				add(v.Str)
			}
		}
	}
	return s
}

// saltingFlag starts an archived event's salting, after its notice if
// any (whose flags are 1 and 2).
const saltingFlag byte = 3

func (e *encoder) salting(s *Salting) {
	e.byte(saltingFlag)
	e.uvarint(uint64(len(s.Names)))
	for _, n := range s.Names {
		e.str(n.Name)
		e.b = append(e.b, n.Digest[:]...)
	}
}

func (d *decoder) salting() *Salting {
	d.byte()
	s := &Salting{Names: make([]SaltedName, d.count(1+wire.SaltedIDLen))}
	for i := range s.Names {
		s.Names[i].Name = d.str()
		d.salt(&s.Names[i].Digest)
	}
	return s
}

// isSalted reports a world whose audit leaves are version 2.
func (w *world) isSalted() bool { return w.salts != nil }

// saltedWorld returns world id for a salt command: ErrUnknownWorld when
// absent, ErrNotSupported when its leaves are not salted.
func (f *FSM) saltedWorld(id string) (*world, error) {
	w := f.worlds[id]
	if w == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownWorld, id)
	}
	if !w.isSalted() {
		return nil, fmt.Errorf("%w: world %s does not salt its audit leaves", ErrNotSupported, id)
	}
	return w, nil
}

// saltWritable is saltedWorld for a command that changes the table: a
// *MovedError once the world is fenced (log version 15, migrate.go), so
// that the table at the fence is the one its export carries on every
// replica, and an erasure reaches the new home (where the edge's retry
// of world_moved lands) rather than a copy left behind.
func (f *FSM) saltWritable(id string) (*world, error) {
	w, err := f.saltedWorld(id)
	if err == nil && w.moved != nil {
		return nil, &MovedError{*w.moved}
	}
	return w, err
}

// applySalt gives c.Player the salt c.Key unless the player has one
// already (then it changes nothing, and is no error).
func (f *FSM) applySalt(c *SaltCmd) Result {
	if err := c.Validate(); err != nil {
		return Result{Err: err}
	}
	w, err := f.saltWritable(c.World)
	if err != nil {
		return Result{Err: err}
	}
	if _, ok := w.salts[c.Player]; !ok {
		w.salts[c.Player] = newSaltEntry(Salt{Player: c.Player, Key: c.Key, Since: w.seq + 1})
	}
	return Result{}
}

// applyEraseSalt deletes c.Player's salt: ErrNotFound when there is none
// (never drawn, or erased already). With keep (CmdEraseSaltKeep, log
// version 14) the world keeps the salt's digest and the seqs it salted
// (salt_erased.go).
func (f *FSM) applyEraseSalt(c *SaltCmd, keep bool) Result {
	if err := c.Validate(); err != nil {
		return Result{Err: err}
	}
	w, err := f.saltWritable(c.World)
	if err != nil {
		return Result{Err: err}
	}
	if _, ok := w.salts[c.Player]; !ok {
		return Result{Err: fmt.Errorf("%w: no salt for player %s in world %s", ErrNotFound, c.Player, c.World)}
	}
	if keep {
		w.keepErased(w.salts[c.Player])
	}
	delete(w.salts, c.Player)
	return Result{}
}

// unsalted reports an action that needs a salt its player lacks.
func (w *world) unsalted(player string) bool {
	if !w.isSalted() || player == "" {
		return false
	}
	_, ok := w.salts[player]
	return !ok
}

// NeedsSalt reports whether player must get a salt (CmdSalt) before
// acting in world: the world is salted and the player has none. For a
// world that is not salted it reads only the published view, as Check
// does, never f.mu.
func (f *FSM) NeedsSalt(world, player string) bool {
	if !(*f.view.Load())[world].salted {
		return false
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	w := f.worlds[world]
	return w != nil && w.unsalted(player)
}

// Recorded reports whether player's action seq is one world has recorded
// (a retry of it gets its original result, ahead of the salt check): the
// leader draws no salt for it, so that an erased player's retry of an
// action sent before the erasure does not put them back in the table.
func (f *FSM) Recorded(world, player string, seq uint64) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	w := f.worlds[world]
	if w == nil {
		return false
	}
	p := w.players[player]
	if p == nil || seq > p.maxSeq {
		return false
	}
	_, ok := p.lookup(seq, f.cfg.Window)
	return ok
}

// Salts returns a salted world's table, sorted by player, with its
// incarnation (SaltTable without the erased digests). ErrNotSupported for
// a world whose leaves are not salted.
func (f *FSM) Salts(world string) ([]Salt, uint64, error) {
	t, err := f.SaltTable(world)
	return t.Salts, t.Incarnation, err
}

func (e *encoder) saltCmd(c *SaltCmd, key bool) {
	e.str(c.World)
	e.str(c.Player)
	if key {
		e.b = append(e.b, c.Key[:]...)
	}
}

func (d *decoder) saltCmd(key bool) *SaltCmd {
	c := &SaltCmd{World: d.str(), Player: d.str()}
	if key {
		d.salt(&c.Key)
	}
	return c
}

// salt reads SaltLen raw bytes into k.
func (d *decoder) salt(k *[SaltLen]byte) {
	if d.err != nil {
		return
	}
	if len(d.b) < SaltLen {
		d.fail("short salt: %d bytes", len(d.b))
		return
	}
	copy(k[:], d.b)
	d.b = d.b[SaltLen:]
}

// writeSalts writes a world's salt flag and table (snapshot format 9).
func writeSalts(e *encoder, w *world) {
	e.bool(w.isSalted())
	if !w.isSalted() {
		return
	}
	e.uvarint(uint64(len(w.salts)))
	for _, p := range sortedKeys(w.salts) {
		s := w.salts[p]
		e.str(p)
		e.b = append(e.b, s.Key[:]...)
		e.uvarint(s.Since)
	}
}

// readSalts reads what writeSalts wrote.
func readSalts(d *decoder, w *world) {
	if !d.bool() {
		return
	}
	n := d.count(2 + SaltLen)
	w.salts = make(map[string]saltEntry, n)
	for i := 0; i < n && d.err == nil; i++ {
		s := Salt{Player: d.str()}
		d.salt(&s.Key)
		s.Since = d.uvarint()
		w.salts[s.Player] = newSaltEntry(s)
	}
}
