package fsm

import (
	"errors"
	"fmt"
	"maps"

	"github.com/gsd-dev/gsd/wire"
)

// Sessions are players' logical connections to a world, replicated so that
// a player can resume on any node after a drop. They live in their world (a
// migrating world takes its sessions along) and do not change the world's
// seq: they are bookkeeping of the edge, not game state. They are in the
// world's state hash (see sessionhash.go), so diverged sessions show.
//
// The edge generates the session id and the resume token; the FSM stores
// only the token's hash (sha256), so randomness stays outside Apply and a
// snapshot leaks no usable token.

// MaxSessionData bounds the keys of one player's critical data in one world.
const MaxSessionData = 64

// TokenHashLen is the length of a resume-token hash (sha256).
const TokenHashLen = 32

// Session sentinel errors; Code maps them like the others.
var (
	// ErrSessionUnknown reports a session id the world does not hold.
	ErrSessionUnknown = errors.New("gsd/fsm: unknown session")
	// ErrSessionExists reports an open with a session id that is taken.
	ErrSessionExists = errors.New("gsd/fsm: session exists")
	// ErrSessionDenied reports a resume whose token or player does not match.
	ErrSessionDenied = errors.New("gsd/fsm: session resume denied")
	// ErrSessionKicked reports a resume of a session an admin kicked.
	ErrSessionKicked = errors.New("gsd/fsm: session kicked")
	// ErrBanned reports an open or resume by a player banned from the world.
	ErrBanned = errors.New("gsd/fsm: player banned")
	// ErrDataConflict reports a data write whose expected data version is
	// not the player's.
	ErrDataConflict = errors.New("gsd/fsm: player data version conflict")
)

// Session reason codes.
const (
	CodeSessionUnknown = wire.CodeSessionUnknown
	CodeSessionExists  = wire.CodeSessionExists
	CodeSessionDenied  = wire.CodeSessionDenied
	CodeSessionKicked  = wire.CodeSessionKicked
	CodeBanned         = wire.CodeBanned
	CodeDataConflict   = "data_conflict"
)

// DataItem is one key of a player's critical data; a null Value deletes it.
type DataItem struct {
	Key   string
	Value Value
}

// SessionCmd is the payload of the session commands (CmdSessionOpen, Ack,
// Resume, Close, Data, Kick, Ban, Unban, Import). Each kind reads only some
// fields:
//
//	open:   World, ID, Player, TokenHash, Node (holding the connection),
//	        Data (log version 10: set with the open, as data does; the
//	        player's team from a token claim)
//	ack:    World, ID, Seq (last event seq the client processed)
//	resume: World, ID, Player, TokenHash (of the presented token), Seq, Node
//	close:  World, ID, Reason
//	data:   World, Data, Seq (the expected data version; 0: any) and
//	        ID, Player: a player's own write through their session
//	        (Player must be the session's, which is not kicked, and
//	        every key player-writable by the world's rules); Player
//	        without ID: a game server's or admin's write of any key; ID
//	        without Player: the session's edge writes any key. Log
//	        version 11; all keys apply or none.
//	kick:   World, ID, Reason (required): marks the session kicked; its
//	        connection closes and it cannot be resumed
//	ban:    World, Player, Reason (required): bans the player and kicks
//	        their session
//	unban:  World, Player
//	import: World, Player, Data: the player's data becomes exactly Data
//	        (null values are skipped), so importing twice changes nothing
type SessionCmd struct {
	World     string
	ID        string
	Player    string
	TokenHash [TokenHashLen]byte
	Seq       uint64
	Reason    string
	Data      []DataItem
	Node      string
}

// Ban is one banned player of a world.
type Ban struct {
	Player string
	Reason string
}

