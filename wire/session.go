package wire

// SessionInfo is a player's session as it travels: forwarded session
// commands' answers, presence, kick (docs/API.md, "Sessions"). The resume
// token's hash never leaves the node.
type SessionInfo struct {
	World  string `json:"world"`
	ID     string `json:"id,omitempty"`
	Player string `json:"player"`
	// Acked is the last world event seq the player acknowledged.
	Acked uint64 `json:"acked"`
	// Epoch counts the session's resumes.
	Epoch uint64 `json:"epoch"`
	// Node holds the session's connection (as of its last open or resume).
	Node string `json:"node,omitempty"`
	// Opened and Seen are leader times (unix ns).
	Opened int64 `json:"opened,omitempty"`
	Seen   int64 `json:"seen,omitempty"`
	// Replaced is, on open, the id of the player's previous session in
	// the world, which the open closed ("" if none).
	Replaced string `json:"replaced,omitempty"`
	// Kicked is why an admin kicked the session ("" if not).
	Kicked string           `json:"kicked,omitempty"`
	Data   map[string]Value `json:"data,omitempty"`
	// DataVersion rises with every change of the player's data in the
	// world (0: none since the node restored an older snapshot, or never).
	DataVersion uint64 `json:"data_version,omitempty"`
}

// Presence answers GET /v1/worlds/{world}/sessions.
type Presence struct {
	World    string        `json:"world"`
	Sessions []SessionInfo `json:"sessions"`
}

// SessionCmd is the body of the node-internal
// POST /internal/v1/worlds/{world}/sessions/{op}: a session command a node
// sends to its world's leader.
type SessionCmd struct {
	ID        string `json:"id"`
	Player    string `json:"player,omitempty"`
	TokenHash string `json:"token_hash,omitempty"` // hex sha256 of the resume token
	Seq       uint64 `json:"seq,omitempty"`
	Reason    string `json:"reason,omitempty"`
	Node      string `json:"node,omitempty"`
	// Data is a data command's keys (a null value deletes its key).
	Data map[string]Value `json:"data,omitempty"`
}

// Ack is one session's ack on the node-internal acks endpoint: the last
// event seq of World the session's client processed.
type Ack struct {
	World string `json:"world"`
	ID    string `json:"id"`
	Seq   uint64 `json:"seq"`
}

// Acks is the body of the node-internal POST /internal/v1/sessions:acks.
type Acks struct {
	Acks []Ack `json:"acks"`
}

// AcksAnswer answers it: how many acks applied (the others named sessions
// that no longer exist).
type AcksAnswer struct {
	Acked int `json:"acked"`
}

// Ban is one banned player of a world and why; also the body of a ban and
// (reason only) of a kick.
type Ban struct {
	Player string `json:"player,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Bans answers GET /v1/worlds/{world}/bans.
type Bans struct {
	World string `json:"world"`
	Bans  []Ban  `json:"bans"`
}

// PlayerDataFormat is the format name of a PlayerDataFile; an import
// accepts it or none.
const PlayerDataFormat = "gsd.players.v1"

// PlayerDataFile is the export and import format of one world's players'
// critical data (docs/API.md): the players, sorted, each with their data.
type PlayerDataFile struct {
	Format  string             `json:"format"`
	World   string             `json:"world"`
	Players []PlayerDataRecord `json:"players"`
}

// PlayerDataRecord is one player's critical data in a PlayerDataFile.
type PlayerDataRecord struct {
	Player string           `json:"player"`
	Data   map[string]Value `json:"data"`
	// DataVersion is the data's version in the exporting world
	// (Session.DataVersion); absent in files exported before versions,
	// which import as before.
	DataVersion uint64 `json:"data_version,omitempty"`
}

// ImportAnswer answers an import: how many players it imported.
type ImportAnswer struct {
	World    string `json:"world"`
	Imported int    `json:"imported"`
	// Behind lists the players whose data version after the import is
	// below the file's (the exporting cluster's clock ran ahead of this
	// one's): a mirror holding the file's version keeps its copy until
	// the player's data changes again.
	Behind []string `json:"behind,omitempty"`
}
