// Package wire holds every type that crosses a process boundary, defined
// once for the server (api, store) and the Go client (client/, and through
// it loadgen, jepsen-style, examples and gsdctl): HTTP JSON bodies
// (action.go, world.go, cluster.go, session.go), events as clients see
// them (event.go), the play protocol's messages (play.go), the UDP input
// packet codec (udp.go), the MessagePack encoding of the binary play
// subprotocol (msgpack.go), the error codes of answers (errors.go), and
// the signed transfer ticket (ticket.go). Signed envelopes and spectator
// frames will live here too, so there is one canonical encoding of what
// gets signed.
//
// api/decode.go keeps small private mirrors of the action and rules bodies
// whose only job is to refuse unknown keys before these types decode them
// (their names appear in the error answers, so they stay as they were).
//
// wire is a leaf: it imports the standard library and codec libraries
// (msgpack) only, never a gsd package.
//
// What does not belong here: the binary Raft log entry and snapshot codec
// (fsm/codec.go, fsm/snapshot.go) is the state machine's own format, read
// only by replicas of the same group, and stays in fsm; the state
// machine's domain types (Action, Event, Rules, SessionInfo) stay in fsm
// and convert to their wire forms at the edge (Event.Wire, Rules.Wire).
//
// Values and ops: Value, Kind, Op, OpKind, Expect, ExpectMode and Priority
// are both what clients send and what the state machine applies. They are
// declared here, and fsm refers to them with type aliases (fsm.Value is
// wire.Value), so a decoded op goes into a log entry and through Apply
// without a conversion: Apply's hot path allocates nothing for them, and
// their JSON, msgpack and log bytes are the ones they were. The other
// choice, fsm keeping its own types with conversions at the edge, would
// copy every op of every action at the HTTP, play and UDP surfaces and keep
// two declarations of one scalar in step. The rules fsm adds on top
// (coercion into a field's type, policies, validation of an action) stay
// in fsm. Events are the other way round: fsm.Event is the state machine's
// record (a numeric status, the raw changes), and wire.Event is what
// clients read (names, versions by entity), made once per event by
// fsm.Event.Wire outside Apply (the edge caches its encodings).
package wire
