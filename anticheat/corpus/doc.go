// Package corpus makes a labelled corpus of committed events for the
// anti-cheat detectors (anticheat/detect): honest players of four skill
// levels and cheaters of five kinds (aimbot, speed hack within the limits,
// bot ring in lock-step, win-trading pair, resource funnel), playing in
// one arena world, deterministic by seed.
//
// The arena is the corpus's own game, written as the events its declared
// actions would commit (docs/ANTICHEAT.md): a move sets the player's x, y
// and moved_at (500 units/s, 10 of slack, 300 per move at most, as the
// anticheat.Speed check would allow); the server spawns a target (field
// spawned) and the player fires at it (shot_at on the shooter; a hit also
// takes hp from the target); the server records a duel's result (wins and
// losses); a gift moves an item between two players' items sets.
//
// Every player plays one session (a minute by default); Concurrent of
// them play at once, so a corpus of many players is a long day of a busy
// server, not a crowd in one instant.With Params.Sessions above 1
// every player plays several sessions, one per round of such a day, each
// round in its own world (S and G). Generate emits the events in leader
// time order, numbered from seq 1, and returns each player's label.
// Players' ids say nothing of their label.
//
// Params A and B differ in seed and in the cheaters' parameters:
// detectors' thresholds are fixed on A and measured on B.
package corpus
