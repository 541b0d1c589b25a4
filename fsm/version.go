package fsm

import (
	"github.com/gsd-dev/gsd/wire"
)

// Versions are the formats a binary reads: the log (command kinds and their
// encodings), the snapshot and the node-to-node wire. Each node reports its
// own in the replicated node table, and the leader proposes a command only
// once every voter reads it (the version gate, in store): a replica that
// meets an entry it cannot decode must stop (see FSM.Apply), so writing one
// that some voter cannot read would crash that voter.
//
// The type is wire.Versions: nodes send it in joins and status answers.
type Versions = wire.Versions

// The versions this binary reads and writes.
//
//   - Log 1: command kinds CmdAction..CmdSessionAcks (batch formats 1 and 2).
//     Log 2 adds CmdUpdateRules and CmdNodeVersions, and the rules schema's
//     extension block.
//   - Snapshot 3: sessions, bans and player data. Snapshot 4 adds the rules
//     version per world and the nodes' versions; it is written only when
//     the state holds one of them, so older states keep their exact bytes.
//     Log 3 builds the rules' actions, roles and fields' write access (rules
//     that set them apply differently on a log 2 replica, which refuses
//     them), and adds a declared action and a role to an action.
//   - Snapshot 5 adds each world's clock (the latest leader time of its
//     actions); it is written only when a world declares actions, whose
//     expressions read that time.
//   - Log 4 adds CmdSessionExpire (session_expiry.go).
//   - Log 5 adds CmdCheckpoint (checkpoint.go).
//   - Log 6 adds CmdDeleteWorld and builds the rules keys capacity,
//     idle_expiry, mode and labels (lifecycle.go); a log 5 replica refuses
//     rules that set them. Snapshot 6 adds each world's incarnation and
//     creation time, and always carries its clock; it is written once a
//     world has an incarnation (every world a log 6 binary creates).
//   - Log 7 builds the visibility rules keys of issue 13: fields' visible
//     and delay, teams (from a field or session data), viewers and
//     interest; a replica before it refuses rules that set them.
//   - Log 8 adds CmdMoveWorld (a world's fence) and CmdImportWorld
//     (migrate.go). Snapshot 7 adds each world's fence and import index;
//     it is written only while a world is fenced or was imported.
//   - Snapshot 8 adds each world's player data versions (playerdata.go);
//     it is written once a player's data changed under this binary. No
//     command needs it (the log's encodings stay), so, as with format 6,
//     upgrade the followers before the leader: a voter on an older binary
//     cannot install a format 8 snapshot.
//   - Log 9 adds CmdDivergence (divergence.go): a checkpoint mismatch
//     recorded as a world's event, with a notice.
//   - Log 10 builds the rules key views (issue 13's aggregated views) and
//     teams from a token claim; a replica before it refuses rules that set
//     them. A session open may carry data (the player's team from the
//     claim), set with the open.
//   - Log 11 builds the rules key player_data (issue 16: which keys players
//     write of their own data) and gives CmdSessionData its meaning: a
//     merge of one player's data, addressed by session (the player's own
//     write, player-writable keys only) or by player (a game server's),
//     with an optional expected data version (session.go). A replica
//     before it refuses the key; no binary before it proposed the kind.
//   - Log 12 adds CmdUpdateRulesEvent (rules_update.go): a rules update
//     that is also the world's event, with a notice of kind "rules", so
//     that the read paths switch rules at its seq. A leader proposes it
//     only when every voter reads log 12, else CmdUpdateRules as before
//     (the read paths then learn of the update by polling).
//   - Log 13 adds CmdCreateWorldSalted, CmdSalt and CmdEraseSalt
//     (salt.go): worlds whose audit leaves are salted per player, their
//     salt table and its erasure. Snapshot 9 adds each world's salt flag
//     and table; it is written only while a world is salted, which only
//     those kinds make.
//   - Log 14 adds CmdEraseSaltKeep (salt_erased.go): an erasure that
//     keeps the erased salt's digest HMAC-SHA256(salt, id) and the seqs it
//     salted, so that the erased player's events still verify. A leader
//     proposes it only when every voter reads log 14, else CmdEraseSalt as
//     before (no digest kept). Snapshot 10 adds each salted world's kept
//     digests; it is written only while a world has one, which only that
//     kind makes.
//   - Log 15 adds CmdMoveWorldSalted and export format 2 (migrate.go):
//     a salted world's fence, and its export with the salt table, the
//     kept digests and the player data versions, imported by
//     CmdImportWorld. A leader proposes either only when every voter
//     reads log 15. An unsalted world's fence is CmdMoveWorld as before;
//     its export is of format 2 too (keeping its data versions) when the
//     move's target reads log 15, else of format 1 (the move decides,
//     ExportWorld's format).
//   - Log 16 builds the rules key fields.<name>.quantum (issue 13: the
//     precision spectators' frames round a float field to); a replica
//     before it refuses rules that set it. Every kind that carries rules
//     is gated on it: a create, salted or not, a rules update with or
//     without its event, and an import whose export's rules set it
//     (ImportRulesNeeds; a move asks the target's voters before the
//     fence). No new command kind; the snapshot format stays 10 (the key
//     travels inside the rules' schema block).
//   - Log 17 adds CmdImportWorldBack (migrate.go, "Move back"): an
//     import that may replace the world's fenced copy of the same
//     incarnation, fenced at or before the export's seq, so that a world
//     can move back to a shard that still holds its copy from an earlier
//     stay. A log 16 replica would refuse such an import (world_exists)
//     where a log 17 one installs it, so the kind is gated: a store
//     proposes it only to replace a fenced copy and only once every
//     voter reads log 17 (MoveBackNeeds; a move asks the target before
//     the fence). The world's shape is unchanged: the snapshot format
//     stays 10.
//   - Wire 1: the node-to-node HTTP calls (api's Gsd-Wire-Version header).
const (
	LogVersion      uint32 = 17
	SnapshotVersion uint32 = uint32(snapVersion)
	WireVersion     uint32 = 1
)

