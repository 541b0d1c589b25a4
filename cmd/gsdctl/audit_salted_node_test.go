package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// Issue 15's salted leaves over a real node: a world created with
// --audit-leaf 2, fetched with its salts and verified; without them
// verify refuses; a tampered event is named; a player's salt erased, its
// events verify with the digest the world kept (OK without
// --allow-unchecked), and, with salts from before digests were kept, by
// their leaf hashes only.
func TestASaltedWorldsMatchVerifiesWithItsSaltsAndAnErasedPlayerWithItsDigest(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gsd process")
	}
	dir := t.TempDir()
	n, keyPrefix := startAuditNode(t, dir, "", "")

	mustRun(t, "--addr", n.http, "world", "create", "arena", "--audit-leaf", "2")
	code, _, stderr := ctl(t, "", "--addr", n.http, "world", "create", "other", "--audit-leaf", "3")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "--audit-leaf must be 1 or 2")
	c := client.New([]string{n.http})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for seq := uint64(1); seq <= 12; seq++ {
		p := fmt.Sprintf("p%d", seq%3)
		_, err := c.Act(ctx, "arena", client.ActionRequest{Player: p, Seq: seq, Ops: []wire.Op{client.Set(p, "hp", wire.Int(int64(seq)))}})
		require.NoError(t, err)
	}

	prefix := filepath.Join(dir, "match")
	cp := fetchAt(t, n.http, prefix, 12, keyPrefix+".pub", true)
	require.Equal(t, wire.AuditLeafV2, cp.Leaf)
	var salts wire.AuditSalts
	b, err := os.ReadFile(prefix + ".salts")
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &salts))
	require.Len(t, salts.Salts, 3)
	verify := []string{"audit", "verify", "--log", prefix + ".ndjson", "--checkpoint", prefix + ".checkpoint", "--key", keyPrefix + ".pub"}
	out := mustRun(t, append(verify, "--salts", prefix+".salts", "--leaves", prefix+".leaves")...)
	require.Contains(t, out, "log: 12 events")
	require.Contains(t, out, "salts: signed by [gsd-audit+")
	require.Contains(t, out, "ok")
	saltsSignatureRefusesAForgedErasure(t, dir, prefix, verify)
	code, _, stderr = ctl(t, "", verify...)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "--salts")

	// Tamper with event 5: named.
	b, err = os.ReadFile(prefix + ".ndjson")
	require.NoError(t, err)
	lines := strings.Split(string(b), "\n")
	tampered := append([]string(nil), lines...)
	tampered[4] = strings.Replace(tampered[4], `"value":5`, `"value":50`, 1)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tampered.ndjson"), []byte(strings.Join(tampered, "\n")), 0o644))
	tv := append([]string(nil), verify...)
	tv[3] = filepath.Join(dir, "tampered.ndjson")
	code, out, _ = ctl(t, "", append(tv, "--salts", prefix+".salts", "--leaves", prefix+".leaves")...)
	require.Equal(t, 1, code)
	require.Contains(t, out, "modified: seq 5")

	// Erase p1: the salts fetched now lack it and carry its digest for
	// seqs 1 to 12; the export made before verifies, p1's events (seqs 1,
	// 4, 7, 10) with the digest: OK without --allow-unchecked.
	out = mustRun(t, "--addr", n.http, "audit", "erase", "arena", "p1")
	require.Contains(t, out, `"player": "p1"`)
	code, out, stderr = ctl(t, "", "--addr", n.http, "audit", "erase", "arena", "p1")
	require.Equal(t, 0, code, "erasing is idempotent (a retried erase): %s", stderr)
	require.Contains(t, out, `"player": "p1"`)
	require.Contains(t, stderr, "erased already")
	after := filepath.Join(dir, "after")
	fetchAt(t, n.http, after, 12, keyPrefix+".pub", false)
	var erased wire.AuditSalts
	b, err = os.ReadFile(after + ".salts")
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &erased))
	require.Len(t, erased.Salts, 2)
	require.Len(t, erased.Erased, 1)
	require.Equal(t, [2]uint64{1, 12}, [2]uint64{erased.Erased[0].Since, erased.Erased[0].Until})
	require.NotContains(t, string(b), `"p1"`, "the salts file names no erased player")
	out = mustRun(t, append(verify, "--salts", after+".salts", "--leaves", prefix+".leaves")...)
	require.Contains(t, out, "erased: 4 event(s)")
	require.Contains(t, out, "ok")
	require.NotContains(t, out, "unchecked")
	out = mustRun(t, append(verify, "--salts", after+".salts", "--leaves", prefix+".leaves", "-o", "json")...)
	var rep auditReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.True(t, rep.OK)
	require.Empty(t, rep.Unchecked)
	require.Equal(t, []uint64{1, 4, 7, 10}, rep.Erased)
	require.Equal(t, wire.AuditLeafV2, rep.Leaf)
	out = mustRun(t, append(verify, "--salts", after+".salts")...)
	require.Contains(t, out, "erased: 4 event(s)", "p1 is named nowhere but as its events' actor and entity: the root verifies without leaves")

	// A tampered event of p1 is named modified, not erased.
	tampered = append([]string(nil), lines...)
	tampered[6] = strings.Replace(tampered[6], `"value":7`, `"value":70`, 1)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tampered.ndjson"), []byte(strings.Join(tampered, "\n")), 0o644))
	code, out, _ = ctl(t, "", append(tv, "--salts", after+".salts", "--leaves", prefix+".leaves")...)
	require.Equal(t, 1, code)
	require.Contains(t, out, "modified: seq 7")
	require.Contains(t, out, "erased: 3 event(s)")

	// Salts from before digests were kept (an erasure of log 13): p1's
	// events by their leaf hashes only, not accepted by default.
	erased.Erased = nil
	b, err = json.Marshal(erased)
	require.NoError(t, err)
	old := filepath.Join(dir, "old.salts")
	require.NoError(t, os.WriteFile(old, b, 0o644))
	code, out, stderr = ctl(t, "", append(verify, "--salts", old, "--leaves", prefix+".leaves", "--allow-unsigned-salts")...)
	require.Equal(t, 1, code, "unchecked events are not accepted by default")
	require.Contains(t, out, "content not verified")
	require.Contains(t, stderr, "--allow-unchecked")
	out = mustRun(t, append(verify, "--salts", old, "--leaves", prefix+".leaves", "--allow-unchecked", "--allow-unsigned-salts", "-o", "json")...)
	rep = auditReport{}
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.True(t, rep.OK)
	require.Equal(t, []uint64{1, 4, 7, 10}, rep.Unchecked)
	n.stop(t)
	require.NotContains(t, n.stderr.String(), "level=ERROR")
}

