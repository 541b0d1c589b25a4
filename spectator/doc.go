// Package spectator turns a world's committed events into what each kind
// of watcher may see, late and cheaply (issue 13).
//
// Its place in the flow: the store commits events and keeps each world's
// feed; fanout hands the feed to many readers at the cost of one; the edge
// (api) will serve watchers. This package sits between: it reads a
// world's feed once per delay through the same seam the fan-out reads
// (fanout.SubscribeFunc), and makes frames per view, never per viewer.
//
//   - Access compiles a world's visibility rules (rules keys
//     fields.<name>.visible and .delay, teams, viewers) and resolves a
//     Viewer (class, player, team, asked delay) to a View and its delay.
//     Views are the sharing key: viewers with equal views get the same
//     frames, encoded once.
//   - Filter cuts an event down to what a view may see: values, set
//     elements, per-field versions, conflict payloads, and the version a
//     delete carries (its entity's last, which may be a hidden field's).
//     Hidden means hidden everywhere. Events prepares a world's events
//     once for many readers at different positions and gives a view's
//     fan-out encoder (fanout.Encoder): what the NDJSON event streams
//     need.
//   - Delay holds events until they are old enough in the leader's time,
//     with a stated clock-skew bound; everything downstream (state,
//     keyframes, deltas) is built only from released events, so a delay
//     cannot leak through a keyframe.
//   - State is a world's entities kept from the feed (or seeded from a
//     read of the store), Ticker coalesces a tick's events into per-view
//     deltas (each touched field's latest state), and Keyframe is the
//     state a view may see at a seq.
//   - Pipeline ties them together for one world and one delay: a reader of
//     the feed, a loop that steps once per tick, views with their join
//     keyframe and the deltas since (or, for JoinEvents, the filtered
//     events since), and viewers that skip to a keyframe when they fall
//     behind. Hub runs a pipeline per world and delay, by viewer count:
//     what a watch endpoint calls.
//   - Replay reads a world's archive forward: the keyframe at a seq or
//     time, then deltas as the caller advances leader time (N× speed).
//   - Access.Entity cuts an entity read to what a view may see: the HTTP
//     entity reads.
//
// The edge applies these on every read path (event streams, play streams,
// HTTP reads, the watch stream), so fsm accepts the visibility rules keys
// (visible, delay, teams from a field or session data, viewers, interest);
// see docs/ARCHITECTURE.md.
//
// spectator never imports api.
package spectator