// SessionInfo is a session as readers and command results see it.
type SessionInfo struct {
	World  string
	ID     string
	Player string
	// Acked is the last world event seq the player acknowledged; on open,
	// the world's seq then (the session starts with the events after it).
	Acked uint64
	// Epoch counts resumes; the connection that resumed last holds it.
	Epoch uint64
	// Opened and Seen are leader times (unix ns) of the open and of the
	// session's last command.
	Opened, Seen int64
	// Replaced is, on open, the id of the player's previous session in the
	// world, which the open closed ("" if none).
	Replaced string
	// Node is the node that holds the session's connection (as of the
	// last open or resume).
	Node string
	// Kicked is the reason an admin kicked the session ("" if not).
	Kicked string
	// Data is the player's critical data in the world (a copy) and
	// DataVersion its version (playerdata.go).
	Data        map[string]Value
	DataVersion uint64
}

// session is one stored session. Stored sessions are never mutated: a
// change stores a new one, so snapshots share them safely.
type session struct {
	id, player   string
	tokenHash    [TokenHashLen]byte
	acked, epoch uint64
	opened, seen int64
	node, kicked string
}

func (s *session) info(w *world) SessionInfo {
	return SessionInfo{World: w.id, ID: s.id, Player: s.player, Acked: s.acked, Epoch: s.epoch,
		Opened: s.opened, Seen: s.seen, Node: s.node, Kicked: s.kicked, Data: maps.Clone(w.data[s.player]),
		DataVersion: w.dataVer[s.player]}
}

// playerKind reports the kinds addressed by player rather than session id.
func playerKind(kind CmdKind) bool {
	return kind == CmdSessionBan || kind == CmdSessionUnban || kind == CmdSessionImport
}

// byPlayer reports whether c addresses a player rather than a session: the
// player kinds, and a data write without a session id (a game server's).
func (c *SessionCmd) byPlayer(kind CmdKind) bool {
	return playerKind(kind) || kind == CmdSessionData && c.ID == ""
}

// validate checks a session command's names and data before apply looks at
// state.
func (c *SessionCmd) validate(kind CmdKind) error {
	if !c.byPlayer(kind) {
		if err := checkName("session", c.ID); err != nil {
			return err
		}
	}
	if kind == CmdSessionOpen || kind == CmdSessionResume || c.byPlayer(kind) || kind == CmdSessionData && c.Player != "" {
		if err := checkName("player", c.Player); err != nil {
			return err
		}
	}
	if len(c.Node) > MaxNameLen {
		return fmt.Errorf("%w: node name over %d bytes", ErrMalformed, MaxNameLen)
	}
	if (kind == CmdSessionKick || kind == CmdSessionBan) && (c.Reason == "" || len(c.Reason) > MaxStringLen) {
		return fmt.Errorf("%w: a kick or ban needs a reason of 1..%d bytes", ErrMalformed, MaxStringLen)
	}
	if len(c.Data) > MaxSessionData {
		return fmt.Errorf("%w: more than %d data items", ErrMalformed, MaxSessionData)
	}
	for _, d := range c.Data {
		if err := checkName("data key", d.Key); err != nil {
			return err
		}
		if !d.Value.Valid() || len(d.Value.Str) > MaxStringLen {
			return fmt.Errorf("%w: bad value of data key %s", ErrMalformed, d.Key)
		}
	}
	return nil
}

