package wire

import "encoding/json"

// The play protocol (docs/PROTOCOL.md): a WebSocket per player and world,
// in one of two subprotocols with the same messages: JSON text messages,
// or the same keys as MessagePack maps in binary messages (msgpack.go).

// SubprotocolJSON is the WebSocket subprotocol of the JSON play protocol.
const SubprotocolJSON = "gsd.json.v1"

// The types of play messages (the "type" key of every message).
const (
	// Client to server.
	TypeHello  = "hello"
	TypeResume = "resume"
	TypeAction = "action"
	TypeAck    = "ack"
	TypeBye    = "bye"
	// TypeData, either way: a player's write of their own data, and its
	// answer (DataAnswer).
	TypeData = "data"
	// Server to client.
	TypeWelcome  = "welcome"
	TypeEvents   = "events"
	TypeDelta    = "delta"
	TypeResult   = "result"
	TypeError    = "error"
	TypeTransfer = "transfer"
	// TypeEnter: entities that came into a connection's area of interest,
	// whole (a Keyframe of those entities only).
	TypeEnter = "enter"
	// TypeLeave: entities that left a connection's area of interest.
	TypeLeave = "leave"
	// Either way: a ping is answered with a pong carrying its t.
	TypePing = "ping"
	TypePong = "pong"
)

// ClientMsg is any message a client sends; Type says which fields count.
type ClientMsg struct {
	Type        string `json:"type"`
	Token       string `json:"token,omitempty"`
	Player      string `json:"player,omitempty"`
	Session     string `json:"session,omitempty"`
	ResumeToken string `json:"resume_token,omitempty"`
	LastSeq     uint64 `json:"last_seq,omitempty"`
	Ticket      string `json:"ticket,omitempty"` // resume after a transfer
	// Keyframe asks hello or resume for the world's state the player may
	// see, in a keyframe message right after the welcome.
	Keyframe bool            `json:"keyframe,omitempty"`
	Seq      uint64          `json:"seq,omitempty"`
	T        int64           `json:"t,omitempty"`
	Action   json.RawMessage `json:"action,omitempty"`
	// Data is a data message's keys (a null value deletes its key) and
	// ExpectVersion its optional expected data version.
	Data          map[string]Value `json:"data,omitempty"`
	ExpectVersion uint64           `json:"expect_version,omitempty"`
}

// DataAnswer answers a data message, with the client's Seq (its own
// sequence, apart from actions' seqs): applied, the player's data after
// the write (absent: none) and its version; refused, the error as HTTP
// would answer it (Status, Code, Error), and nothing changed.
type DataAnswer struct {
	Type        string           `json:"type"`
	Seq         uint64           `json:"seq"`
	Data        map[string]Value `json:"data,omitempty"`
	DataVersion uint64           `json:"data_version,omitempty"`
	Status      int              `json:"status,omitempty"`
	Code        string           `json:"code,omitempty"`
	Error       string           `json:"error,omitempty"`
}

// Welcome answers hello and resume.
type Welcome struct {
	Type        string           `json:"type"`
	Session     string           `json:"session"`
	ResumeToken string           `json:"resume_token,omitempty"`
	World       string           `json:"world"`
	Player      string           `json:"player"`
	Seq         uint64           `json:"seq"`
	Epoch       uint64           `json:"epoch"`
	Data        map[string]Value `json:"data,omitempty"`
	UDP         *UDPInfo         `json:"udp,omitempty"`
	Nodes       []string         `json:"nodes,omitempty"` // the other nodes' HTTP URLs
	// Incarnation is the world's (wire.World): a client that held an
	// earlier one must drop what it knew of the world.
	Incarnation uint64 `json:"incarnation,omitempty"`
}

// UDPInfo is the welcome's udp object: where to send UDP input, and the
// connection's key.
type UDPInfo struct {
	Addr  string `json:"addr"`
	KeyID string `json:"key_id"` // base64 (standard, padded) of 8 bytes
	Key   string `json:"key"`    // base64 (standard, padded) of 32 bytes
}

// Events is the events frame: the events in seq order, From the first
// seq it covers and Seq the last (the client acks and resumes from it).
type Events struct {
	Type   string  `json:"type"`
	From   uint64  `json:"from"`
	Seq    uint64  `json:"seq"`
	Events []Event `json:"events"`
}

// DeltaEntity is one entity of a delta frame: coalesced bulk changes,
// each field's latest value and version, and the entity's last version
// when it was deleted.
type DeltaEntity struct {
	Deleted uint64                `json:"deleted"`
	Fields  map[string]DeltaField `json:"fields"`
}

// DeltaField is one field's latest value in a delta frame.
type DeltaField struct {
	Value   Value  `json:"value"`
	Version uint64 `json:"version"`
}

// Result answers an action sent over the play connection: its event, or
// an error (Status, Code, Error) as HTTP would answer it.
type Result struct {
	Type  string `json:"type"`
	Seq   uint64 `json:"seq"`
	Event *Event `json:"event,omitempty"`
	// error answers
	Status int    `json:"status,omitempty"`
	Code   string `json:"code,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Ping is a ping, or a pong answering one: T is the pinger's time, and a
// server's pong says its own time too.
type Ping struct {
	Type       string `json:"type"`
	T          int64  `json:"t"`
	ServerTime int64  `json:"server_time,omitempty"`
}

// Transfer tells a play client to resume on another node (a drain).
type Transfer struct {
	Type   string `json:"type"`
	To     string `json:"to"`
	Node   string `json:"node"`
	Ticket string `json:"ticket,omitempty"`
}

// ServerMsg is any message a server sends, as a client decodes it before
// it knows the type: the union of Welcome, Events, the delta frame,
// Result, the error message, Ping and Transfer.
type ServerMsg struct {
	Type        string                 `json:"type"`
	Session     string                 `json:"session"`
	ResumeToken string                 `json:"resume_token"`
	Seq         uint64                 `json:"seq"`
	From        uint64                 `json:"from"`
	Tick        uint64                 `json:"tick"`
	Entities    map[string]DeltaEntity `json:"entities"`
	Data        map[string]Value       `json:"data"`
	Events      []Event                `json:"events"`
	Event       *Event                 `json:"event"`
	Status      int                    `json:"status"`
	Code        string                 `json:"code"`
	Error       string                 `json:"error"`
	T           int64                  `json:"t"`
	ServerTime  int64                  `json:"server_time"`
	UDP         *UDPInfo               `json:"udp"`
	To          string                 `json:"to"`
	Ticket      string                 `json:"ticket"`
	Nodes       []string               `json:"nodes"`
	Incarnation uint64                 `json:"incarnation"`
	DataVersion uint64                 `json:"data_version"`
}

// Leave is a "leave" message: the ids (sorted) of the entities that left
// a connection's area of interest, as the node's interest index had them
// after the world's event Seq. Like "enter" it covers no seq. The key is
// "ids", not "entities": every other message's "entities" is an object,
// which clients from before leave messages decode it as.
type Leave struct {
	Type  string   `json:"type"`
	World string   `json:"world"`
	Seq   uint64   `json:"seq"`
	IDs   []string `json:"ids"`
}