// TestAuditFetchWritesASaltedWorldsSaltsOfTheCheckpointsIncarnation: the
// salts must be the checkpoint's incarnation's (a world created again
// has others).
func TestAuditFetchWritesASaltedWorldsSaltsOfTheCheckpointsIncarnation(t *testing.T) {
	inc := 5
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/audit/salts") {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"world":"arena","incarnation":%d,"salts":[{"player":"p1","salt":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=","since":1}]}`, inc)
			return
		}
		w.Write([]byte("arena\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\nincarnation 5\nleaf 2\n\n— k AAAA\n"))
	}))
	defer ts.Close()
	addr := strings.TrimPrefix(ts.URL, "http://")
	prefix := filepath.Join(t.TempDir(), "m")
	require.NoError(t, os.WriteFile(prefix+".salts.sig", []byte("an earlier fetch's"), 0o644))
	code, out, stderr := ctl(t, "", "--addr", addr, "audit", "fetch", "arena", "--out", prefix)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "salted leaves")
	// A node from before signed salts answers the table alone: written
	// unsigned, with a warning, and no earlier signature left beside it.
	require.Contains(t, out, "m.salts (unsigned)")
	require.Contains(t, stderr, "did not sign the salts of arena")
	require.NoFileExists(t, prefix+".salts.sig")
	b, err := os.ReadFile(prefix + ".salts")
	require.NoError(t, err)
	var s wire.AuditSalts
	require.NoError(t, json.Unmarshal(b, &s))
	require.NoError(t, s.Check())
	require.Equal(t, uint64(5), s.Incarnation)

	inc = 6
	code, _, stderr = ctl(t, "", "--addr", addr, "audit", "fetch", "arena", "--out", prefix)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "created again")
}

// saltsSignatureRefusesAForgedErasure: the node signed the salts it
// served (PREFIX.salts.sig); the forgery the signature is for (a live
// player's salt deleted and its digest added to erased, the player's
// events renamed) passes as erased without the signature, and is refused
// with it.
func saltsSignatureRefusesAForgedErasure(t *testing.T, dir, prefix string, verify []string) {
	t.Helper()
	sig, err := os.ReadFile(prefix + ".salts.sig")
	require.NoError(t, err, "fetch saves the node's signature of the salts")
	require.True(t, strings.HasPrefix(string(sig), "gsd audit salts v1\nworld arena\n"), "%s", sig)

	b, err := os.ReadFile(prefix + ".salts")
	require.NoError(t, err)
	var salts wire.AuditSalts
	require.NoError(t, json.Unmarshal(b, &salts))
	require.Equal(t, "p2", salts.Salts[2].Player)
	d := wire.SaltedID(salts.Salts[2].Salt, "p2")
	salts.Erased = append(salts.Erased, wire.AuditErasedSalt{Digest: d[:], Since: salts.Salts[2].Since, Until: 12})
	salts.Salts = salts.Salts[:2]
	b, err = json.Marshal(salts)
	require.NoError(t, err)
	forged := filepath.Join(dir, "forged")
	require.NoError(t, os.WriteFile(forged+".salts", b, 0o644))
	log, err := os.ReadFile(prefix + ".ndjson")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(forged+".ndjson", []byte(strings.ReplaceAll(string(log), `"p2"`, `"mallory"`)), 0o644))
	fv := append([]string(nil), verify...)
	fv[3] = forged + ".ndjson"

	// Unsigned salts are refused by default: the forgery does not pass.
	code, out, stderr := ctl(t, "", append(fv, "--salts", forged+".salts", "--leaves", prefix+".leaves")...)
	require.Equal(t, 1, code, "%s%s", out, stderr)
	require.Contains(t, stderr, "forged.salts: unsigned (no "+forged+".salts.sig), refused")
	require.Contains(t, stderr, "--allow-unsigned-salts")
	require.NotContains(t, out, "ok")
	// --require-signed-salts (deprecated) changes nothing: refused, and a
	// warning says it is deprecated.
	code, _, stderr = ctl(t, "", append(fv, "--salts", forged+".salts", "--leaves", prefix+".leaves", "--require-signed-salts")...)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "--require-signed-salts is deprecated")
	require.Contains(t, stderr, "refused")
	code, _, stderr = ctl(t, "", append(fv, "--salts", forged+".salts", "--require-signed-salts", "--allow-unsigned-salts")...)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "contradict")
	// Accepted unsigned (--allow-unsigned-salts), the forgery passes: p2's
	// events, renamed, verify as erased; a warning says the verdicts are
	// not authenticated.
	code, out, stderr = ctl(t, "", append(fv, "--salts", forged+".salts", "--leaves", prefix+".leaves", "--allow-unsigned-salts")...)
	require.Equal(t, 0, code, "%s%s", out, stderr)
	require.Contains(t, out, "erased: 4 event(s)")
	require.Contains(t, stderr, "unsigned")
	require.Contains(t, stderr, "not authenticated")

	// With the node's signature beside it: refused.
	require.NoError(t, os.WriteFile(forged+".salts.sig", sig, 0o644))
	code, out, stderr = ctl(t, "", append(fv, "--salts", forged+".salts", "--leaves", prefix+".leaves")...)
	require.Equal(t, 1, code, "%s", out)
	require.Contains(t, stderr, "bad salts signature")
	require.Contains(t, stderr, "not the one signed")
	require.NotContains(t, out, "ok")

	// A signature that does not verify under --key: refused.
	bad := strings.Replace(string(sig), "size ", "size 1", 1)
	require.NoError(t, os.WriteFile(forged+".salts.sig", []byte(bad), 0o644))
	code, _, stderr = ctl(t, "", append(verify, "--salts", forged+".salts")...)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "forged.salts.sig: gsd/audit: bad salts signature")

	// The genuine salts and signature verify, with the deprecated flag or
	// --allow-unsigned-salts too (it accepts unsigned salts, signed ones
	// are checked all the same).
	code, out, stderr = ctl(t, "", append(verify, "--salts", prefix+".salts", "--require-signed-salts", "-o", "json")...)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stderr, "deprecated")
	mustRun(t, append(verify, "--salts", prefix+".salts", "--allow-unsigned-salts")...)
	var rep auditReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.True(t, rep.OK)
	require.Len(t, rep.SaltsSigners, 1)
}