// applySession applies one session command at leader time now.
func (f *FSM) applySession(kind CmdKind, now int64, c *SessionCmd) Result {
	w, err := f.writable(c.World)
	if err != nil {
		return Result{Err: err}
	}
	if err := c.validate(kind); err != nil {
		return Result{Err: err}
	}
	// Every session command may change the sessions hash: the hash point
	// of the world's current seq follows it.
	defer w.recordHash(f.cfg.HashHistory)
	if c.byPlayer(kind) {
		return w.applyPlayer(kind, now, c)
	}
	if kind == CmdSessionOpen || kind == CmdSessionResume {
		if reason, banned := w.bans[c.Player]; banned {
			return Result{Err: fmt.Errorf("%w: %s from world %s: %s", ErrBanned, c.Player, c.World, reason)}
		}
	}
	old := w.sessions[c.ID]
	if kind == CmdSessionOpen {
		if old != nil {
			return Result{Err: fmt.Errorf("%w: %s", ErrSessionExists, c.ID)}
		}
		if w.full(c.Player) {
			return Result{Err: fmt.Errorf("%w: %s holds its capacity of %d sessions", ErrWorldFull, c.World, w.rules.Schema.Capacity)}
		}
		// An open's data (log version 10) is the player's team from a token
		// claim (rules teams.from "claim"), recorded with the open so every
		// node reads it.
		d, err := w.mergeData(c.Player, c.Data)
		if err != nil {
			return Result{Err: err}
		}
		s := &session{id: c.ID, player: c.Player, tokenHash: c.TokenHash, acked: w.seq, opened: now, seen: now, node: c.Node}
		if len(c.Data) > 0 {
			if len(d) == 0 {
				d = nil // no data, as before the open
			}
			w.setData(c.Player, d, now)
		}
		var replaced string
		if prev := w.playerSession(c.Player); prev != nil {
			replaced = prev.id
			w.dropSession(prev)
		}
		w.putSession(s)
		info := s.info(w)
		info.Replaced = replaced
		return Result{Session: &info}
	}
	if old == nil {
		return Result{Err: fmt.Errorf("%w: %s in world %s", ErrSessionUnknown, c.ID, c.World)}
	}
	if c.Seq > w.seq && kind != CmdSessionData { // a data write's Seq is a data version
		return Result{Err: fmt.Errorf("%w: seq %d beyond world seq %d", ErrMalformed, c.Seq, w.seq)}
	}
	s := *old
	s.seen = now
	switch kind {
	case CmdSessionAck:
		s.acked = max(s.acked, c.Seq)
	case CmdSessionResume:
		if c.Player != s.player || c.TokenHash != s.tokenHash {
			return Result{Err: fmt.Errorf("%w: session %s", ErrSessionDenied, c.ID)}
		}
		if s.kicked != "" {
			return Result{Err: fmt.Errorf("%w: session %s: %s", ErrSessionKicked, c.ID, s.kicked)}
		}
		s.acked = max(s.acked, c.Seq)
		s.epoch++
		s.node = c.Node
	case CmdSessionKick:
		s.kicked = c.Reason
	case CmdSessionClose:
		w.dropSession(old)
		info := s.info(w)
		return Result{Session: &info}
	case CmdSessionData:
		if c.Player != "" {
			if err := w.playerMayWrite(&s, c); err != nil {
				return Result{Err: err}
			}
		}
		if err := w.writeData(s.player, c, now); err != nil {
			return Result{Err: err}
		}
	}
	w.putSession(&s)
	info := s.info(w)
	return Result{Session: &info}
}

// mergeData returns the player's data with items applied (a null value
// deletes its key), without changing w.
func (w *world) mergeData(player string, items []DataItem) (map[string]Value, error) {
	d := maps.Clone(w.data[player])
	if d == nil {
		d = make(map[string]Value, len(items))
	}
	for _, it := range items {
		if it.Value.Kind == KindNull {
			delete(d, it.Key)
		} else {
			d[it.Key] = it.Value
		}
	}
	if len(d) > MaxSessionData {
		return nil, fmt.Errorf("%w: player data over %d keys", ErrMalformed, MaxSessionData)
	}
	return d, nil
}

// playerMayWrite checks a player's own write through their session s:
// the session is theirs and not kicked, and the world's rules make every
// key player-writable.
func (w *world) playerMayWrite(s *session, c *SessionCmd) error {
	if c.Player != s.player {
		return fmt.Errorf("%w: session %s is %s's, not %s's: a player writes only their own data", ErrForbidden, c.ID, s.player, c.Player)
	}
	if s.kicked != "" {
		return fmt.Errorf("%w: session %s: %s", ErrSessionKicked, c.ID, s.kicked)
	}
	for _, it := range c.Data {
		if !w.rules.Schema.PlayerData.playerWritable(it.Key) {
			return fmt.Errorf("%w: data key %q is not player-writable in world %s (rules player_data.player_writable)", ErrForbidden, it.Key, w.id)
		}
	}
	return nil
}

