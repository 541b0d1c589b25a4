//go:build gsd_failpoints

package store

import (
	"errors"
	"log/slog"
	"syscall"
	"testing"
	"time"
)

func TestParseFailpoints(t *testing.T) {
	m, err := parseFailpoints([]byte("# comment\nraft-log-append=sleep(250ms)\narchive-write = error(enospc)\nraft-stable-set=error(eio)\nsnapshot-close=crash\nraft-log-compact=off\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	if a := m[FPRaftLogAppend]; a == nil || a.kind != "sleep" || a.delay != 250*time.Millisecond {
		t.Fatalf("sleep: %+v", a)
	}
	if a := m[FPArchiveWrite]; a == nil || !errors.Is(a.err, syscall.ENOSPC) {
		t.Fatalf("enospc: %+v", a)
	}
	if a := m[FPRaftStable]; a == nil || !errors.Is(a.err, syscall.EIO) {
		t.Fatalf("eio: %+v", a)
	}
	if a := m[FPSnapshotClose]; a == nil || a.kind != "crash" {
		t.Fatalf("crash: %+v", a)
	}
	if _, ok := m[FPRaftLogCompact]; ok {
		t.Fatal("off must not be armed")
	}
	for _, bad := range []string{"x", "a=sleep(nope)", "a=error(efoo)", "a=explode"} {
		if _, err := parseFailpoints([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	fp := &failpoints{log: slog.Default()}
	fp.state.Store(&m)
	if err := fp.eval(FPArchiveWrite); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("eval: %v", err)
	}
	if err := fp.eval("unarmed"); err != nil {
		t.Fatal(err)
	}
}
