package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/gsd-dev/gsd/wire"
)

// World migration (issue 14): the fence, and a world's export and import.
//
// Fence. CmdMoveWorld (log version 8) records on the world's old group
// "world W moved to shard S at seq N", N being the world's seq when the
// record applies. From then on every write to W on this group (actions,
// session commands and acks, rules updates, session expiry) is refused
// with a *MovedError (errors.Is ErrWorldMoved) naming S, in log order on
// every replica: a node whose shard map is stale can reach the old home,
// but never write there. Reads stay possible (entities, hashes, sessions,
// the event feed up to N) until the world is dropped with CmdDeleteWorld;
// after that a write answers ErrUnknownWorld like any absent world. The
// fence travels in snapshots (format 7) and is not in the state hash (as
// the incarnation is not: replicas agree on it through the log).
//
// Export and import. ExportWorld encodes one world's complete state at its
// current seq: rules, entities, idempotency windows, sessions, bans,
// player data, clock, incarnation and the retained hash history, in the
// snapshot's world encoding (format 6) behind its own magic. The fence
// and the replica's own checkpoint marks stay behind. CmdImportWorld (log
// version 8) installs such a blob on another group: the world's seq goes
// on from N (the next event is N+1, so a client's versions and expects
// keep working), and a retried action finds its idempotency record. The
// import refuses a world that exists on the group (ErrWorldExists) and a
// blob whose world hash does not match its contents (ErrMalformed). The
// event archive does not move: the new group's feed starts at N+1.
//
// Salted worlds (issue 15, log version 15). An export of format 1 holds
// the world in snapshot format 6, which has no salt table: a salted
// world's leaves on the new group need it. So a salted world exports in
// format 2 ("GSDWRLD\x02"): the world in snapshot format 10, with its
// salt table and the kept digests of its erased salts, and its player data
// versions, which the import keeps (format 1 has none: the import stamps
// each player with data with its leader time, so an expected data version
// read before the move no longer matches). A log 14 replica refuses
// format 2 (malformed) and refuses to fence a salted world; a log 15 one
// does neither, so both are gated (Needs): the fence of a salted world is
// CmdMoveWorldSalted, the import of format 2 needs log 15, and the leader
// proposes them only once every voter reads it.
//
// Unsalted worlds (issues 14/15) export in the format the move asks for
// (ExportWorld's format): 2 when the target group reads log 15, so that
// their data versions move too, else 1, which every log 8 replica
// imports (restamping the versions as above). The move decides it, not
// the replica: every replica that applied the fence exports the same
// bytes for the same request, but for one case in format 2: a replica
// that holds data version 0 for data another holds at T (playerdata.go:
// restored from a snapshot before format 8, or it applied the change on
// a binary without versions) exports 0 there, and the import keeps it.

// Move back (issue 14, log version 17). A group that the world left keeps
// its copy, fenced, until someone drops it; a move back there (C->B->A,
// then A->B) cannot import with CmdImportWorld, which never replaces a
// world. CmdImportWorldBack is the same import but for one case: a copy
// here that is fenced, of the export's incarnation, fenced at or before
// the export's seq, is replaced by the export whole (replaceable): the
// seq goes on from the export's, and nothing of the earlier stay is kept
// (its sessions, acks, player data, bans, salts, hash history and this
// replica's checkpoint marks all come from the export or go). A live copy
// (the move's earlier import: the mover recognises it), a copy of another
// incarnation and one fenced after the export's seq (the world moved on
// since: a stale import) are refused with ErrWorldExists, naming why. A
// log 16 replica cannot decode the kind, so it is gated (Needs); a store
// proposes it only to replace a fenced copy.
//
// ErrWorldMoved reports a write to a world that moved to another shard;
// the error is a *MovedError, which names the shard.
var ErrWorldMoved = errors.New("gsd/fsm: world moved")

// CodeWorldMoved is ErrWorldMoved's code.
const CodeWorldMoved = wire.CodeWorldMoved

// Fence is a world's record "moved to shard Shard at seq Seq".
type Fence struct {
	World string
	Shard uint64
	Seq   uint64
}

// MovedError is the error of a write to a fenced world.
type MovedError struct{ Fence }

func (e *MovedError) Error() string {
	return fmt.Sprintf("%v: %s moved to shard %d at seq %d", ErrWorldMoved, e.World, e.Shard, e.Seq)
}

