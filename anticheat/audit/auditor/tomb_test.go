package auditor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
)

// export is world's events in src as an NDJSON match log.
func exportOf(t *testing.T, src *source, world string) []byte {
	t.Helper()
	src.mu.Lock()
	defer src.mu.Unlock()
	var b bytes.Buffer
	for _, e := range src.events[world] {
		require.NoError(t, json.NewEncoder(&b).Encode(e.Wire()))
	}
	return b.Bytes()
}

func verifies(t *testing.T, log []byte, msg []byte, v note.Verifier) audit.Checkpoint {
	t.Helper()
	cp, _, err := audit.OpenCheckpoint(msg, v)
	require.NoError(t, err)
	rep, err := audit.VerifyLog(bytes.NewReader(log), cp, nil)
	require.NoError(t, err)
	require.True(t, rep.OK(), "%v", rep.Problems)
	require.Zero(t, rep.Beyond)
	return cp
}

func TestAWorldCreatedAgainGetsANewTreeAndTheOldOneATombstone(t *testing.T) {
	src, st, logs := newSource(), newStores(), &syncBuf{}
	cfg, v := signingConfig(t, logs)
	src.add("arena", 5)
	src.add("lobby", 2)
	a, err := New(cfg, src, st)
	require.NoError(t, err)
	start(t, a)
	waitSize(t, a, "arena", 5)
	waitSize(t, a, "lobby", 2)
	first, lobby := exportOf(t, src, "arena"), exportOf(t, src, "lobby")

	// Deleted and created again, and more events than the old tree held;
	// lobby deleted for good.
	src.recreate("arena", 100)
	src.recreate("lobby")
	src.add("arena", 7)
	waitSize(t, a, "arena", 7)
	second := exportOf(t, src, "arena")
	require.Eventually(t, func() bool { return st.tomb("arena", 0) != "" && st.tomb("lobby", 0) != "" }, 10*time.Second, time.Millisecond)

	// Both incarnations' logs verify: the old one against its tombstone.
	msg, err := a.CheckpointOf("arena", 0)
	require.NoError(t, err)
	cp := verifies(t, first, msg, v)
	require.Equal(t, audit.Checkpoint{Origin: "arena", Size: 5, Root: cp.Root, Tombstone: true, LastIndex: 5, LastTime: 5}, cp)
	msg, err = a.CheckpointOf("arena", 100)
	require.NoError(t, err)
	cp = verifies(t, second, msg, v)
	require.Equal(t, uint64(100), cp.Incarnation)
	require.False(t, cp.Tombstone)
	l, err := a.LogOf("arena", 100)
	require.NoError(t, err)
	cur, err := a.Log("arena")
	require.NoError(t, err)
	require.Same(t, cur, l)
	msg, err = a.CheckpointOf("lobby", 0)
	require.NoError(t, err)
	cp = verifies(t, lobby, msg, v)
	require.True(t, cp.Tombstone)
	_, err = a.Log("lobby")
	require.ErrorIs(t, err, fsm.ErrUnknownWorld)
	_, err = a.LogOf("arena", 55)
	require.ErrorIs(t, err, fsm.ErrUnknownWorld)

	// The old export checked against the new tree's checkpoint fails.
	rep, err := audit.VerifyLog(bytes.NewReader(first), cp, nil)
	require.NoError(t, err)
	require.False(t, rep.OK())
	require.NotContains(t, logs.String(), "level=ERROR")
	require.Equal(t, 1, a.Stats().Worlds)
}

func TestARestartedAuditorServesAndBuriesOlderIncarnations(t *testing.T) {
	src, st, logs := newSource(), newStores(), &syncBuf{}
	cfg, v := signingConfig(t, logs)
	src.add("arena", 4)
	a, err := New(cfg, src, st)
	require.NoError(t, err)
	stop := run(a)
	waitSize(t, a, "arena", 4)
	stop()
	first := exportOf(t, src, "arena")

	// Deleted and created again while the node was down.
	src.recreate("arena", 50)
	src.add("arena", 2)
	b, err := New(cfg, src, st)
	require.NoError(t, err)
	start(t, b)
	waitSize(t, b, "arena", 2)
	require.Eventually(t, func() bool { return st.tomb("arena", 0) != "" }, 10*time.Second, time.Millisecond)
	msg, err := b.CheckpointOf("arena", 0)
	require.NoError(t, err)
	cp := verifies(t, first, msg, v)
	require.True(t, cp.Tombstone)
	require.Zero(t, cp.LastIndex, "not seen by this run")

	// A third run opens the old tree from the store, its tombstone too.
	c, err := New(cfg, src, st)
	require.NoError(t, err)
	again, err := c.CheckpointOf("arena", 0)
	require.NoError(t, err)
	require.Equal(t, msg, again)
	l, err := c.LogOf("arena", 0)
	require.NoError(t, err)
	require.Equal(t, int64(4), l.Size())
	l2, err := c.LogOf("arena", 0)
	require.NoError(t, err)
	require.Same(t, l, l2)

	// Without a key, a tombstone is not signed.
	cfg.Signers = nil
	d, err := New(cfg, src, st)
	require.NoError(t, err)
	_, err = d.CheckpointOf("arena", 0)
	require.ErrorIs(t, err, ErrNoKey)
	_, err = d.CheckpointOf("arena", 7)
	require.ErrorIs(t, err, fsm.ErrUnknownWorld)
}

