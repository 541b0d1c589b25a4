package fsm

import (
	"fmt"
	"maps"
)

// Player data versions. Every change to a player's critical data in a world
// (CmdSessionData, CmdSessionImport that changes it) raises that player's
// data version there, so a mirror outside the cluster (sink/pg) can keep
// the newest copy of each player's data idempotently: player data does not
// advance the world's seq, so the seq cannot order it.
//
// The new version is max(old+1, the batch's leader time in unix ns): it
// rises with every change on every replica alike, and it keeps rising
// where a counter would start over. A world imported from another group
// in export format 1 (migrate.go; it carries no versions: a move towards
// a group with a voter below log 15) gives each player with data the
// import's leader time, which is later than every change made on the old
// group while the groups' clocks agree; format 2 (a salted world's, and
// any world's moving to a log 15 group) carries them and keeps them, so
// an expected version read before the move still holds; a replica
// restored from a snapshot older than format 8 holds version 0 for the
// data it restored until the next change, which then gets the same
// version everywhere. A format 2 export from such a replica carries that
// 0 and the new home keeps it, so the export's bytes differ from another
// replica's there (the world does not), and an expected version read
// from another replica answers data_conflict once, as after format 1.
//
// A version stays when the data is emptied, so a re-filled player's data
// never goes back to a version a mirror already holds. Versions are not in
// the state hash: the data they describe is, and replicas restored from
// older snapshots may hold 0 where the others hold a version for equal
// data (the case above), which is no divergence of the world.

// PlayerRecord is one player's critical data in a world and its version.
type PlayerRecord struct {
	Player string
	// Version rises with each change of Data (see above); 0: the data
	// was restored from an older snapshot and has not changed since.
	Version uint64
	// Data is a copy; empty once every key was deleted.
	Data map[string]Value
}

// PlayerRecords returns every player of a world that has critical data or
// had some, sorted by player.
func (f *FSM) PlayerRecords(worldID string) ([]PlayerRecord, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	w := f.worlds[worldID]
	if w == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownWorld, worldID)
	}
	players := make(map[string]struct{}, len(w.dataVer)+len(w.data))
	for p := range w.dataVer {
		players[p] = struct{}{}
	}
	for p := range w.data {
		players[p] = struct{}{}
	}
	out := make([]PlayerRecord, 0, len(players))
	for _, p := range sortedKeys(players) {
		out = append(out, PlayerRecord{Player: p, Version: w.dataVer[p], Data: maps.Clone(w.data[p])})
	}
	return out, nil
}

// PlayerDataStamp returns a number that changes with every change of a
// player's data in a world (the wrapping sum of the players' data
// versions: each change raises one of them), so that a poller reads
// PlayerRecords only after a change.
func (f *FSM) PlayerDataStamp(worldID string) (uint64, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	w := f.worlds[worldID]
	if w == nil {
		return 0, fmt.Errorf("%w: %s", ErrUnknownWorld, worldID)
	}
	return w.dataSum, nil
}

// setData makes m the player's data (none when m is nil) at leader time
// now, raising the player's data version when the data changes.
func (w *world) setData(player string, m map[string]Value, now int64) {
	changed := !maps.Equal(w.data[player], m)
	w.putData(player, m)
	if changed {
		w.putDataVersion(player, nextDataVersion(w.dataVer[player], now))
	}
}

// nextDataVersion returns the version after old for a change at leader
// time now.
func nextDataVersion(old uint64, now int64) uint64 {
	return max(old+1, uint64(max(now, 0)))
}

// stampImported gives each player with data in an imported world the
// import's leader time as its version (an export of format 1 carries
// none).
func (w *world) stampImported(now int64) {
	for p := range w.data {
		w.putDataVersion(p, nextDataVersion(w.dataVer[p], now))
	}
}

// putDataVersion sets a player's data version and keeps dataSum.
func (w *world) putDataVersion(player string, v uint64) {
	w.dataSum += v - w.dataVer[player]
	w.dataVer[player] = v
}

// writeDataVersions writes a world's data versions, sorted (format 8).
func writeDataVersions(e *encoder, w *world) {
	e.uvarint(uint64(len(w.dataVer)))
	for _, p := range sortedKeys(w.dataVer) {
		e.str(p)
		e.uvarint(w.dataVer[p])
	}
}

func readDataVersions(d *decoder, w *world) {
	// A version takes at least 2 bytes: an empty name and a varint.
	for i, n := 0, d.count(2); i < n && d.err == nil; i++ {
		p := d.str()
		w.putDataVersion(p, d.uvarint())
	}
}