// Is makes errors.Is(err, ErrWorldMoved) hold.
func (e *MovedError) Is(target error) bool { return target == ErrWorldMoved }

// WorldMove is the payload of CmdMoveWorld.
type WorldMove struct {
	World string
	Shard uint64
	// Incarnation, when not 0, must be the world's: a fence meant for an
	// earlier incarnation leaves a re-created world alone.
	Incarnation uint64
}

// Validate checks the payload's shape; it does not look at state.
func (c *WorldMove) Validate() error { return checkName("world", c.World) }

// WorldImport is the payload of CmdImportWorld.
type WorldImport struct {
	World string // the blob's world: a mismatch is malformed
	Data  []byte // what ExportWorld returned
}

// Validate checks the payload's shape; the blob is checked when it applies.
func (c *WorldImport) Validate() error {
	if err := checkName("world", c.World); err != nil {
		return err
	}
	if c.Format() == 0 {
		return fmt.Errorf("%w: not a gsd world export of format 1 or %d", ErrMalformed, ExportFormat)
	}
	return nil
}

// Format returns the blob's export format, 0 when it is not a world
// export this binary reads.
func (c *WorldImport) Format() byte {
	p := exportMagic[:len(exportMagic)-1]
	if len(c.Data) < len(exportMagic) || !bytes.HasPrefix(c.Data, p) {
		return 0
	}
	if v := c.Data[len(p)]; int(v) < len(exportWorldFormats) && exportWorldFormats[v] != 0 {
		return v
	}
	return 0
}

// writable returns the world a write goes to: ErrUnknownWorld when absent,
// a *MovedError once it is fenced.
func (f *FSM) writable(id string) (*world, error) {
	w := f.worlds[id]
	if w == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownWorld, id)
	}
	if w.moved != nil {
		return nil, &MovedError{*w.moved}
	}
	return w, nil
}

// moveWorld fences c.World. A repeated fence to the same shard answers the
// first one's record (a retried move); to another shard it is refused.
// Only salted (CmdMoveWorldSalted) fences a salted world.
func (f *FSM) moveWorld(c *WorldMove, salted bool) Result {
	if err := c.Validate(); err != nil {
		return Result{Err: err}
	}
	w := f.worlds[c.World]
	if w == nil || c.Incarnation != 0 && c.Incarnation != w.incarnation {
		return Result{Err: fmt.Errorf("%w: %s incarnation %d", ErrUnknownWorld, c.World, c.Incarnation)}
	}
	if w.moved != nil && w.moved.Shard != c.Shard {
		return Result{Err: &MovedError{*w.moved}}
	}
	if w.isSalted() && !salted {
		// What log 13 and 14 replicas do with CmdMoveWorld, kept so that
		// every replica applies it alike: a salted world's export is of
		// format 2, which only a log 15 group imports.
		return Result{Err: fmt.Errorf("%w: world %s salts its audit leaves: its fence needs log version 15 (CmdMoveWorldSalted)", ErrNotSupported, c.World)}
	}
	if w.moved == nil {
		w.moved = &Fence{World: w.id, Shard: c.Shard, Seq: w.seq}
		f.publishView()
	}
	fc := *w.moved
	return Result{Fence: &fc}
}

// exportMagic starts a world export; the last byte is its format.
var exportMagic = []byte("GSDWRLD\x01")

// ExportFormat is the newest world export format: 2, which carries the
// player data versions and a salted world's salt table.
const ExportFormat byte = 2

// ImportNeeds returns what a replica must read to import an export of
// format (WorldImport.Format): log 8 for format 1; log 15 for format 2,
// which a log 14 replica refuses and whose world needs snapshot format 10.
// A move asks the target group's voters for it before the fence.
func ImportNeeds(format byte) Versions {
	if format == ExportFormat {
		return Versions{Log: 15, Snapshot: 10, Wire: 1}
	}
	return Versions{Log: 8, Snapshot: 7, Wire: 1}
}

// ImportRulesNeeds returns what a replica must read to import an export
// of format of a world with rules: ImportNeeds(format), raised to what
// the rules' keys need (a quantum: log 16), since the import decodes them
// and a replica that cannot would refuse the import while the others
// install the world. Needs of CmdImportWorld reads the rules from the
// export; a move asks the target's voters for it before the fence, from
// the source's rules.
func ImportRulesNeeds(format byte, rules Rules) Versions {
	return ceil(ImportNeeds(format), rulesNeeds(rules.Schema))
}