// Supported returns the versions this binary reads.
func Supported() Versions {
	return Versions{Log: LogVersion, Snapshot: SnapshotVersion, Wire: WireVersion}
}

// Baseline is what a node that reported nothing is taken to read: the
// formats of the binaries from before the version gate.
func Baseline() Versions { return Versions{Log: 1, Snapshot: 3, Wire: 1} }

// Floor returns the per-component minimum of vs: what every node that
// reads one of vs reads, and so the most a log entry or snapshot that all
// of them apply can need. No vs: the zero Versions.
func Floor(vs ...Versions) Versions {
	if len(vs) == 0 {
		return Versions{}
	}
	f := vs[0]
	for _, v := range vs[1:] {
		f = Versions{Log: min(f.Log, v.Log), Snapshot: min(f.Snapshot, v.Snapshot), Wire: min(f.Wire, v.Wire)}
	}
	return f
}

// Needs returns the versions a replica must read to apply c the way this
// binary does: the leader proposes c only when every voter's versions
// cover them. It looks at the content, not only the kind, so that a rules
// key's format (the schema block) is gated like a command kind: the rules
// of every kind that carries them (a create, salted or not, a rules
// update, and an import, whose export holds the world's rules).
func Needs(c *Command) Versions {
	v := needs(c)
	switch c.Kind {
	case CmdUpdateRulesEvent:
		// The update's event: a replica before log 12 cannot decode the
		// kind.
		v.Log = 12
	case CmdCreateWorldSalted, CmdSalt, CmdEraseSalt:
		// Salted audit leaves: a replica before log 13 cannot decode the
		// kinds, nor restore the salt table (snapshot format 9).
		v.Log, v.Snapshot = 13, 9
	case CmdEraseSaltKeep:
		// The kept digest: a replica before log 14 cannot decode the
		// kind, nor restore the digests (snapshot format 10).
		v.Log, v.Snapshot = 14, 10
	case CmdMoveWorldSalted:
		// A salted world's fence: a replica before log 15 cannot decode
		// the kind (migrate.go).
		v.Log, v.Snapshot = 15, 10
	case CmdImportWorldBack:
		// A move back's import: a replica before log 17 cannot decode
		// the kind; the export's format needs what it needs (needs).
		v = ceil(v, MoveBackNeeds())
	}
	if r, ok := carriedRules(c); ok {
		v = ceil(v, rulesNeeds(r.Schema))
	}
	return v
}