// writeData merges c's data into the player's at leader time now, if the
// player's data version is the expected one (c.Seq; 0: any). Nothing
// changes on an error.
func (w *world) writeData(player string, c *SessionCmd, now int64) error {
	if c.Seq != 0 && c.Seq != w.dataVer[player] {
		return fmt.Errorf("%w: player %s has data version %d, not %d", ErrDataConflict, player, w.dataVer[player], c.Seq)
	}
	d, err := w.mergeData(player, c.Data)
	if err != nil {
		return err
	}
	if len(d) == 0 {
		d = nil // no data, as before any write
	}
	w.setData(player, d, now)
	return nil
}

// applyPlayer applies a command addressed by player: ban, unban, import,
// and a game server's data write.
func (w *world) applyPlayer(kind CmdKind, now int64, c *SessionCmd) Result {
	info := SessionInfo{World: w.id, Player: c.Player}
	switch kind {
	case CmdSessionBan:
		w.putBan(c.Player, c.Reason)
		if old := w.playerSession(c.Player); old != nil {
			s := *old
			s.kicked, s.seen = "banned: "+c.Reason, now
			w.putSession(&s)
			info = s.info(w)
		}
	case CmdSessionUnban:
		w.dropBan(c.Player)
	case CmdSessionImport:
		d := make(map[string]Value, len(c.Data))
		for _, it := range c.Data {
			if it.Value.Kind != KindNull {
				d[it.Key] = it.Value
			}
		}
		if len(d) == 0 {
			d = nil
		}
		w.setData(c.Player, d, now)
		info.Data = maps.Clone(w.data[c.Player])
		info.DataVersion = w.dataVer[c.Player]
	case CmdSessionData:
		if err := w.writeData(c.Player, c, now); err != nil {
			return Result{Err: err}
		}
		info.Data = maps.Clone(w.data[c.Player])
		info.DataVersion = w.dataVer[c.Player]
	}
	return Result{Session: &info}
}

// playerSession returns the player's session in w, if any. Sessions are few
// per world and opens are rare, so a scan is cheaper than an index to keep
// in snapshots; at most one session per player exists, so order is moot.
func (w *world) playerSession(player string) *session {
	for _, s := range w.sessions {
		if s.player == player {
			return s
		}
	}
	return nil
}

// Session returns one session of a world.
func (f *FSM) Session(worldID, id string) (SessionInfo, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	w := f.worlds[worldID]
	if w == nil {
		return SessionInfo{}, fmt.Errorf("%w: %s", ErrUnknownWorld, worldID)
	}
	s := w.sessions[id]
	if s == nil {
		return SessionInfo{}, fmt.Errorf("%w: %s in world %s", ErrSessionUnknown, id, worldID)
	}
	return s.info(w), nil
}

// Sessions returns a world's sessions, sorted by id.
func (f *FSM) Sessions(worldID string) ([]SessionInfo, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	w := f.worlds[worldID]
	if w == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownWorld, worldID)
	}
	out := make([]SessionInfo, 0, len(w.sessions))
	for _, id := range sortedKeys(w.sessions) {
		out = append(out, w.sessions[id].info(w))
	}
	return out, nil
}

// Banned reports whether player is banned from a world (false for a world
// that does not exist), and why.
func (f *FSM) Banned(worldID, player string) (string, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	w := f.worlds[worldID]
	if w == nil {
		return "", false
	}
	reason, ok := w.bans[player]
	return reason, ok
}

// Bans returns a world's banned players, sorted.
func (f *FSM) Bans(worldID string) ([]Ban, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	w := f.worlds[worldID]
	if w == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownWorld, worldID)
	}
	out := make([]Ban, 0, len(w.bans))
	for _, p := range sortedKeys(w.bans) {
		out = append(out, Ban{Player: p, Reason: w.bans[p]})
	}
	return out, nil
}

