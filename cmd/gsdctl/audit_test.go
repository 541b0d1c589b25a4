package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// auditFiles is a world's exported log, its signed checkpoint, its leaf
// hashes and the public key, in a temp dir.
type auditFiles struct {
	dir, log, checkpoint, earlier, leaves, pub string
	lines                                      [][]byte
}

func newAuditFiles(t *testing.T) auditFiles {
	t.Helper()
	dir := t.TempDir()
	prefix := filepath.Join(dir, "gsd-audit")
	out := mustRun(t, "audit", "keygen", "gsd-audit", "--out", prefix)
	require.Contains(t, out, "key id gsd-audit+")
	private, err := os.ReadFile(prefix + ".key")
	require.NoError(t, err)
	signer, err := audit.ParseSigningKey(string(private))
	require.NoError(t, err)

	l, err := audit.Open("arena", &audit.MemStore{})
	require.NoError(t, err)
	f := auditFiles{dir: dir, log: filepath.Join(dir, "match.ndjson"), checkpoint: filepath.Join(dir, "match.checkpoint"),
		earlier: filepath.Join(dir, "at-5.checkpoint"), leaves: filepath.Join(dir, "match.leaves"), pub: prefix + ".pub"}
	for i := range 10 {
		v := wire.Int(int64(i))
		e := &wire.Event{World: "arena", Seq: uint64(i) + 1, Time: int64(1000 + i), Player: fmt.Sprintf("p%d", i%3),
			ClientSeq: uint64(i), Priority: "critical", Status: "applied",
			Versions: map[string]map[string]uint64{"score": {"n": uint64(i) + 1}},
			Changes:  []wire.Change{{Entity: "score", Field: "n", Op: "set", Value: &v, Version: uint64(i) + 1}}}
		require.NoError(t, l.Append(e))
		b, err := json.Marshal(e)
		require.NoError(t, err)
		f.lines = append(f.lines, b)
		if i == 4 {
			cp, err := l.Checkpoint()
			require.NoError(t, err)
			msg, err := audit.SignCheckpoint(cp, signer)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(f.earlier, msg, 0o644))
		}
	}
	cp, err := l.Checkpoint()
	require.NoError(t, err)
	msg, err := audit.SignCheckpoint(cp, signer)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(f.checkpoint, msg, 0o644))
	leaves, err := l.LeafHashes(1, 10)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(f.leaves, audit.EncodeLeafHashes(leaves), 0o644))
	f.write(t, f.lines)
	return f
}

func (f auditFiles) write(t *testing.T, lines [][]byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(f.log, append(bytes.Join(lines, []byte("\n")), '\n'), 0o644))
}

func TestAuditKeygenWritesANoteKeyPairAndNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	out := mustRun(t, "audit", "keygen", "k1")
	require.Regexp(t, `^wrote k1\.key and k1\.pub; key id k1\+[0-9a-f]{8}\n$`, out)
	private, err := os.ReadFile("k1.key")
	require.NoError(t, err)
	public, err := os.ReadFile("k1.pub")
	require.NoError(t, err)
	st, err := os.Stat("k1.key")
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	s, err := audit.ParseSigningKey(string(private))
	require.NoError(t, err)
	v, err := audit.ParseVerifyingKey(string(public))
	require.NoError(t, err)
	require.Equal(t, s.ID(), v.ID())
	require.Contains(t, out, v.ID())

	code, _, errOut := ctl(t, "", "audit", "keygen", "k1")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "exists")
	require.Equal(t, private, must(os.ReadFile("k1.key")), "untouched")

	// The public file taken: the private one written first is removed.
	require.NoError(t, os.WriteFile("k2.pub", nil, 0o644))
	code, _, _ = ctl(t, "", "audit", "keygen", "k2")
	require.Equal(t, 1, code)
	require.NoFileExists(t, "k2.key")

	code, _, errOut = ctl(t, "", "audit", "keygen", "has+plus")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "no spaces, no +")
	require.Contains(t, errOut, "Run 'gsdctl --help'")
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestAuditVerifyAcceptsAnUntouchedLog(t *testing.T) {
	f := newAuditFiles(t)
	out := mustRun(t, "audit", "verify", "--log", f.log, "--checkpoint", f.checkpoint, "--key", f.pub)
	require.Contains(t, out, "checkpoint: world arena, 10 events, root ")
	require.Contains(t, out, "signed by [gsd-audit+")
	require.True(t, strings.HasSuffix(out, "log: 10 events\nok\n"), out)

	log, err := os.ReadFile(f.log)
	require.NoError(t, err)
	code, out, errOut := ctl(t, string(log), "audit", "verify", "--log", "-", "--checkpoint", f.checkpoint, "--key", f.pub)
	require.Equal(t, 0, code, errOut)
	require.True(t, strings.HasSuffix(out, "log: 10 events\nok\n"), "from stdin: %s", out)

	out = mustRun(t, "audit", "verify", "--log", f.log, "--checkpoint", f.checkpoint, "--key", f.pub, "--leaves", f.leaves, "-o", "json")
	var rep auditReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.True(t, rep.OK)
	require.True(t, rep.Named)
	require.Equal(t, "arena", rep.World)
	require.Equal(t, int64(10), rep.Size)
	require.Empty(t, rep.Problems)
	require.Contains(t, out, `"problems": []`)
}

