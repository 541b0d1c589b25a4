package audit

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/anticheat/audit/auditor"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// logs is the node's audit logs in memory: arena holds n events.
type logs struct {
	l      map[string]*audit.Log
	old    map[string]*audit.Log // world#incarnation
	signer note.Signer           // nil: no key
	signs  int
	// saltsErr fails SignSalts.
	saltsErr error
}

func (f *logs) Log(world string) (*audit.Log, error) {
	if world == "replaying" { // a node whose world list has not settled
		return nil, fmt.Errorf("%w (world %s)", auditor.ErrNotReady, world)
	}
	if l := f.l[world]; l != nil {
		return l, nil
	}
	return nil, fmt.Errorf("%w: %s", fsm.ErrUnknownWorld, world)
}

func (f *logs) Checkpoint(world string) ([]byte, error) {
	l, err := f.Log(world)
	if err != nil {
		return nil, err
	}
	if f.signer == nil {
		return nil, auditor.ErrNoKey
	}
	cp, _ := l.Checkpoint()
	return audit.SignCheckpoint(cp, f.signer)
}

// LogOf serves the current incarnation (0) from l, a deleted one from old.
func (f *logs) LogOf(world string, inc uint64) (*audit.Log, error) {
	if l := f.old[fmt.Sprintf("%s#%d", world, inc)]; l != nil {
		return l, nil
	}
	if l := f.l[world]; l != nil && l.Incarnation() == inc {
		return l, nil
	}
	return nil, auditor.NoTree(world, inc) // as the auditor says it
}

// CheckpointOf signs a deleted incarnation's final checkpoint as its
// tombstone.
func (f *logs) CheckpointOf(world string, inc uint64) ([]byte, error) {
	l, err := f.LogOf(world, inc)
	if err != nil {
		return nil, err
	}
	cp, _ := l.Checkpoint()
	cp.Tombstone = l != f.l[world]
	return audit.SignCheckpoint(cp, f.signer)
}

func (f *logs) SignSalts(n audit.SaltsNote) ([]byte, error) {
	if f.saltsErr != nil {
		return nil, f.saltsErr
	}
	if f.signer == nil {
		return nil, auditor.ErrNoKey
	}
	return audit.SignSalts(n, f.signer)
}

func (f *logs) Sign(world string) ([]byte, error) {
	f.signs++
	return f.Checkpoint(world)
}

// testKey returns a new audit key named test.
func testKey(t *testing.T) (audit.SigningKey, audit.VerifyingKey) {
	t.Helper()
	priv, pub, err := audit.GenerateKey("test")
	require.NoError(t, err)
	k, err := audit.ParseSigningKey(priv)
	require.NoError(t, err)
	v, err := audit.ParseVerifyingKey(pub)
	require.NoError(t, err)
	return k, v
}

func events(world string, n int) []*wire.Event {
	out := make([]*wire.Event, n)
	for i := range out {
		out[i] = &wire.Event{World: world, Seq: uint64(i + 1), Player: "p" + strconv.Itoa(i%3), Priority: "critical", Status: "applied"}
	}
	return out
}

type env struct {
	*apitest.Env
	logs    *logs
	evs     []*wire.Event
	pub     note.Verifier
	backend *apitest.Fake // the node's worlds (visibility_test.go)
}

func newEnv(t *testing.T, withKey bool, secret string) *env {
	t.Helper()
	l, err := audit.Open("arena", &audit.MemStore{})
	require.NoError(t, err)
	evs := events("arena", 10)
	require.NoError(t, l.Append(evs...))
	empty, err := audit.Open("empty", &audit.MemStore{})
	require.NoError(t, err)
	f := &logs{l: map[string]*audit.Log{"arena": l, "empty": empty}}
	var pub note.Verifier
	if withKey {
		k, v := testKey(t)
		f.signer, pub = k, v
	}
	cfg := apitest.Config()
	if secret != "" {
		cfg.ClusterSecret = []byte(secret)
	}
	backend := apitest.NewFake()
	core := apitest.Core(t, backend, &cfg)
	mux := http.NewServeMux()
	New(core, f).Register(mux)
	return &env{Env: apitest.Serve(t, core.Handler(mux), nil, nil, nil, nil), logs: f, evs: evs, pub: pub, backend: backend}
}

func (e *env) checkpoint() audit.Checkpoint {
	e.T.Helper()
	code, h, b := e.Do("GET", "/v1/worlds/arena/audit/checkpoint", "")
	require.Equal(e.T, 200, code, "%s", b)
	require.Contains(e.T, h.Get("Content-Type"), "text/plain")
	cp, _, err := audit.OpenCheckpoint(b, e.pub)
	require.NoError(e.T, err)
	return cp
}

func TestTheCheckpointIsSignedNoteText(t *testing.T) {
	e := newEnv(t, true, "")
	cp := e.checkpoint()
	require.Equal(t, int64(10), cp.Size)
	require.Equal(t, "arena", cp.Origin)

	// On demand: admin only when the cluster has a secret.
	e = newEnv(t, true, "0123456789abcdef0123456789abcdef")
	e.RequireError(401, edge.CodeUnauthorized, "POST", "/v1/worlds/arena/audit/checkpoint", "")
	code, _, b := e.Do("POST", "/v1/worlds/arena/audit/checkpoint", "", edge.HeaderClusterKey, "0123456789abcdef0123456789abcdef")
	require.Equal(t, 200, code, "%s", b)
	require.Equal(t, 1, e.logs.signs)
	_, _, err := audit.OpenCheckpoint(b, e.pub)
	require.NoError(t, err)
	e.checkpoint() // reads stay public
}