// carriedRules returns the rules c carries, if any: a create's (salted
// or not), a rules update's, or those in an import's export (not ok when
// the export does not decode that far: every replica refuses it alike).
func carriedRules(c *Command) (Rules, bool) {
	switch {
	case (c.Kind == CmdCreateWorld || c.Kind == CmdCreateWorldSalted) && c.World != nil:
		return c.World.Rules, true
	case c.Kind.rules() && c.Rules != nil:
		return c.Rules.Rules, true
	case c.Kind.imports() && c.Import != nil:
		return c.Import.rules()
	}
	return Rules{}, false
}

// rulesNeeds returns what a replica must read to decode and apply rules
// with schema s alike: the log version that built the newest key it sets,
// with snapshot format 4 (the rules version), or nothing beyond the
// baseline when it sets none of these keys (needs gates the older ones).
func rulesNeeds(s Schema) Versions {
	v := Versions{Log: 1, Snapshot: 3, Wire: 1}
	for _, k := range []struct {
		set bool
		log uint32
	}{
		{s.lifecycle(), 6},  // issue 14's keys: a log 5 replica refuses them
		{s.visibility(), 7}, // issue 13's visibility keys
		{s.log10(), 10},     // issue 13's views and teams from a claim
		{s.log11(), 11},     // issue 16's player_data
		{s.log16(), 16},     // issue 13's quantum
	} {
		if k.set {
			v.Log, v.Snapshot = k.log, 4
		}
	}
	return v
}

// ceil returns the per-component maximum of a and b: what a replica must
// read to read both.
func ceil(a, b Versions) Versions {
	return Versions{Log: max(a.Log, b.Log), Snapshot: max(a.Snapshot, b.Snapshot), Wire: max(a.Wire, b.Wire)}
}

// imports reports an import's kind, a move back's or not.
func (k CmdKind) imports() bool { return k == CmdImportWorld || k == CmdImportWorldBack }

// MoveBackNeeds returns what a replica must read to apply
// CmdImportWorldBack (log 17), before what its export's format and rules
// need (ImportRulesNeeds): a move back asks the target's gate for it
// before the fence at the source.
func MoveBackNeeds() Versions { return Versions{Log: 17, Snapshot: 7, Wire: 1} }

// rules reports a rules update's kind, with or without its event.
func (k CmdKind) rules() bool { return k == CmdUpdateRules || k == CmdUpdateRulesEvent }

func needs(c *Command) Versions {
	v2 := Versions{Log: 2, Snapshot: 4, Wire: 1}
	switch {
	case c.Kind == CmdSessionData:
		// A player's data write: a replica before log 11 would merge it
		// without the rules' player-writable keys and expected version.
		return Versions{Log: 11, Snapshot: 3, Wire: 1}
	case c.Kind == CmdSessionOpen && c.Session != nil && len(c.Session.Data) > 0:
		// An open's data (a team from a claim): a replica before log 10
		// would open the session without it.
		return Versions{Log: 10, Snapshot: 3, Wire: 1}
	case c.Kind == CmdDivergence:
		return Versions{Log: 9, Snapshot: 3, Wire: 1}
	case c.Kind.imports():
		return ImportNeeds(c.Import.Format())
	case c.Kind == CmdMoveWorld, c.Kind == CmdMoveWorldSalted:
		return Versions{Log: 8, Snapshot: 7, Wire: 1}
	case c.Kind == CmdDeleteWorld:
		return Versions{Log: 6, Snapshot: 3, Wire: 1}
	case c.Kind == CmdCheckpoint:
		return Versions{Log: 5, Snapshot: 3, Wire: 1}
	case c.Kind == CmdSessionExpire:
		return Versions{Log: 4, Snapshot: 3, Wire: 1}
	case c.Kind == CmdAction && (c.Action.Name != "" || len(c.Action.Params) > 0 || c.Action.Role != ""):
		return Versions{Log: 3, Snapshot: 3, Wire: 1}
	case c.Kind == CmdCreateWorld && c.World.Rules.Schema.authority(),
		c.Kind.rules() && c.Rules.Rules.Schema.authority():
		return Versions{Log: 3, Snapshot: 5, Wire: 1}
	case c.Kind.rules(), c.Kind == CmdNodeVersions:
		// A rules update may make a snapshot carry a rules version, a
		// versions report makes it carry the nodes' versions: both need
		// snapshot format 4 too.
		return v2
	case c.Kind == CmdCreateWorld && !c.World.Rules.Schema.IsZero():
		return v2 // rules flag bit 2 (today refused: no schema key is built)
	}
	return Baseline()
}
