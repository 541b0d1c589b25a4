package wire

// PathRelays is the relay registry's admin root (docs/PROTOCOL.md,
// "Relays"); a world's relays are at /v1/worlds/{world}/relays.
const PathRelays = "/v1/relays"

// Relay is a relay's record in the registry (POST /v1/relays puts one;
// the lists answer them).
type Relay struct {
	ID     string `json:"id"`
	URL    string `json:"url"`
	Region string `json:"region,omitempty"`
	// Worlds are the worlds it serves; none: every world.
	Worlds []string `json:"worlds,omitempty"`
	// Capacity is the viewers it takes (0: not said); Viewers those it
	// serves, as it last said.
	Capacity int `json:"capacity,omitempty"`
	Viewers  int `json:"viewers"`
	// Live, in a put, marks a relay registering itself: the record takes
	// the node's time as its heartbeat and goes stale without another
	// put (an operator's record never does).
	Live bool `json:"live,omitempty"`
	// HeartbeatMs is the unix time (ms) of a live relay's last put; Stale
	// says it is older than the registry's stale time. Answers only.
	HeartbeatMs int64 `json:"heartbeat_ms,omitempty"`
	Stale       bool  `json:"stale,omitempty"`
}

// RelayList answers GET /v1/relays (every relay, by id) and
// GET /v1/worlds/{world}/relays (those to use, least loaded first).
type RelayList struct {
	Relays []Relay `json:"relays"`
}