func TestErrorsNameUnknownWorldsMissingKeysAndSeqsBeyondTheLog(t *testing.T) {
	e := newEnv(t, false, "")
	e.RequireError(404, edge.CodeNoAuditKey, "GET", "/v1/worlds/arena/audit/checkpoint", "")
	e.RequireError(404, edge.CodeNoAuditKey, "POST", "/v1/worlds/arena/audit/checkpoint", "")
	for _, path := range []string{"checkpoint", "proof?seq=1", "consistency?from=1", "leaves"} {
		e.RequireError(404, fsm.CodeUnknownWorld, "GET", "/v1/worlds/nowhere/audit/"+path, "")
		e.RequireError(503, edge.CodeNotReady, "GET", "/v1/worlds/replaying/audit/"+path, "")
	}
	for _, path := range []string{"proof?seq=11", "proof?seq=3&size=11", "proof?seq=4&size=3",
		"consistency?from=11", "consistency?from=3&to=11", "consistency?from=4&to=3", "leaves?from=11&to=11", "leaves?from=3&to=2"} {
		e.RequireError(404, edge.CodeBeyondLog, "GET", "/v1/worlds/arena/audit/"+path, "")
	}
	e.RequireError(404, edge.CodeBeyondLog, "GET", "/v1/worlds/empty/audit/proof?seq=1", "")
	e.RequireError(404, edge.CodeBeyondLog, "GET", "/v1/worlds/empty/audit/leaves", "")
	for _, path := range []string{"proof", "proof?seq=0", "proof?seq=x", "proof?seq=1&size=-1", "consistency",
		"consistency?from=1&to=0", "leaves?from=abc", "leaves?to=99999999"} {
		e.RequireError(400, fsm.CodeMalformed, "GET", "/v1/worlds/arena/audit/"+path, "")
	}
}

func TestProofsCheckAgainstTheSignedCheckpoint(t *testing.T) {
	e := newEnv(t, true, "")
	cp := e.checkpoint()
	for seq := uint64(1); seq <= 10; seq++ {
		code, m := e.DoJSON("GET", fmt.Sprintf("/v1/worlds/arena/audit/proof?seq=%d&size=10", seq), "")
		require.Equal(t, 200, code)
		var p wire.AuditProof
		remarshal(t, m, &p)
		require.Equal(t, wire.AuditProof{World: "arena", Seq: seq, Size: 10, Proof: p.Proof}, p)
		require.NoError(t, audit.CheckInclusion(cp, e.evs[seq-1], toHashes(p.Proof)))
		if seq > 1 { // another event's proof does not prove this one
			require.Error(t, audit.CheckInclusion(cp, e.evs[seq-2], toHashes(p.Proof)))
		}
	}
	// The default size is the log's now.
	code, m := e.DoJSON("GET", "/v1/worlds/arena/audit/proof?seq=2", "")
	require.Equal(t, 200, code)
	require.Equal(t, float64(10), m["size"])

	// Consistency of an earlier tree with the checkpoint's.
	older, err := audit.Open("arena", &audit.MemStore{})
	require.NoError(t, err)
	require.NoError(t, older.Append(e.evs[:4]...))
	ocp, err := older.Checkpoint()
	require.NoError(t, err)
	code, m = e.DoJSON("GET", "/v1/worlds/arena/audit/consistency?from=4", "")
	require.Equal(t, 200, code)
	var c wire.AuditConsistency
	remarshal(t, m, &c)
	require.Equal(t, int64(4), c.From)
	require.Equal(t, int64(10), c.To)
	require.NoError(t, audit.CheckConsistency(ocp, cp, toHashes(c.Proof)))
}

func TestLeavesAreTheLeafHashesInSeqOrder(t *testing.T) {
	e := newEnv(t, true, "")
	code, h, b := e.Do("GET", "/v1/worlds/arena/audit/leaves", "")
	require.Equal(t, 200, code)
	require.Equal(t, "1", h.Get("Gsd-Audit-From"))
	require.Equal(t, "10", h.Get("Gsd-Audit-To"))
	hs, err := audit.DecodeLeafHashes(b)
	require.NoError(t, err)
	require.Len(t, hs, 10)
	for i, ev := range e.evs {
		require.Equal(t, audit.LeafHash(ev), hs[i])
	}
	code, h, b = e.Do("GET", "/v1/worlds/arena/audit/leaves?from=3&to=4", "")
	require.Equal(t, 200, code)
	require.Equal(t, "3", h.Get("Gsd-Audit-From"))
	require.Equal(t, "4", h.Get("Gsd-Audit-To"))
	require.Len(t, b, 64)
}

func remarshal(t *testing.T, m map[string]any, v any) {
	t.Helper()
	b, err := json.Marshal(m)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, v))
}

func toHashes(p [][]byte) []tlog.Hash {
	out := make([]tlog.Hash, len(p))
	for i, h := range p {
		out[i] = tlog.Hash(h)
	}
	return out
}
