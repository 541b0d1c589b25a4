package wire

import "encoding/json"

// The watch stream (issue 13): what a spectator receives, as the
// spectator package makes it. Each frame is made and encoded once per view
// (a viewer class, or a team's or player's view), never per viewer. A
// viewer starts with a keyframe (the state its view may see at a seq),
// then deltas; keyframes come again at an interval, so a slow or late
// viewer skips to the next one instead of replaying. The watch endpoint
// that carries these frames is not built yet.

// The types of watch frames (the "type" key of every frame).
const (
	TypeKeyframe   = "keyframe"
	TypeWatchDelta = "delta"
	TypeView       = "view"
)

// WatchField is one field as a view sees it: its value (a counter's
// total) or, for set fields, its elements sorted, and its version (the
// seq of its last change).
type WatchField struct {
	Value   *Value  `json:"value,omitempty"`
	Set     []Value `json:"set,omitempty"`
	IsSet   bool    `json:"is_set,omitempty"`
	Version uint64  `json:"version"`
}

// WatchEntity is one entity of a keyframe or delta: the fields the view
// may see. Version is the largest of those fields' versions (never a
// version of a field the view may not see). In a delta, Replace says the
// fields listed are all the view sees of the entity now (drop the others:
// the entity moved out of the view's sight, e.g. changed team), and
// Deleted that the entity is gone (Fields is then empty).
type WatchEntity struct {
	Version uint64                `json:"version"`
	Replace bool                  `json:"replace,omitempty"`
	Deleted bool                  `json:"deleted,omitempty"`
	Fields  map[string]WatchField `json:"fields,omitempty"`
}

// Keyframe is the state of a world a view may see after the event with
// seq Seq, whose leader time is Time (unix nanoseconds).
//
// Checkpoint, when the node keeps the world's audit log and signs it, is
// the newest signed audit checkpoint (a note: anticheat/audit) of a tree
// of at most Seq events, never a newer one (it would tell a delayed view
// how many events came since). A viewer checks later events' inclusion
// proofs and later checkpoints' consistency against it. It is only sent
// to views that may see every field (docs/ANTICHEAT.md, "Checkpoints in
// keyframes").
type Keyframe struct {
	Type     string                 `json:"type"`
	World    string                 `json:"world"`
	Seq      uint64                 `json:"seq"`
	Time     int64                  `json:"time"`
	Entities map[string]WatchEntity `json:"entities"`
	// Whole marks an "enter" message (play, issue 11) that carries the
	// connection's whole area of interest: every entity it is interested
	// in now; the client drops what it holds that is not listed.
	Whole bool `json:"whole,omitempty"`
	// Checkpoint: see above (keyframes only).
	Checkpoint string `json:"checkpoint,omitempty"`
}

// WatchDelta is what changed in a view over the events From..Seq (one
// tick), coalesced: each touched field's latest state. Time is the leader
// time of event Seq. Events that changed nothing the view may see make no
// delta.
type WatchDelta struct {
	Type     string                 `json:"type"`
	World    string                 `json:"world"`
	From     uint64                 `json:"from"`
	Seq      uint64                 `json:"seq"`
	Time     int64                  `json:"time"`
	Entities map[string]WatchEntity `json:"entities"`
}

// ViewFrame is an aggregated view after event Seq: for a scoreboard, per
// group (a team, a player, a heatmap's grid cell "cx,cy", or "" for the
// whole world) the aggregate, no groups when it has none; for a feed, its
// latest items, oldest first.
type ViewFrame struct {
	Type   string           `json:"type"`
	World  string           `json:"world"`
	Name   string           `json:"name"`
	Kind   string           `json:"kind"`
	Seq    uint64           `json:"seq"`
	Groups map[string]Value `json:"groups,omitempty"`
	Feed   []FeedItem       `json:"feed,omitempty"`
}

// Views answers GET /v1/worlds/{w}/views: the aggregated views the
// caller's view may see, by name, as of event Seq (each ViewFrame's Seq
// is that seq too).
type Views struct {
	World string               `json:"world"`
	Seq   uint64               `json:"seq"`
	Views map[string]ViewFrame `json:"views"`
	// Rules, asked with rules=true, are the world's rules a relay of the
	// caller's view makes these views with (spectator.ViewRules: the
	// views the view may see whole, and the grid and team field they
	// need; a rules object as world creation takes it).
	Rules json.RawMessage `json:"rules,omitempty"`
}

// FeedItem is one change of a feed view's field (a kill feed's kill): the
// event's seq, the player who acted, the entity and the field's value
// after it (for a set field, the element added or removed).
type FeedItem struct {
	Seq    uint64 `json:"seq"`
	Player string `json:"player"`
	Entity string `json:"entity"`
	Value  Value  `json:"value"`
}

// SubprotocolWatchDeflate is the watch stream's compressed WebSocket
// subprotocol: each frame a binary message holding the raw DEFLATE
// (RFC 1951) of its JSON form, compressed once per frame for all its
// viewers (permessage-deflate would compress it again per connection).
const SubprotocolWatchDeflate = "gsd.watch.deflate.v1"