// PlayerData returns every player's critical data in a world (copies).
func (f *FSM) PlayerData(worldID string) (map[string]map[string]Value, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	w := f.worlds[worldID]
	if w == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownWorld, worldID)
	}
	out := make(map[string]map[string]Value, len(w.data))
	for p, m := range w.data {
		out[p] = maps.Clone(m)
	}
	return out, nil
}

// encoding (in batches and snapshots)

func (e *encoder) sessionCmd(c *SessionCmd) {
	e.str(c.World)
	e.str(c.ID)
	e.str(c.Player)
	e.b = append(e.b, c.TokenHash[:]...)
	e.uvarint(c.Seq)
	e.str(c.Reason)
	e.uvarint(uint64(len(c.Data)))
	for _, d := range c.Data {
		e.str(d.Key)
		e.value(d.Value)
	}
	e.str(c.Node)
}

func (d *decoder) tokenHash() (h [TokenHashLen]byte) {
	if len(d.b) < TokenHashLen {
		d.fail("truncated")
		return h
	}
	copy(h[:], d.b)
	d.b = d.b[TokenHashLen:]
	return h
}

// sessionCmd decodes a session command; v1 entries carry no node.
func (d *decoder) sessionCmd(v1 bool) *SessionCmd {
	c := &SessionCmd{World: d.str(), ID: d.str(), Player: d.str(), TokenHash: d.tokenHash(), Seq: d.uvarint(), Reason: d.str()}
	// A data item takes at least 2 bytes: an empty key and a null value.
	if n := d.count(2); n > 0 {
		c.Data = make([]DataItem, n)
		for i := range c.Data {
			c.Data[i] = DataItem{Key: d.str(), Value: d.value()}
		}
	}
	if !v1 {
		c.Node = d.str()
	}
	return c
}

// writeSessions writes a world's sessions, player data and (from version
// 3) bans, sorted, in snapshot format version.
func writeSessions(e *encoder, w *world, version byte) {
	e.uvarint(uint64(len(w.sessions)))
	for _, id := range sortedKeys(w.sessions) {
		s := w.sessions[id]
		e.str(s.id)
		e.str(s.player)
		e.b = append(e.b, s.tokenHash[:]...)
		e.uvarint(s.acked)
		e.uvarint(s.epoch)
		e.varint(s.opened)
		e.varint(s.seen)
		if version >= 3 {
			e.str(s.node)
			e.str(s.kicked)
		}
	}
	e.uvarint(uint64(len(w.data)))
	for _, p := range sortedKeys(w.data) {
		e.str(p)
		m := w.data[p]
		e.uvarint(uint64(len(m)))
		for _, k := range sortedKeys(m) {
			e.str(k)
			e.value(m[k])
		}
	}
	if version >= 3 {
		e.uvarint(uint64(len(w.bans)))
		for _, p := range sortedKeys(w.bans) {
			e.str(p)
			e.str(w.bans[p])
		}
	}
}

// readSessions reads what writeSessions wrote in format version into w.
func readSessions(d *decoder, w *world, version byte) {
	// A session takes at least 2+32+4 bytes.
	for i, n := 0, d.count(38); i < n && d.err == nil; i++ {
		s := &session{id: d.str(), player: d.str(), tokenHash: d.tokenHash(), acked: d.uvarint(), epoch: d.uvarint(), opened: d.varint(), seen: d.varint()}
		if version >= 3 {
			s.node, s.kicked = d.str(), d.str()
		}
		if w.playerSession(s.player) != nil {
			d.fail("two sessions of player %s", s.player)
		}
		w.sessions[s.id] = s
	}
	for i, n := 0, d.count(2); i < n && d.err == nil; i++ {
		p := d.str()
		m := make(map[string]Value)
		for j, k := 0, d.count(2); j < k && d.err == nil; j++ {
			m[d.str()] = d.value()
		}
		w.data[p] = m
	}
	if version >= 3 {
		for i, n := 0, d.count(2); i < n && d.err == nil; i++ {
			p := d.str()
			w.bans[p] = d.str()
		}
	}
}