// rules returns the rules in the export, not ok when it does not decode
// that far.
func (c *WorldImport) rules() (Rules, bool) {
	if c.Format() == 0 {
		return Rules{}, false
	}
	d := &decoder{b: c.Data[len(exportMagic):]}
	d.str() // the world
	d.str() // its origin
	r := d.rules()
	return r, d.err == nil
}

// exportWorldFormats is, by export format, the snapshot format of the
// world inside it (0: no such export format).
var exportWorldFormats = [ExportFormat + 1]byte{1: 6, 2: 10}

// ExportWorld returns world id's complete state at its current seq, for
// CmdImportWorld on another group, and that seq, in export format: 1, or
// 2 (ExportFormat), which carries the player data versions and which a
// salted world needs (ErrNotSupported for 1; ErrMalformed for a format
// this binary does not write); format 2 carries this replica's versions,
// 0 where it holds none (see "Unsalted worlds" above). The caller picks it for the target: 2 only
// when the target's voters read it (ImportNeeds). Like Snapshot it copies
// only the world's index maps under the lock and encodes outside it, so
// Apply goes on meanwhile; export a fenced world to move it, since an
// unfenced one may take writes after the seq returned.
func (f *FSM) ExportWorld(id string, format byte) ([]byte, uint64, error) {
	if int(format) >= len(exportWorldFormats) || exportWorldFormats[format] == 0 {
		return nil, 0, fmt.Errorf("%w: export format %d (this binary writes 1 to %d)", ErrMalformed, format, ExportFormat)
	}
	f.mu.Lock()
	w := f.worlds[id]
	if w == nil {
		f.mu.Unlock()
		return nil, 0, fmt.Errorf("%w: %s", ErrUnknownWorld, id)
	}
	if w.isSalted() && format != ExportFormat {
		f.mu.Unlock()
		return nil, 0, fmt.Errorf("%w: world %s salts its audit leaves: it exports in format %d only (its salt table)", ErrNotSupported, id, ExportFormat)
	}
	c := *w
	c.entities = maps.Clone(w.entities)
	c.players = maps.Clone(w.players)
	c.sessions = maps.Clone(w.sessions)
	c.data = maps.Clone(w.data)
	c.bans = maps.Clone(w.bans)
	c.dataVer = nil // format 1 does not carry them
	if format == ExportFormat {
		c.dataVer = maps.Clone(w.dataVer)
	}
	c.salts = maps.Clone(w.salts)
	c.erased = slices.Clip(w.erased)                   // append-only: the copy sees its length only
	c.moved, c.imported = nil, 0                       // the group's own, they stay behind
	c.history = append([]hashPoint(nil), w.history...) // Apply writes it in place
	f.gen++                                            // as Snapshot: Apply copies before its next write
	f.mu.Unlock()

	e := &encoder{b: append(make([]byte, 0, 1<<12), exportMagic[:len(exportMagic)-1]...)}
	e.byte(format)
	_ = writeWorld(e, &c, exportWorldFormats[format], f.reasons, func(bool) error { return nil })
	points := c.historyPoints()
	e.uvarint(uint64(len(points)))
	for _, p := range points {
		e.uvarint(p.seq)
		e.uvarint(p.index)
		e.fixed64(p.hash)
	}
	return e.b, c.seq, nil
}

// historyPoints returns the retained hash points before the current seq,
// oldest first (the current one is recomputed on import).
func (w *world) historyPoints() []hashPoint {
	var out []hashPoint
	n := uint64(len(w.history))
	for s := w.seq - min(w.seq, n); s < w.seq; s++ {
		if p := w.history[s%n]; p.seq == s && s != 0 {
			out = append(out, p)
		}
	}
	return out
}

