// Package files exports committed events of worlds into rotating gzip
// NDJSON files, one line per event (docs/EVENTS.md), for analytics
// pipelines that load files.
//
// Place in the flow: like sink/pg and sink/webhook it reads the store's
// committed feed (a Source) on the node that leads the world's group and
// never touches Apply, the edge or the FSM's state.
//
// Files and the checkpoint: a world's events go to a hidden file
// ".open.<world>.<first>.ndjson.gz" in Config.Dir. When it reaches
// Config.MaxBytes (uncompressed) or Config.MaxAge, or the sink stops, the
// gzip stream is closed, the file synced and renamed to
// "<world>.<incarnation>.<first>-<last>.ndjson.gz" (numbers zero-padded
// to 20 digits, so one incarnation's names sort in seq order; see Name)
// and the directory synced. Finished files are the checkpoint: on start
// the sink resumes after the highest last seq of the finished files of
// the world's incarnation it holds (from seq 1 for a world deleted and
// created again) and deletes any open file a crash left behind, whose
// events it then writes again. The loop per world is sink/feed's
// Follower; this package is its Target. So a crash neither loses
// nor duplicates an event across finished files on one node; readers
// load only finished files (names not starting with ".").
//
// Leadership: only the leader of a world's group writes it, into its own
// Config.Dir. After a failover the new leader resumes from the files in
// its own directory, or after the old leader's last finished file when
// positions are replicated (Config.Positions); if several nodes share one directory, a file the old
// leader finished while the new one started can overlap the new one's
// first file: duplicates then lie only within that one leadership
// change, and readers de-duplicate by (world, seq).
//
// World names are escaped in file names: every byte outside A-Z, a-z,
// 0-9, '_' and '-' is written as %XX.
package files
