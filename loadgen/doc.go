// Package loadgen drives gsd with simulated players through the public
// client: the battle that `make demo` shows, and (later) the scenarios of
// `gsdctl bench`. Bots move (bulk), attack (counter increments), pick up
// and drop items (optimistic concurrency: many bots race for one item) and
// trade (set adds), each with its own seq, retrying unknown outcomes with
// the same seq as every real client must.
package loadgen
