package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func TestAuditVerifyChecksTheLogOfADeletedWorldAgainstItsTombstone(t *testing.T) {
	f := newAuditFiles(t)
	private, err := os.ReadFile(filepath.Join(f.dir, "gsd-audit.key"))
	require.NoError(t, err)
	signer, err := audit.ParseSigningKey(string(private))
	require.NoError(t, err)
	l, err := audit.OpenIncarnation("arena", 7, &audit.MemStore{})
	require.NoError(t, err)
	for _, b := range f.lines {
		var e wire.Event
		require.NoError(t, json.Unmarshal(b, &e))
		require.NoError(t, l.Append(&e))
	}
	cp, err := l.Checkpoint()
	require.NoError(t, err)
	cp.Tombstone, cp.LastIndex, cp.LastTime = true, 42, 1009
	msg, err := audit.SignCheckpoint(cp, signer)
	require.NoError(t, err)
	tomb := filepath.Join(f.dir, "arena-7.tombstone")
	require.NoError(t, os.WriteFile(tomb, msg, 0o644))

	out := mustRun(t, "audit", "verify", "--log", f.log, "--checkpoint", tomb, "--key", f.pub)
	require.Contains(t, out, "checkpoint: world arena incarnation 7, 10 events, root ")
	require.Contains(t, out, "tombstone: the world incarnation 7 was deleted; its log ended at 10 events (last event: log index 42, time 1009")
	require.True(t, strings.HasSuffix(out, "log: 10 events\nok\n"), out)
	out = mustRun(t, "audit", "verify", "--log", f.log, "--checkpoint", tomb, "--key", f.pub, "-o", "json")
	var rep auditReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.True(t, rep.OK)
	require.True(t, rep.Tombstone)
	require.Equal(t, uint64(7), rep.Incarnation)

	// An event after the tombstone was inserted: the world had ended.
	var extra wire.Event
	require.NoError(t, json.Unmarshal(f.lines[9], &extra))
	extra.Seq = 11
	b, err := json.Marshal(extra)
	require.NoError(t, err)
	f.write(t, append(f.lines, b))
	code, out, _ := ctl(t, "", "audit", "verify", "--log", f.log, "--checkpoint", tomb, "--key", f.pub)
	require.NotZero(t, code)
	require.Contains(t, out, "after the tombstone of the deleted world at 10 events")

	// An earlier checkpoint of another incarnation is refused.
	code, _, errOut := ctl(t, "", "audit", "verify", "--log", f.log, "--checkpoint", tomb, "--checkpoint", f.earlier, "--key", f.pub)
	require.NotZero(t, code)
	require.Contains(t, errOut, "no earlier checkpoint")
}

// TestAuditFetchWithoutTheModeratorRoleSavesAllButTheSaltsAndWarns: the
// checkpoint, log and leaves of a salted world are of use to whoever can
// fetch its salts later; fetch does not abort for them.
func TestAuditFetchWithoutTheModeratorRoleSavesAllButTheSaltsAndWarns(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/audit/salts") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"code":"forbidden","error":"moderators and admins only"}`))
			return
		}
		w.Write([]byte("arena\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\nincarnation 5\nleaf 2\n\n— k AAAA\n"))
	}))
	defer ts.Close()
	prefix := filepath.Join(t.TempDir(), "m")
	code, out, stderr := ctl(t, "", "--addr", strings.TrimPrefix(ts.URL, "http://"), "audit", "fetch", "arena", "--out", prefix)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stderr, "salts of arena were not fetched")
	require.Contains(t, out, "wrote "+prefix+".checkpoint")
	for _, ext := range []string{".checkpoint", ".ndjson", ".leaves"} {
		require.FileExists(t, prefix+ext)
	}
	require.NoFileExists(t, prefix+".salts")
}

// TestAuditVerifyRefusesSaltsWithACheckpointWithoutALeafLine: salts with
// a version 1 checkpoint are a mistake (or a tombstone from before leaf
// versions were kept): refused, not verified as version 2 silently.
func TestAuditVerifyRefusesSaltsWithACheckpointWithoutALeafLine(t *testing.T) {
	f := newAuditFiles(t)
	salts := filepath.Join(f.dir, "m.salts")
	require.NoError(t, os.WriteFile(salts, []byte(`{"world":"arena","salts":[]}`), 0o644))
	code, _, stderr := ctl(t, "", "audit", "verify", "--log", f.log, "--checkpoint", f.checkpoint, "--key", f.pub, "--salts", salts)
	require.Equal(t, 1, code, stderr)
	require.Contains(t, stderr, `without a "leaf 2" line`)
}