func TestAuditVerifyNamesTamperedEvents(t *testing.T) {
	f := newAuditFiles(t)
	lines := append([][]byte{}, f.lines...)
	lines[3] = bytes.Replace(lines[3], []byte(`"player":"p0"`), []byte(`"player":"mallory"`), 1)
	lines = append(lines[:6], lines[7:]...) // seq 7 removed
	lines = append(lines, []byte("not json"))
	lines = append(lines, []byte(`{"world":"arena","seq":11}`))
	f.write(t, lines)

	code, out, errOut := ctl(t, "", "audit", "verify", "--log", f.log, "--checkpoint", f.checkpoint, "--key", f.pub, "--leaves", f.leaves)
	require.Equal(t, 1, code)
	require.Contains(t, out, "log: 10 events, 1 after the checkpoint (not covered)\n")
	require.Contains(t, out, "modified: seq 4 (line 4): its leaf is not the log's\n")
	require.Contains(t, out, "removed: seq 7\n")
	require.Contains(t, out, "malformed (line 10): not an event: invalid character")
	require.Contains(t, errOut, "does not match the checkpoint: 3 problem(s)")

	code, out, _ = ctl(t, "", "audit", "verify", "--log", f.log, "--checkpoint", f.checkpoint, "--key", f.pub, "-o", "json")
	require.Equal(t, 1, code)
	var rep auditReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.False(t, rep.OK)
	require.Contains(t, rep.Problems, audit.Problem{Kind: audit.Removed, Seq: 7})
}

func TestAuditVerifyNarrowsAChangeDownWithEarlierCheckpoints(t *testing.T) {
	f := newAuditFiles(t)
	lines := append([][]byte{}, f.lines...)
	lines[7] = bytes.Replace(lines[7], []byte(`"value":7`), []byte(`"value":70`), 1)
	f.write(t, lines)
	for _, order := range [][]string{{f.checkpoint, f.earlier}, {f.earlier, f.checkpoint}} {
		code, out, _ := ctl(t, "", "audit", "verify", "--log", f.log, "--checkpoint", order[0], "--checkpoint", order[1], "--key", f.pub)
		require.Equal(t, 1, code)
		require.Contains(t, out, "checkpoint: world arena, 10 events")
		require.Contains(t, out, "modified: seqs 6 to 10: an event changed after the checkpoint of 5 events agreed and by the one of 10")
	}
}

func TestAuditVerifyRefusesBadInputs(t *testing.T) {
	f := newAuditFiles(t)
	missing := filepath.Join(f.dir, "missing")
	garbage := filepath.Join(f.dir, "garbage")
	require.NoError(t, os.WriteFile(garbage, []byte("garbage\n"), 0o644))
	_, otherPub, err := audit.GenerateKey("gsd-audit")
	require.NoError(t, err)
	other := filepath.Join(f.dir, "other.pub")
	require.NoError(t, os.WriteFile(other, []byte(otherPub), 0o644))
	long := filepath.Join(f.dir, "long.ndjson")
	require.NoError(t, os.WriteFile(long, bytes.Repeat([]byte("x"), audit.MaxLineBytes+1), 0o644))

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--log", f.log, "--checkpoint", f.checkpoint}, "--log, --checkpoint and --key are required"},
		{[]string{"--log", f.log, "--checkpoint", f.checkpoint, "--checkpoint", garbage, "--key", f.pub}, "bad checkpoint"},
		{[]string{"--log", f.log, "--checkpoint", f.checkpoint, "--key", missing}, "no such file"},
		{[]string{"--log", f.log, "--checkpoint", f.checkpoint, "--key", garbage}, "public key"},
		{[]string{"--log", f.log, "--checkpoint", missing, "--key", f.pub}, "no such file"},
		{[]string{"--log", f.log, "--checkpoint", f.checkpoint, "--key", other}, "bad checkpoint"},
		{[]string{"--log", f.log, "--checkpoint", garbage, "--key", f.pub}, "bad checkpoint"},
		{[]string{"--log", f.log, "--checkpoint", f.checkpoint, "--key", f.pub, "--leaves", missing}, "no such file"},
		{[]string{"--log", f.log, "--checkpoint", f.checkpoint, "--key", f.pub, "--leaves", garbage}, "not a whole number"},
		{[]string{"--log", f.log, "--checkpoint", f.checkpoint, "--key", f.pub, "--leaves", f.checkpoint}, "leaf hashes do not match"},
		{[]string{"--log", missing, "--checkpoint", f.checkpoint, "--key", f.pub}, "no such file"},
		{[]string{"--log", long, "--checkpoint", f.checkpoint, "--key", f.pub}, "read log"},
	} {
		code, _, errOut := ctl(t, "", append([]string{"audit", "verify"}, c.args...)...)
		require.Equal(t, 1, code, c.args)
		require.Contains(t, errOut, c.want, c.args)
	}
}
