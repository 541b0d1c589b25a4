// Package relay serves a world's watch and event streams away from the
// voters (issue 13): a relay follows one upstream (a gsd node, or another
// relay) per world over the upstream's filtered NDJSON event stream
// (GET /v1/worlds/{w}/events?from=SEQ&view=CLASS&compress=gzip&form=lean:
// gzipped and lean where the upstream offers them, plain whole lines
// otherwise; lean lines are rebuilt whole, wire.LeanEvent), resumes it by seq after
// a drop, and serves GET /v1/worlds/{w}/watch and GET /v1/worlds/{w}/events
// to its own viewers through the spectator package's hub and pipelines, so
// a viewer cannot tell a relay from a node.
//
// What a relay receives is already cut to its view by the upstream: its
// token's role names the viewer class it may see, and the upstream applies
// that class's visibility rules and delay before any byte leaves it. The
// relay never holds a hidden field or an event younger than the class's
// delay; a viewer's larger delay= is applied by the relay on top.
//
// The flow: upstream NDJSON → follow (one per world: the events received,
// in seq order, held in memory up to Config.MaxEvents) → the relay's
// spectator.Hub (one pipeline per world and delay) → viewers. The events
// route serves the follow's lines as received (decoded, lean ones rebuilt
// whole), byte for byte, and in a node's forms (compress=gzip, form=lean:
// spectator.ParseEventForm; lean lines cut from the held whole ones), so
// a relay of a relay reads its upstream relay gzipped and lean. A change
// of the world's rules ends the follow (what it holds was cut under the
// old rules); the next viewer follows the world anew.
//
// With the cluster's audit keys (Config.AuditKeys) a relay verifies what
// it receives: the upstream's signed checkpoints (signed, of the world,
// append-only: verify.go) and, when its events are whole, the events
// against the signed tree's leaves (leaves.go); either failing drops the
// upstream.
package relay