func TestTombstoneFailuresAreReportedAndLogged(t *testing.T) {
	src, st, logs := newSource(), newStores(), &syncBuf{}
	cfg, _ := signingConfig(t, logs)
	boom := errors.New("disk full")

	// A deleted world whose tree never opened has nothing to bury; a
	// tombstone that cannot be written is logged.
	src.add("broken", 1)
	src.add("arena", 3)
	st.set(func(s *stores) { s.fail["broken"], s.putErr = boom, boom })
	a, err := New(cfg, src, st)
	require.NoError(t, err)
	stop := run(a)
	waitSize(t, a, "arena", 3)
	src.recreate("broken")
	src.recreate("arena", 9)
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "audit tombstone not written") }, 10*time.Second, time.Millisecond)
	stop()
	// Not written: the deleted incarnation's checkpoint now, unmarked.
	msg, err := a.CheckpointOf("arena", 0)
	require.NoError(t, err)
	require.NotContains(t, string(msg), "tombstone")

	// Listing the older trees fails; reading a tombstone fails; opening
	// an older tree fails.
	st.set(func(s *stores) { s.putErr, s.listErr = nil, boom })
	b, err := New(cfg, src, st)
	require.NoError(t, err)
	_, err = b.Log("arena")
	require.NoError(t, err)
	require.Contains(t, logs.String(), "audit trees of older incarnations not listed")
	_, err = b.CheckpointOf("arena", 0)
	require.ErrorIs(t, err, boom)
	st.set(func(s *stores) { s.listErr, s.tombErr = nil, boom })
	c, err := New(cfg, src, st)
	require.NoError(t, err)
	_, err = c.Log("arena")
	require.NoError(t, err)
	require.Empty(t, st.tomb("arena", 0), "skipped: read again when asked for")
	_, err = c.CheckpointOf("arena", 0)
	require.ErrorIs(t, err, boom)
	st.set(func(s *stores) { s.tombErr, s.fail["arena"] = nil, boom })
	d, err := New(cfg, src, st)
	require.NoError(t, err)
	_, err = d.Log("arena")
	require.NoError(t, err)
	require.Contains(t, logs.String(), "audit tree of a deleted incarnation cannot be opened")
	_, err = d.CheckpointOf("arena", 0)
	require.ErrorIs(t, err, boom)

	// A tombstone that does not parse.
	st.set(func(s *stores) { delete(s.fail, "arena"); s.tombs["arena"] = "garbage" })
	e, err := New(cfg, src, st)
	require.NoError(t, err)
	_, err = e.CheckpointOf("arena", 0)
	require.ErrorIs(t, err, audit.ErrCheckpoint)
}

func TestAFeedOpenedAfterAWorldWasCreatedAgainIsNotLoggedAsTheOldOne(t *testing.T) {
	src, st, logs := newSource(), newStores(), &syncBuf{}
	src.add("arena", 3)
	a, err := New(testConfig(logs), src, st)
	require.NoError(t, err)
	l, err := a.Log("arena")
	require.NoError(t, err)
	src.recreate("arena", 8)
	src.add("arena", 1)
	err = a.append(context.Background(), &world{id: "arena", log: l})
	require.ErrorIs(t, err, fsm.ErrUnknownWorld)
	require.Zero(t, l.Size())
}

func TestAFollowerStillRunningWhenItsWorldIsRetiredBuriesIt(t *testing.T) {
	src, st, logs := newSource(), newStores(), &syncBuf{}
	src.add("arena", 3)
	a, err := New(testConfig(logs), src, st)
	require.NoError(t, err)
	_, err = a.Log("arena") // before Run: opened, not followed
	require.NoError(t, err)
	a.mu.Lock()
	w := a.worlds["arena"]
	a.mu.Unlock()
	w.mu.Lock()
	w.running = true // as if its follower were reading
	w.mu.Unlock()
	src.recreate("arena", 8)
	a.scan()
	require.Empty(t, st.tomb("arena", 0), "buried by its follower once it stops")
	a.wg.Add(1)
	a.run(context.Background(), func() {}, w)
	require.Equal(t, "arena\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\ntombstone 0 0\n", st.tomb("arena", 0))
	require.NotContains(t, logs.String(), "level=ERROR")
}

// loggedOnce commits the events of sizes to src and runs an auditor over
// src until it logged them all, then stops it: the node before a restart.
func loggedOnce(t *testing.T, src *source, st *stores, logs *syncBuf, sizes map[string]int) {
	t.Helper()
	for w, n := range sizes {
		src.add(w, n)
	}
	a, err := New(testConfig(logs), src, st)
	require.NoError(t, err)
	stop := run(a)
	defer stop()
	for w, n := range sizes {
		waitSize(t, a, w, int64(n))
	}
}

func TestAWorldDeletedForGoodWhileTheNodeWasDownGetsItsTombstone(t *testing.T) {
	src, st, logs := newSource(), newStores(), &syncBuf{}
	loggedOnce(t, src, st, logs, map[string]int{"arena": 3, "lobby": 1})

	src.recreate("arena")
	b, err := New(testConfig(logs), src, st)
	require.NoError(t, err)
	start(t, b)
	require.Eventually(t, func() bool { return st.tomb("arena", 0) != "" }, 10*time.Second, time.Millisecond)
	cp, err := audit.ParseCheckpoint(st.tomb("arena", 0))
	require.NoError(t, err)
	require.True(t, cp.Tombstone)
	require.Equal(t, int64(3), cp.Size)
	require.Empty(t, st.tomb("lobby", 0), "still held")

	// The stored worlds cannot be listed: logged, nothing else.
	st.set(func(s *stores) { s.listAll = errors.New("io error") })
	c, err := New(testConfig(logs), src, st)
	require.NoError(t, err)
	start(t, c)
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "audit trees not listed") }, 10*time.Second, time.Millisecond)
}
