package fsm

import (
	"fmt"
	"github.com/gsd-dev/gsd/internal/golden"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// The log-entry, event-archive and idempotency-hash bytes, one golden file
// per command kind. The refactor retargets only these helpers.

// goldenEncodeBatch is the log entry of a batch.
func goldenEncodeBatch(b *Batch) []byte { return EncodeBatch(b) }

// goldenDecodeBatch decodes a log entry.
func goldenDecodeBatch(p []byte) (*Batch, error) { return DecodeBatch(p) }

// goldenEncodeEvent is an event's record in the event archive.
func goldenEncodeEvent(ev *Event) []byte { return EncodeEvent(ev) }

// goldenDecodeEvent decodes an event archive record.
func goldenDecodeEvent(p []byte) (*Event, error) { return DecodeEvent(p) }

// goldenPayloadHash is the idempotency payload hash Apply records for an action.
func goldenPayloadHash(a *Action) uint64 { return xxhash.Sum64(EncodeAction(a)) }

// goldenBatchTime is the leader time of every golden batch.
const goldenBatchTime int64 = 1_700_000_000_123_456_789

// goldenToken is a fixed resume-token hash.
func goldenToken() (h [TokenHashLen]byte) {
	for i := range h {
		h[i] = byte(i*7 + 1)
	}
	return h
}

// goldenAction carries every op kind, every value kind, every expect mode,
// a negative incr, an input time and the bulk priority.
func goldenAction() *Action {
	return &Action{World: "w1", Player: "alice", Seq: 300, InputTime: 1_700_000_000_100_000_000, Priority: PriorityBulk, Ops: []Op{
		{Kind: OpSet, Entity: "hero", Field: "name", Value: String("Ærwyn \"the\" brave"), Expect: Expect{Mode: ExpectAbsent}},
		{Kind: OpSet, Entity: "hero", Field: "x", Value: Float(-12.375), Expect: Expect{Mode: ExpectVersion, Version: 41}},
		{Kind: OpSet, Entity: "hero", Field: "alive", Value: Bool(true)},
		{Kind: OpSet, Entity: "hero", Field: "dead", Value: Bool(false)},
		{Kind: OpSet, Entity: "hero", Field: "level", Value: Int(-9_000_000_000)},
		{Kind: OpIncr, Entity: "hero", Field: "hp", By: -17},
		{Kind: OpIncr, Entity: "hero", Field: "gold", By: 1 << 40},
		{Kind: OpAdd, Entity: "hero", Field: "tags", Value: String("red")},
		{Kind: OpAdd, Entity: "hero", Field: "nums", Value: Int(7)},
		{Kind: OpRemove, Entity: "hero", Field: "tags", Value: String("blue"), Expect: Expect{Mode: ExpectVersion, Version: 3}},
		{Kind: OpDelete, Entity: "chest", Expect: Expect{Mode: ExpectVersion, Version: 12}},
	}}
}

// goldenRules has every policy, every type, strict and fairness.
func goldenRules() Rules {
	return Rules{Strict: true, Fair: Fairness{Window: 30 * time.Millisecond, MaxLag: 150 * time.Millisecond}, Fields: map[string]FieldRule{
		"name":  {Type: KindString, Policy: PolicyAuthoritative},
		"alive": {Type: KindBool, Policy: PolicyAuthoritative},
		"hp":    {Type: KindInt, Policy: PolicyCounter},
		"tags":  {Type: KindString, Policy: PolicySet},
		"best":  {Type: KindFloat, Policy: PolicyMax},
		"worst": {Type: KindInt, Policy: PolicyMin},
	}}
}

func goldenSession(kind CmdKind, c SessionCmd) Command {
	c.World = "w1"
	return Command{Kind: kind, Session: &c}
}

// goldenBatches names one batch per command kind (and variants).
func goldenBatches() []struct {
	name string
	cmds []Command
} {
	return []struct {
		name string
		cmds []Command
	}{
		{"action_all_ops", []Command{{Kind: CmdAction, Action: goldenAction()}}},
		{"action_minimal", []Command{{Kind: CmdAction, Action: &Action{World: "w1", Player: "bob", Seq: 1, Ops: []Op{{Kind: OpIncr, Entity: "e", Field: "n", By: 1}}}}}},
		{"create_world_rules", []Command{{Kind: CmdCreateWorld, World: &WorldSpec{ID: "w1", Origin: "eu-west", Rules: goldenRules()}}}},
		{"create_world_empty", []Command{{Kind: CmdCreateWorld, World: &WorldSpec{ID: "w2", Origin: "us-east"}}}},
		{"create_world_loose_fields", []Command{{Kind: CmdCreateWorld, World: &WorldSpec{ID: "w3", Origin: "ap", Rules: Rules{Fields: map[string]FieldRule{"hp": {Type: KindInt, Policy: PolicyCounter}}}}}}},
		{"put_node", []Command{{Kind: CmdPutNode, Node: &NodeInfo{ID: "n1", RaftAddr: "10.0.0.1:7000", HTTPAddr: "10.0.0.1:8080", Region: "eu-west"}}}},
		{"remove_node", []Command{{Kind: CmdRemoveNode, Node: &NodeInfo{ID: "n1"}}}},
		{"session_open", []Command{goldenSession(CmdSessionOpen, SessionCmd{ID: "s-1", Player: "alice", TokenHash: goldenToken(), Node: "n2"})}},
		{"session_ack", []Command{goldenSession(CmdSessionAck, SessionCmd{ID: "s-1", Seq: 1234})}},
		{"session_resume", []Command{goldenSession(CmdSessionResume, SessionCmd{ID: "s-1", Player: "alice", TokenHash: goldenToken(), Seq: 99, Node: "n3"})}},
		{"session_close", []Command{goldenSession(CmdSessionClose, SessionCmd{ID: "s-1", Reason: "bye"})}},
		{"session_data", []Command{goldenSession(CmdSessionData, SessionCmd{ID: "s-1", Data: []DataItem{
			{Key: "coins", Value: Int(250)}, {Key: "title", Value: String("Sir")}, {Key: "ratio", Value: Float(0.5)},
			{Key: "vip", Value: Bool(true)}, {Key: "old", Value: Value{}},
		}})}},
		{"session_kick", []Command{goldenSession(CmdSessionKick, SessionCmd{ID: "s-1", Reason: "afk too long"})}},
		{"session_ban", []Command{goldenSession(CmdSessionBan, SessionCmd{Player: "mallory", Reason: "cheating"})}},
		{"session_unban", []Command{goldenSession(CmdSessionUnban, SessionCmd{Player: "mallory"})}},
		{"session_import", []Command{goldenSession(CmdSessionImport, SessionCmd{Player: "alice", Data: []DataItem{{Key: "coins", Value: Int(10)}, {Key: "gone", Value: Value{}}}})}},
		{"delete_world", []Command{{Kind: CmdDeleteWorld, Delete: &WorldDelete{World: "w1", Incarnation: 42, IdleAfter: int64(10 * time.Minute)}}}},
		{"move_world", []Command{{Kind: CmdMoveWorld, Move: &WorldMove{World: "w1", Shard: 3, Incarnation: 42}}}},
		{"import_world", []Command{{Kind: CmdImportWorld, Import: &WorldImport{World: "w1", Data: []byte("GSDWRLD\x01 a world")}}}},
		{"update_rules", []Command{{Kind: CmdUpdateRules, Rules: &RulesUpdate{World: "w1", Expect: 3, Rules: goldenRules()}}}},
		{"update_rules_event", []Command{{Kind: CmdUpdateRulesEvent, Rules: &RulesUpdate{World: "w1", Expect: 3, Rules: goldenRules()}}}},
		// Log version 13's salted worlds and log version 14's erasure that
		// keeps its digest (salt.go, salt_erased.go).
		{"create_world_salted", []Command{{Kind: CmdCreateWorldSalted, World: &WorldSpec{ID: "w1", Origin: "eu-west", Salted: true}}}},
		{"salt", []Command{{Kind: CmdSalt, Salt: &SaltCmd{World: "w1", Player: "alice", Key: saltKey(0xA0)}}}},
		{"erase_salt", []Command{{Kind: CmdEraseSalt, Salt: &SaltCmd{World: "w1", Player: "alice"}}}},
		{"erase_salt_keep", []Command{{Kind: CmdEraseSaltKeep, Salt: &SaltCmd{World: "w1", Player: "alice"}}}},
		// Log version 15's fence of a salted world and import of export
		// format 2 (migrate.go).
		{"move_world_salted", []Command{{Kind: CmdMoveWorldSalted, Move: &WorldMove{World: "w1", Shard: 3, Incarnation: 42}}}},
		{"import_world_v2", []Command{{Kind: CmdImportWorld, Import: &WorldImport{World: "w1", Data: []byte("GSDWRLD\x02 a world")}}}},
		// Log version 16's quantum (rules_schema.go): the rules' schema
		// block carries it in the field's access.
		{"update_rules_quantum", []Command{{Kind: CmdUpdateRules, Rules: &RulesUpdate{World: "w1", Expect: 3, Rules: Rules{
			Fields: map[string]FieldRule{"x": {Type: KindFloat, Policy: PolicyAuthoritative}},
			Schema: Schema{Access: map[string]FieldAccess{"x": {Quantum: 0.1}}}}}}}},
		{"session_acks", []Command{{Kind: CmdSessionAcks, Acks: []SessionAck{{World: "w1", ID: "s-1", Seq: 7}, {World: "w2", ID: "s-9", Seq: 1 << 33}}}}},
		{"mixed", []Command{
			{Kind: CmdCreateWorld, World: &WorldSpec{ID: "w1", Origin: "eu-west", Rules: goldenRules()}},
			{Kind: CmdAction, Action: goldenAction()},
			goldenSession(CmdSessionAck, SessionCmd{ID: "s-1", Seq: 5}),
			{Kind: CmdPutNode, Node: &NodeInfo{ID: "n2", RaftAddr: "r2", HTTPAddr: "h2"}},
		}},
		{"empty", nil},
	}
}

func TestGoldenLogEntryPerCommandKind(t *testing.T) {
	for _, tc := range goldenBatches() {
		t.Run(tc.name, func(t *testing.T) {
			b := &Batch{Time: goldenBatchTime, Commands: tc.cmds}
			got := goldenEncodeBatch(b)
			golden.Binary(t, "batch_"+tc.name+".bin", got)
			// The golden entry decodes back to the batch, so a replica of
			// the refactored code replays today's logs.
			dec, err := goldenDecodeBatch(got)
			require.NoError(t, err)
			require.Equal(t, got, goldenEncodeBatch(dec))
			require.Equal(t, len(b.Commands), len(dec.Commands))
		})
	}
}

// goldenArchiveEvents are an applied event (every op kind), a conflict with
// current values (a set and an absent field) and a rejection.
func goldenArchiveEvents() map[string]*Event {
	base := func(status Status) *Event {
		return &Event{World: "w1", Seq: 42, Index: 1007, Time: goldenBatchTime, Player: "alice", ClientSeq: 300,
			Priority: PriorityBulk, Status: status}
	}
	applied := base(StatusApplied)
	applied.Changes = []Change{
		{Entity: "hero", Field: "name", Op: OpSet, Value: String("Ærwyn"), Version: 42},
		{Entity: "hero", Field: "hp", Op: OpIncr, Value: Int(83), Version: 42},
		{Entity: "hero", Field: "x", Op: OpSet, Value: Float(2.25), Version: 42},
		{Entity: "hero", Field: "alive", Op: OpSet, Value: Bool(true), Version: 42},
		{Entity: "hero", Field: "tags", Op: OpAdd, Value: String("red"), Version: 42},
		{Entity: "hero", Field: "tags", Op: OpRemove, Value: String("blue"), Version: 42},
		{Entity: "chest", Op: OpDelete, Version: 17},
	}
	conflict := base(StatusConflict)
	conflict.Priority = PriorityCritical
	conflict.Changes = []Change{
		{Entity: "hero", Field: "tags", Set: []Value{Int(1), String("a"), Bool(false)}, Version: 40, Exists: true},
		{Entity: "hero", Field: "name", Value: String("old"), Version: 12, Exists: true},
		{Entity: "hero", Field: "mana", Version: 0, Exists: false},
	}
	rejected := base(StatusRejected)
	rejected.Reason = CodePolicyViolation
	rules := &Event{World: "w1", Seq: 43, Index: 1008, Time: goldenBatchTime, Status: StatusApplied,
		Notice: &Notice{Kind: NoticeRules, RulesVersion: 5}}
	return map[string]*Event{"applied": applied, "conflict": conflict, "rejected": rejected, "rules_notice": rules}
}

func TestGoldenEventArchiveRecord(t *testing.T) {
	for name, ev := range goldenArchiveEvents() {
		t.Run(name, func(t *testing.T) {
			got := goldenEncodeEvent(ev)
			golden.Binary(t, "event_"+name+".bin", got)
			dec, err := goldenDecodeEvent(got)
			require.NoError(t, err)
			require.Equal(t, ev, dec)
		})
	}
}

func TestGoldenIdempotencyPayloadHash(t *testing.T) {
	minimal := &Action{World: "w1", Player: "bob", Seq: 1, Ops: []Op{{Kind: OpIncr, Entity: "e", Field: "n", By: 1}}}
	otherSeq := *minimal
	otherSeq.Seq = 2
	critical := goldenAction()
	critical.Priority = PriorityCritical
	actions := []struct {
		name string
		a    *Action
	}{
		{"all_ops", goldenAction()},
		{"all_ops_critical", critical},
		{"minimal", minimal},
		{"minimal_seq2", &otherSeq},
		{"set_string", &Action{World: "arena", Player: "p-7", Seq: 1 << 20, Ops: []Op{{Kind: OpSet, Entity: "door", Field: "state", Value: String("open")}}}},
	}
	var sb strings.Builder
	for _, x := range actions {
		fmt.Fprintf(&sb, "%s %s\n", x.name, wire.HashString(goldenPayloadHash(x.a)))
	}
	golden.Text(t, "payload_hashes.txt", []byte(sb.String()))
}