// importWorld installs an exported world, applied at log index index and
// leader time now. With back (CmdImportWorldBack) it may replace the
// world's copy here when that is a fenced copy the export continues
// (replaceable); otherwise a world that exists is refused.
func (f *FSM) importWorld(index uint64, now int64, c *WorldImport, back bool) Result {
	if err := c.Validate(); err != nil {
		return Result{Err: err}
	}
	format := c.Format()
	d := &decoder{b: c.Data[len(exportMagic):]}
	w, err := f.readWorld(d, f.gen, exportWorldFormats[format])
	if err != nil {
		return Result{Err: fmt.Errorf("import world %s: %w", c.World, err)}
	}
	n := uint64(len(w.history))
	for i, k := 0, d.count(10); i < k && d.err == nil; i++ {
		p := hashPoint{seq: d.uvarint(), index: d.uvarint(), hash: d.fixed64()}
		if p.seq < w.seq && p.seq+n > w.seq {
			w.history[p.seq%n] = p
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err == nil && w.id != c.World {
		d.fail("the export holds world %s", w.id)
	}
	if d.err != nil {
		return Result{Err: fmt.Errorf("import world %s: %w", c.World, d.err)}
	}
	if old, ok := f.worlds[w.id]; ok {
		if !back {
			return Result{Err: fmt.Errorf("%w: %s", ErrWorldExists, w.id)}
		}
		if err := replaceable(old, w); err != nil {
			return Result{Err: err}
		}
		// The earlier stay's own marks go with it (the new state's
		// checkpoints mark anew); everything else is the export's.
		delete(f.marks, w.id)
	}
	w.moved, w.imported = nil, index
	if format == 1 {
		w.stampImported(now) // format 2 carries the versions
	}
	f.worlds[w.id] = w
	f.publishView()
	info := w.info()
	return Result{Imported: &info}
}

// replaceable returns nil when old, the copy of a world this group holds,
// may be replaced by w, the same world from an export (a move back): old
// is fenced (only a stay that ended here; a live copy is this move's
// earlier import or another world, which an import never replaces), of
// w's incarnation (never an earlier incarnation's leftover), fenced at or
// before w's seq (w continues it; a later fence means the world moved on
// from here after the export was made: a stale import). Each refusal
// wraps ErrWorldExists, naming what differs.
func replaceable(old, w *world) error {
	switch {
	case old.moved == nil:
		return fmt.Errorf("%w: %s (not fenced here: a move back replaces only a fenced copy)", ErrWorldExists, w.id)
	case old.incarnation != w.incarnation:
		return fmt.Errorf("%w: %s incarnation %d here, fenced, and the export is of incarnation %d: a move back replaces only a fenced copy of the same incarnation", ErrWorldExists, w.id, old.incarnation, w.incarnation)
	case old.moved.Seq > w.seq:
		return fmt.Errorf("%w: %s fenced here at seq %d, after the export's seq %d (the world moved on from here since: a stale export)", ErrWorldExists, w.id, old.moved.Seq, w.seq)
	}
	return nil
}

// encoding (in batches and snapshots)

// worldCmd encodes the world commands of issue 14: delete, move, import.
func (e *encoder) worldCmd(c *Command) {
	switch c.Kind {
	case CmdDeleteWorld:
		e.worldDelete(c.Delete)
	case CmdMoveWorld, CmdMoveWorldSalted:
		e.worldMove(c.Move)
	default:
		e.worldImport(c.Import)
	}
}

// worldCmd decodes what encoder.worldCmd wrote for c.Kind.
func (d *decoder) worldCmd(c *Command) {
	switch c.Kind {
	case CmdDeleteWorld:
		c.Delete = d.worldDelete()
	case CmdMoveWorld, CmdMoveWorldSalted:
		c.Move = d.worldMove()
	default:
		c.Import = d.worldImport()
	}
}

func (e *encoder) worldMove(c *WorldMove) {
	e.str(c.World)
	e.uvarint(c.Shard)
	e.uvarint(c.Incarnation)
}

func (d *decoder) worldMove() *WorldMove {
	return &WorldMove{World: d.str(), Shard: d.uvarint(), Incarnation: d.uvarint()}
}

func (e *encoder) worldImport(c *WorldImport) {
	e.str(c.World)
	e.uvarint(uint64(len(c.Data)))
	e.b = append(e.b, c.Data...)
}

func (d *decoder) worldImport() *WorldImport {
	return &WorldImport{World: d.str(), Data: d.rawBytes()}
}

// writeMigration writes a world's fence and import index (format 7).
func writeMigration(e *encoder, w *world) {
	e.bool(w.moved != nil)
	if w.moved != nil {
		e.uvarint(w.moved.Shard)
		e.uvarint(w.moved.Seq)
	}
	e.uvarint(w.imported)
}

func readMigration(d *decoder, w *world) {
	if d.bool() {
		w.moved = &Fence{World: w.id, Shard: d.uvarint(), Seq: d.uvarint()}
	}
	w.imported = d.uvarint()
}
