package audit

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

const saltSecret = "0123456789abcdef0123456789abcdef"

// TestASaltedWorldsSaltsAreForModeratorsAndAnErasureRemovesOne: over a
// real one-node store, the table answers the salt the leader drew; an
// admin erases it; a world that is not salted says so.
func TestASaltedWorldsSaltsAreForModeratorsAndAnErasureRemovesOne(t *testing.T) {
	s := apitest.StartStore(t)
	ctx := context.Background()
	require.NoError(t, s.CreateSaltedWorld(ctx, "arena", fsm.Rules{}))
	require.NoError(t, s.CreateWorld(ctx, "plain", fsm.Rules{}))
	_, _, err := s.Act(ctx, &fsm.Action{World: "arena", Player: "alice", Seq: 1, Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e", Field: "hp", By: 1}}})
	require.NoError(t, err)
	table, inc, err := s.Salts("arena")
	require.NoError(t, err)

	cfg := apitest.Config()
	cfg.ClusterSecret = []byte(saltSecret)
	core := apitest.Core(t, s, &cfg)
	mux := http.NewServeMux()
	New(core, &logs{}).Register(mux)
	e := apitest.Serve(t, core.Handler(mux), nil, nil, nil, nil)

	e.RequireError(401, edge.CodeUnauthorized, "GET", "/v1/worlds/arena/audit/salts", "")
	code, _, b := e.Do("GET", "/v1/worlds/arena/audit/salts", "", edge.HeaderClusterKey, saltSecret)
	require.Equal(t, 200, code, "%s", b)
	var got wire.AuditSalts
	require.NoError(t, json.Unmarshal(b, &got))
	require.Equal(t, wire.AuditSalts{World: "arena", Incarnation: inc, Salts: []wire.AuditSalt{{Player: "alice", Salt: table[0].Key[:], Since: 1}}}, got)
	require.NoError(t, got.Check())

	e.RequireError(401, edge.CodeUnauthorized, "DELETE", "/v1/worlds/arena/audit/salts/alice", "")
	code, _, b = e.Do("DELETE", "/v1/worlds/arena/audit/salts/alice", "", edge.HeaderClusterKey, saltSecret)
	require.Equal(t, 200, code, "%s", b)
	require.JSONEq(t, `{"world":"arena","player":"alice"}`, string(b))
	code, _, b = e.Do("DELETE", "/v1/worlds/arena/audit/salts/alice", "", edge.HeaderClusterKey, saltSecret)
	require.Equal(t, 404, code, "%s", b)
	require.Contains(t, string(b), fsm.CodeNotFound)
	code, _, b = e.Do("GET", "/v1/worlds/arena/audit/salts", "", edge.HeaderClusterKey, saltSecret)
	require.Equal(t, 200, code)
	var after wire.AuditSalts
	require.NoError(t, json.Unmarshal(b, &after))
	digest := wire.SaltedID(table[0].Key[:], "alice")
	require.Equal(t, wire.AuditSalts{World: "arena", Incarnation: inc, Salts: []wire.AuditSalt{},
		Erased: []wire.AuditErasedSalt{{Digest: digest[:], Since: 1, Until: 1}}}, after,
		"alice's salt is gone, its digest kept for seq 1 without her id")
	require.NotContains(t, string(b), "alice")
	require.NoError(t, after.Check())

	for _, req := range [][2]string{{"GET", "/v1/worlds/plain/audit/salts"}, {"DELETE", "/v1/worlds/plain/audit/salts/alice"}} {
		code, _, b = e.Do(req[0], req[1], "", edge.HeaderClusterKey, saltSecret)
		require.Equal(t, 422, code, "%s", b)
		require.Contains(t, string(b), fsm.CodeNotSupported)
	}
	// The internal route is for nodes only.
	code, _, _ = e.Do("GET", edge.InternalWorldPath("arena", "/audit/salts"), "", edge.HeaderClusterKey, saltSecret)
	require.Equal(t, 403, code)
	code, _, b = e.Do("GET", edge.InternalWorldPath("arena", "/audit/salts"), "", edge.HeaderClusterKey, saltSecret, edge.HeaderForwarded, "1")
	require.Equal(t, 200, code, "%s", b)
	require.Contains(t, string(b), `"world":"arena"`)
}

// TestSaltRoutesOfAGroupWithoutSaltsAreNotSupported: a backend that
// keeps none (a test's fake) answers 422.
func TestSaltRoutesOfAGroupWithoutSaltsAreNotSupported(t *testing.T) {
	e := newEnv(t, false, "")
	e.RequireError(422, fsm.CodeNotSupported, "GET", "/v1/worlds/arena/audit/salts", "")
	e.RequireError(422, fsm.CodeNotSupported, "DELETE", "/v1/worlds/arena/audit/salts/p1", "")
}

// TestSignedSaltsAreTheTableBytesUnderTheNodesAuditKey: ?signed=1 answers
// the table's exact JSON bytes and a salts note over them signed with the
// key that signs checkpoints; without a key the note is empty; without
// ?signed the answer is the table alone, as older gsdctl reads it.
func TestSignedSaltsAreTheTableBytesUnderTheNodesAuditKey(t *testing.T) {
	s := apitest.StartStore(t)
	ctx := context.Background()
	require.NoError(t, s.CreateSaltedWorld(ctx, "arena", fsm.Rules{}))
	_, _, err := s.Act(ctx, &fsm.Action{World: "arena", Player: "alice", Seq: 1, Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e", Field: "hp", By: 1}}})
	require.NoError(t, err)
	_, inc, err := s.Salts("arena")
	require.NoError(t, err)
	l, err := audit.OpenSalted("arena", inc, &audit.MemStore{})
	require.NoError(t, err)
	require.NoError(t, l.Append(&wire.Event{World: "arena", Seq: 1, Player: "alice", Priority: "critical", Status: "applied"}))
	k, v := testKey(t)
	f := &logs{l: map[string]*audit.Log{"arena": l}, signer: k}

	cfg := apitest.Config()
	cfg.ClusterSecret = []byte(saltSecret)
	core := apitest.Core(t, s, &cfg)
	mux := http.NewServeMux()
	New(core, f).Register(mux)
	e := apitest.Serve(t, core.Handler(mux), nil, nil, nil, nil)
	get := func(path string) (int, []byte) {
		code, _, b := e.Do("GET", path, "", edge.HeaderClusterKey, saltSecret)
		return code, b
	}

	code, plain := get("/v1/worlds/arena/audit/salts")
	require.Equal(t, 200, code, "%s", plain)
	require.NotContains(t, string(plain), `"note"`, "the answer older clients read is unchanged")

	for _, path := range []string{"/v1/worlds/arena/audit/salts?signed=1", edge.InternalWorldPath("arena", "/audit/salts?signed=1")} {
		code, _, b := e.Do("GET", path, "", edge.HeaderClusterKey, saltSecret, edge.HeaderForwarded, "1")
		require.Equal(t, 200, code, "%s", b)
		var got wire.AuditSaltsSigned
		require.NoError(t, json.Unmarshal(b, &got))
		require.JSONEq(t, string(plain), string(got.Table), "the same table")
		sn, signers, err := audit.OpenSalts([]byte(got.Note), v)
		require.NoError(t, err, path)
		require.Equal(t, []string{v.ID()}, signers)
		require.Equal(t, audit.SaltsNote{World: "arena", Incarnation: inc, Size: 1, SHA256: sha256.Sum256(got.Table)}, sn)
		require.NoError(t, sn.Vouches(got.Table, "arena", inc))
	}

	// No audit key: the table, unsigned.
	f.signer = nil
	code, b := get("/v1/worlds/arena/audit/salts?signed=1")
	require.Equal(t, 200, code, "%s", b)
	var unsigned wire.AuditSaltsSigned
	require.NoError(t, json.Unmarshal(b, &unsigned))
	require.Empty(t, unsigned.Note)
	require.JSONEq(t, string(plain), string(unsigned.Table))

	// A signer that fails, an auditor whose log is of another
	// incarnation or missing: errors, never a table signed wrongly.
	f.saltsErr = errors.New("disk gone")
	code, b = get("/v1/worlds/arena/audit/salts?signed=1")
	require.Equal(t, 500, code, "%s", b)
	f.saltsErr = nil
	other, err := audit.OpenSalted("arena", inc+1, &audit.MemStore{})
	require.NoError(t, err)
	f.l["arena"] = other
	code, b = get("/v1/worlds/arena/audit/salts?signed=1")
	require.Equal(t, 503, code, "%s", b)
	require.Contains(t, string(b), "ask again")
	delete(f.l, "arena")
	code, b = get("/v1/worlds/arena/audit/salts?signed=1")
	require.Equal(t, 404, code, "%s", b)
}
