package main

import (
	"encoding/json"
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
