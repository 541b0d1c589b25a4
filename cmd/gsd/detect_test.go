package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/anticheat/detect"
	"github.com/gsd-dev/gsd/anticheat/moderation"
	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/gsd-dev/gsd/sink/webhook"
	"github.com/gsd-dev/gsd/spectator/registry"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// A node with --detect flags a funnel (ten one-way transfers of items
// from one player to another), records the flag in the moderation world
// and, with --flags-webhook, posts it and its review, signed.
func TestANodeWithDetectRecordsAFunnelAndPostsItAndItsReview(t *testing.T) {
	t.Parallel()
	secret := "a-flags-webhook-secret-for-tests"
	secretFile := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secretFile, []byte(secret+"\n"), 0o600))
	var mu sync.Mutex
	var posted []string // the events' JSON, in order
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var b webhook.Batch
		if r.Header.Get(webhook.HeaderKeyID) != "mods" || !webhook.Verify([]byte(secret), body, r.Header.Get(webhook.HeaderSignature)) ||
			json.Unmarshal(body, &b) != nil || b.World != moderation.World {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		for _, ev := range b.Events {
			j, _ := json.Marshal(ev)
			posted = append(posted, string(j))
		}
		mu.Unlock()
	}))
	defer srv.Close()
	postedSo := func(subs ...string) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			all := strings.Join(posted, "\n")
			for _, s := range subs {
				if !strings.Contains(all, s) {
					return false
				}
			}
			return true
		}
	}
	n := startNode(t, "det", t.TempDir(), "--detect", "--flags-webhook", srv.URL, "--flags-webhook-key-id", "mods", "--flags-webhook-secret-file", secretFile)
	n.waitLeader(t)
	c := n.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, c.CreateWorld(ctx, "arena", wire.Rules{}))
	for i := range funnelTransfers() {
		item := wire.String(fmt.Sprintf("gem%d", i))
		_, err := c.Act(ctx, "arena", client.ActionRequest{Player: "feeder", Seq: 2*i + 1, Ops: []wire.Op{client.Add("feeder", "items", item)}})
		require.NoError(t, err)
		ev, err := c.Act(ctx, "arena", client.ActionRequest{Player: "feeder", Seq: 2*i + 2, Ops: []wire.Op{
			{Kind: wire.OpRemove, Entity: "feeder", Field: "items", Value: item}, client.Add("main", "items", item)}})
		require.NoError(t, err)
		require.Equal(t, wire.StatusApplied, ev.Status)
	}
	metrics := func(sub string) func() bool {
		return func() bool {
			resp, err := http.Get("http://" + n.http + "/metrics")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			return err == nil && strings.Contains(string(b), sub)
		}
	}
	require.Eventually(t, metrics(`gsd_anticheat_flags_total{detector="funnel"} 1`), time.Minute, 20*time.Millisecond)
	require.Eventually(t, metrics(`gsd_anticheat_flags_recorded_total{result="new"} 1`), time.Minute, 20*time.Millisecond)

	// The record, replicated in the moderation world.
	var list wire.FlagList
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + n.http + "/v1/moderation/flags?detector=funnel")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(&list) == nil && len(list.Flags) == 1
	}, time.Minute, 20*time.Millisecond)
	f := list.Flags[0]
	require.Equal(t, []string{"feeder", "main"}, f.Players)
	require.Equal(t, "arena", f.World)
	require.Equal(t, "det", f.RaisedBy)
	require.Equal(t, moderation.StateOpen, f.State)
	require.NotEmpty(t, f.Evidence)
	require.Eventually(t, postedSo(f.ID, `"detector"`, `"funnel"`), time.Minute, 20*time.Millisecond)

	// A review, posted too, and counted.
	resp, err := http.Post("http://"+n.http+"/v1/moderation/flags/"+f.ID+"/confirm", "application/json",
		strings.NewReader(`{"by":"mia","reason":"ten gifts, none back"}`))
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	require.Eventually(t, postedSo(`confirmed`, `ten gifts, none back`), time.Minute, 20*time.Millisecond)
	require.Eventually(t, metrics(`gsd_anticheat_reviews_total{outcome="confirmed"} 1`), time.Minute, 20*time.Millisecond)
	requireContains(t, n.stderr.String(), "flags webhook on", "anticheat flag recorded")
}

func TestRunRejectsBadFlagsWebhookFlags(t *testing.T) {
	t.Parallel()
	secretFile := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secretFile, []byte("a-flags-webhook-secret-for-tests"), 0o600))
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no secret", []string{"--flags-webhook", "http://127.0.0.1:9/h"}, "--flags-webhook needs a secret"},
		{"missing secret file", []string{"--flags-webhook", "http://127.0.0.1:9/h", "--flags-webhook-secret-file", filepath.Join(t.TempDir(), "none")}, "--flags-webhook-secret-file"},
		{"secret without url", []string{"--flags-webhook-secret-file", secretFile}, "needs --flags-webhook"},
		{"bad url", []string{"--flags-webhook", "ftp://x/h", "--flags-webhook-secret-file", secretFile}, "--flags-webhook: webhook: URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(context.Background(), tc.args, io.Discard, &stderr)
			require.Equal(t, 1, code, stderr.String())
			requireContains(t, stderr.String(), tc.want)
		})
	}
}

func TestFlagsWebhookOffStartsNothingAndFailsOnABadDir(t *testing.T) {
	stop, err := (&flagsHookOptions{}).start(t.TempDir(), nil, nil, false, prometheus.NewRegistry(), slog.Default())
	require.NoError(t, err)
	stop()
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	t.Setenv(flagsHookSecretEnv, "a-flags-webhook-secret-for-tests")
	h := &flagsHookOptions{url: "http://127.0.0.1:9/h", keyID: "k"}
	_, err = h.start(file, nil, nil, false, prometheus.NewRegistry(), slog.Default())
	require.ErrorContains(t, err, "--flags-webhook")
}

func TestDetectOffStartsNothingAndItsMetricsRegisterOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	stop, err := (&detectOptions{}).start("", nil, nil, "n", reg, slog.Default())
	require.NoError(t, err)
	stop()
	mf, err := reg.Gather()
	require.NoError(t, err)
	require.Empty(t, mf)
	_, err = detect.NewMetrics(reg)
	require.NoError(t, err)
	_, err = (&detectOptions{on: true}).start("", nil, nil, "n", reg, slog.Default())
	require.ErrorContains(t, err, "anticheat metrics")
}

func TestDetectConfigIsReadOverTheDefaultsAndBadFilesAreUsageErrors(t *testing.T) {
	c, err := (&detectOptions{config: writeFile(t, `{"Funnel": {"MinTransfers": 3}}`)}).detectConfig()
	require.NoError(t, err)
	require.Equal(t, 3, c.Funnel.MinTransfers)
	require.Equal(t, detect.DefaultConfig().Fields, c.Fields)
	for _, bad := range []string{filepath.Join(t.TempDir(), "missing.json"), writeFile(t, `{"Speed": {"Share": 2}}`)} {
		_, err := (&detectOptions{config: bad}).start("", nil, nil, "n", prometheus.NewRegistry(), slog.Default())
		require.ErrorAs(t, err, new(usageError))
	}
	code := run(context.Background(), []string{"--detect-config", filepath.Join(t.TempDir(), "missing.json")}, &syncBuffer{}, &syncBuffer{})
	require.NotZero(t, code)
}

func TestAnArchiveGapIsAFeedGoneForTheDetectors(t *testing.T) {
	gap := fmt.Errorf("world w seq 3: %w", store.ErrArchiveGap)
	require.ErrorIs(t, feedGone(gap), detect.ErrFeedGone)
	require.ErrorIs(t, feedGone(gap), store.ErrArchiveGap)
	other := errors.New("no such world")
	require.Equal(t, other, feedGone(other))
	require.NoError(t, feedGone(nil))
}

func TestTheDetectorsDoNotFollowTheModerationWorld(t *testing.T) {
	got := judged([]fsm.WorldInfo{{ID: "arena"}, {ID: moderation.World}, {ID: feed.PositionsWorld}, {ID: "lobby"}, {ID: registry.World}})
	require.Equal(t, []fsm.WorldInfo{{ID: "arena"}, {ID: "lobby"}}, got)
}

// With --detect on every node, only the leader of a world's group
// evaluates it: the flag is raised by the leader, the follower raises
// nothing; a review sent to the follower is run on the leader, and every
// node lists the same record.
func TestOnlyTheLeaderEvaluatesAWorldAndAReviewSentToAFollowerRunsOnTheLeader(t *testing.T) {
	t.Parallel()
	n1 := startNode(t, "n1", t.TempDir(), "--detect")
	n1.waitLeader(t)
	n2 := startNode(t, "n2", t.TempDir(), "--detect", "--join", n1.http)
	n1.waitStatus(t, "has two voters", func(s client.Status) bool { return len(s.Servers) == 2 })
	n2.waitStatus(t, "knows the leader", func(s client.Status) bool { return s.Leader == "n1" })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := n1.client(t)
	require.NoError(t, c.CreateWorld(ctx, "arena", wire.Rules{}))
	funnel(ctx, t, c, "arena", "feeder", "main")
	var flags []wire.Flag
	require.Eventually(t, func() bool {
		var err error
		flags, err = c.Flags(ctx, client.FlagFilter{Detector: "funnel"})
		return err == nil && len(flags) == 1
	}, time.Minute, 20*time.Millisecond)
	require.Equal(t, "n1", flags[0].RaisedBy, "raised by the leader")
	require.NotContains(t, string(httpGet(t, n2.http, "/metrics")), `gsd_anticheat_flags_total{detector="funnel"}`, "the follower evaluates nothing")
	c2 := n2.client(t)
	rv, err := c2.ReviewFlag(ctx, flags[0].ID, "dismiss", "mia", "friends")
	require.NoError(t, err)
	require.Equal(t, "dismissed", rv.Flag.State)
	require.Eventually(t, func() bool {
		f, err := c2.Flag(ctx, flags[0].ID)
		return err == nil && f.State == "dismissed"
	}, time.Minute, 20*time.Millisecond)
}

// funnel commits in world funnelTransfers() one-way transfers of an item
// from feeder to main.
func funnel(ctx context.Context, t *testing.T, c *client.Client, world, feeder, main string) {
	t.Helper()
	transfers(ctx, t, c, world, feeder, main, 0, funnelTransfers())
}

// funnelTransfers is how many one-way transfers make a funnel by the
// default config: both the count (Funnel.MinTransfers) and the
// directions' log-likelihood ratio (Funnel.LLR, ln(2(1 − Back)) each).
func funnelTransfers() uint64 {
	fc := detect.DefaultConfig().Funnel
	return uint64(max(fc.MinTransfers, int(math.Ceil(fc.LLR/math.Log(2*(1-fc.Back))))))
}

// transfers commits in world the one-way transfers from to to (the
// first is 0) of an item from feeder to main, two events each.
func transfers(ctx context.Context, t *testing.T, c *client.Client, world, feeder, main string, from, to uint64) {
	t.Helper()
	for i := from; i < to; i++ {
		item := wire.String(fmt.Sprintf("gem%d", i))
		_, err := c.Act(ctx, world, client.ActionRequest{Player: feeder, Seq: 2*i + 1, Ops: []wire.Op{client.Add(feeder, "items", item)}})
		require.NoError(t, err)
		_, err = c.Act(ctx, world, client.ActionRequest{Player: feeder, Seq: 2*i + 2, Ops: []wire.Op{
			{Kind: wire.OpRemove, Entity: feeder, Field: "items", Value: item}, client.Add(main, "items", item)}})
		require.NoError(t, err)
	}
}

// A node of a shard map runs the detectors over every group it runs:
// funnels in worlds of two groups (1 and 2, neither the membership
// group) are both flagged and recorded in the moderation world, wherever
// the map places it.
func TestANodeWithAShardMapDetectsInEveryGroup(t *testing.T) {
	t.Parallel()
	httpAddr, raftAddr := freeAddr(t), freeAddr(t)
	n := startNodeAt(t, "s1", t.TempDir(), httpAddr, raftAddr, "--detect", "--shard-map", shardMapFile(t, "s1", raftAddr, httpAddr, 0))
	n.waitLeader(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := n.client(t)
	for _, w := range []string{"a", "b"} {
		require.NoError(t, c.CreateWorld(ctx, w, wire.Rules{}))
		funnel(ctx, t, c, w, "feeder-"+w, "main-"+w)
	}
	require.Eventually(t, func() bool {
		flags, err := c.Flags(ctx, client.FlagFilter{Detector: "funnel"})
		if err != nil || len(flags) != 2 {
			return false
		}
		worlds := []string{flags[0].World, flags[1].World}
		slices.Sort(worlds)
		return slices.Equal(worlds, []string{"a", "b"})
	}, time.Minute, 20*time.Millisecond)
}

func TestTheDetectorsSourceKnowsNoWorldItsGroupsDoNotHold(t *testing.T) {
	src := detectSource{groups: func() []*store.Store { return nil }, settle: &settling{log: slog.Default()}}
	require.Empty(t, src.Worlds())
	require.False(t, src.Settled(), "no groups yet (a shard map not known): nothing to trust")
	require.False(t, src.Evaluates("arena"))
	_, err := src.Subscribe("arena", 1)
	require.ErrorIs(t, err, fsm.ErrUnknownWorld)
}

// A leader change moves a world's evaluation to the new leader, which
// rebuilds the counts from the world's start: a funnel half committed
// before the change and half after is flagged by the new leader, with
// evidence from both halves.
func TestANewLeaderRebuildsTheCountsAndFlagsWhatSpansTheLeaderChange(t *testing.T) {
	t.Parallel()
	n1 := startNode(t, "n1", t.TempDir(), "--detect")
	n1.waitLeader(t)
	n2 := startNode(t, "n2", t.TempDir(), "--detect", "--join", n1.http)
	n1.waitStatus(t, "has two voters", func(s client.Status) bool { return len(s.Servers) == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := n1.client(t)
	require.NoError(t, c.CreateWorld(ctx, "arena", wire.Rules{}))
	half := funnelTransfers() / 2
	transfers(ctx, t, c, "arena", "feeder", "main", 0, half+1) // seqs 1 to 2(half+1): not yet a funnel
	require.NoError(t, c.TransferLeadership(ctx))
	n2.waitStatus(t, "leads", func(s client.Status) bool { return s.Leader == "n2" })
	c2 := n2.client(t)
	transfers(ctx, t, c2, "arena", "feeder", "main", half+1, funnelTransfers())
	var flags []wire.Flag
	require.Eventually(t, func() bool {
		var err error
		flags, err = c2.Flags(ctx, client.FlagFilter{Detector: "funnel"})
		return err == nil && len(flags) == 1
	}, time.Minute, 20*time.Millisecond)
	require.Equal(t, "n2", flags[0].RaisedBy, "raised by the new leader")
	require.Contains(t, flags[0].Evidence, wire.FlagRef{World: "arena", Seq: 2 * (half + 1)}, "evidence from before the leader change")
	require.NotContains(t, string(httpGet(t, n1.http, "/metrics")), `gsd_anticheat_flags_total{detector="funnel"}`, "the old leader saw too few")
}

// oneNodeStore starts a one-node group in-process and waits until it
// leads.
func oneNodeStore(t *testing.T, id string) *store.Store {
	t.Helper()
	cfg := store.DefaultConfig()
	cfg.ID, cfg.Dir, cfg.RaftAddr, cfg.HTTPAddr = id, t.TempDir(), freeAddr(t), "http-"+id
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 500*time.Millisecond, 500*time.Millisecond, 250*time.Millisecond
	cfg.NoSync, cfg.Bootstrap, cfg.Logger = true, true, slog.New(slog.DiscardHandler)
	st, err := store.New(cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	require.Eventually(t, st.LeaderReady, 10*time.Second, 10*time.Millisecond)
	return st
}

// A world moved from one group of the node to another is followed on the
// group it moved to only (the old group keeps a fenced copy for a while),
// from the seq after the move on; a world of any group is found.
func TestTheDetectorsFollowAMovedWorldOnTheGroupItMovedTo(t *testing.T) {
	ctx := context.Background()
	from, to := oneNodeStore(t, "g1"), oneNodeStore(t, "g2")
	src := detectSource{groups: func() []*store.Store { return []*store.Store{from, to} }, settle: &settling{log: slog.Default()}}
	require.Eventually(t, src.Settled, time.Minute, 20*time.Millisecond, "both groups applied their logs")
	require.NoError(t, from.CreateWorld(ctx, "w", fsm.Rules{}))
	require.NoError(t, to.CreateWorld(ctx, "other", fsm.Rules{}))
	for seq := uint64(1); seq <= 3; seq++ {
		_, _, err := from.Act(ctx, &fsm.Action{World: "w", Player: "p", Seq: seq, Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e", Field: "n", Value: fsm.Int(1)}}})
		require.NoError(t, err)
	}
	wi, err := from.World("w")
	require.NoError(t, err)
	fence, err := from.MoveWorld(ctx, "w", 2, wi.Incarnation)
	require.NoError(t, err)
	blob, _, err := from.ExportWorld("w", 1)
	require.NoError(t, err)
	_, err = to.ImportWorld(ctx, "w", blob)
	require.NoError(t, err)

	var ids []string
	for _, w := range src.Worlds() {
		require.Nil(t, w.Moved, w.ID)
		ids = append(ids, w.ID)
	}
	slices.Sort(ids)
	require.Equal(t, []string{"other", "w"}, ids, "each world once")
	require.True(t, src.Evaluates("w"))
	require.True(t, src.Evaluates("other"))
	moved, err := to.World("w")
	require.NoError(t, err)
	require.Equal(t, wi.Incarnation, moved.Incarnation, "the same incarnation: a Runner's follower goes on from where it was")
	_, _, err = to.Act(ctx, &fsm.Action{World: "w", Player: "p", Seq: 4, Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e", Field: "n", Value: fsm.Int(1)}}})
	require.NoError(t, err)
	sub, err := src.Subscribe("w", fence.Seq+1)
	require.NoError(t, err)
	evs, err := sub.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, fence.Seq+1, evs[0].Seq, "the moved world's next event, from the group it moved to")
}

// A node restarted halfway through a funnel flags it after the restart,
// with the uninterrupted run's score and evidence from both halves:
// from its detectors' checkpoint, or, when that file is damaged, from its
// event archive (logged; the node runs on).
func TestARestartedNodeRebuildsItsDetectorsFromTheArchive(t *testing.T) {
	t.Parallel()
	for _, damaged := range []bool{false, true} {
		t.Run(map[bool]string{false: "from its checkpoint", true: "from the archive, its checkpoint damaged"}[damaged], func(t *testing.T) {
			t.Parallel()
			dir, httpAddr, raftAddr := t.TempDir(), freeAddr(t), freeAddr(t)
			n := startNodeAt(t, "r1", dir, httpAddr, raftAddr, "--detect")
			n.waitLeader(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c := n.client(t)
			require.NoError(t, c.CreateWorld(ctx, "arena", wire.Rules{}))
			total := funnelTransfers()
			before := total - 4 // not yet a funnel; its last transfers are among the flag's last 8 pieces of evidence
			transfers(ctx, t, c, "arena", "feeder", "main", 0, before)
			waitObserved(t, n, 2*before, "the detectors read the transfers before the node stops")
			require.Equal(t, 0, n.stop(t))
			ckpt := filepath.Join(dir, detectCheckpointFile)
			b, err := os.ReadFile(ckpt)
			require.NoError(t, err, "saved at the stop")
			if damaged {
				b[len(b)/2] ^= 0x10
				require.NoError(t, os.WriteFile(ckpt, b, 0o600))
			}

			again := startNodeAt(t, "r1", dir, httpAddr, raftAddr, "--detect")
			again.waitLeader(t)
			c = again.client(t)
			transfers(ctx, t, c, "arena", "feeder", "main", before, total)
			var flags []wire.Flag
			require.Eventually(t, func() bool {
				var err error
				flags, err = c.Flags(ctx, client.FlagFilter{Detector: "funnel"})
				return err == nil && len(flags) == 1
			}, time.Minute, 20*time.Millisecond)
			back := detect.DefaultConfig().Funnel.Back
			require.InDelta(t, float64(total)*math.Log(2*(1-back)), flags[0].Score, 1e-9, "every transfer counted once (ln 1.8 each)")
			require.Contains(t, flags[0].Evidence, wire.FlagRef{World: "arena", Seq: 2 * before}, "evidence from before the restart")
			require.Contains(t, flags[0].Evidence, wire.FlagRef{World: "arena", Seq: 2 * total}, "and after")
			if damaged {
				require.Contains(t, again.stderr.String(), "checkpoint unusable")
			} else {
				require.Regexp(t, `restored from their checkpoint".* worlds=1 `, again.stderr.String(), "the checkpoint's mark of arena used")
			}
		})
	}
}

// A funnel whose first transfers were in a match world deleted after
// the node restarted, the rest in the next match world: the detectors'
// checkpoint keeps the deleted world's counts, so the funnel is flagged
// with every transfer, from both worlds. (Rebuilt from the archive alone,
// the deleted world's transfers would be gone and the last four no
// funnel.)
func TestARestartedNodeKeepsTheDetectorsEvidenceOfADeletedMatchWorld(t *testing.T) {
	t.Parallel()
	dir, httpAddr, raftAddr := t.TempDir(), freeAddr(t), freeAddr(t)
	n := startNodeAt(t, "d1", dir, httpAddr, raftAddr, "--detect")
	n.waitLeader(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := n.client(t)
	require.NoError(t, c.CreateWorld(ctx, "m1", wire.Rules{}))
	total := funnelTransfers()
	before := total - 4
	transfers(ctx, t, c, "m1", "feeder", "main", 0, before)
	waitObserved(t, n, 2*before, "the detectors read the match before the node stops")
	require.Equal(t, 0, n.stop(t))

	again := startNodeAt(t, "d1", dir, httpAddr, raftAddr, "--detect")
	again.waitLeader(t)
	c = again.client(t)
	require.NoError(t, c.CreateWorld(ctx, "m2", wire.Rules{}))
	transfers(ctx, t, c, "m2", "feeder", "main", 0, 1)
	// The detectors scanned m1 after the restart (its delete comes later
	// than their first scans) and read nothing of it again.
	waitObserved(t, again, 2, "m2's first transfer, nothing of m1 again")
	_, err := c.DeleteWorld(ctx, "m1", 0)
	require.NoError(t, err)
	transfers(ctx, t, c, "m2", "feeder", "main", 1, 4)
	var flags []wire.Flag
	require.Eventually(t, func() bool {
		var err error
		flags, err = c.Flags(ctx, client.FlagFilter{Detector: "funnel"})
		return err == nil && len(flags) == 1
	}, time.Minute, 20*time.Millisecond)
	back := detect.DefaultConfig().Funnel.Back
	require.InDelta(t, float64(total)*math.Log(2*(1-back)), flags[0].Score, 1e-9, "every transfer counted once, the deleted world's too")
	require.Contains(t, flags[0].Evidence, wire.FlagRef{World: "m1", Seq: 2 * before}, "evidence from the deleted world")
	require.Contains(t, flags[0].Evidence, wire.FlagRef{World: "m2", Seq: 8})
	require.Equal(t, "m2", flags[0].World)
}

// waitObserved waits until n's detectors observed at least events since
// it started (gsd_anticheat_events_observed_total), then requires that
// they observed exactly that many.
func waitObserved(t *testing.T, n *testNode, events uint64, msg string) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^gsd_anticheat_events_observed_total (\d+)$`)
	var got uint64
	require.Eventually(t, func() bool {
		m := re.FindSubmatch(httpGet(t, n.http, "/metrics"))
		if m == nil {
			return false
		}
		got, _ = strconv.ParseUint(string(m[1]), 10, 64)
		return got >= events
	}, time.Minute, 20*time.Millisecond, msg)
	require.Equal(t, events, got, msg)
}

// A node whose detectors observed ten events, stopped gracefully and
// restarted with no new events in that world, observes none of them
// again: its detectors wait for the group to replay its log (the store
// takes no snapshot at its stop, so the world is missing until then) and
// go on from the checkpoint's mark. Events of another world after the
// restart are observed, once. (Before the fix the metric went to 10
// again: the world was followed from seq 1.)
func TestARestartedNodeObservesNoEventTwice(t *testing.T) {
	t.Parallel()
	dir, httpAddr, raftAddr := t.TempDir(), freeAddr(t), freeAddr(t)
	n := startNodeAt(t, "o1", dir, httpAddr, raftAddr, "--detect")
	n.waitLeader(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := n.client(t)
	require.NoError(t, c.CreateWorld(ctx, "arena", wire.Rules{}))
	transfers(ctx, t, c, "arena", "feeder", "main", 0, 5)
	waitObserved(t, n, 10, "ten events observed before the stop")
	require.Equal(t, 0, n.stop(t))

	again := startNodeAt(t, "o1", dir, httpAddr, raftAddr, "--detect")
	again.waitLeader(t)
	c = again.client(t)
	require.NoError(t, c.CreateWorld(ctx, "later", wire.Rules{}))
	transfers(ctx, t, c, "later", "x", "y", 0, 1)
	waitObserved(t, again, 2, "the new world's two events, none of arena's again")
	require.Regexp(t, `restored from their checkpoint".* worlds=1 `, again.stderr.String())
}

// Under a shard map the flags webhook follows the moderation world
// wherever the map puts it (here group 2, not the membership group 0):
// a funnel flagged in a group-1 world is posted.
func TestTheFlagsWebhookFollowsTheModerationWorldOnItsShard(t *testing.T) {
	t.Parallel()
	secret := "a-flags-webhook-secret-for-tests"
	secretFile := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secretFile, []byte(secret), 0o600))
	var mu sync.Mutex
	var posted strings.Builder
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !webhook.Verify([]byte(secret), body, r.Header.Get(webhook.HeaderSignature)) {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		posted.Write(body)
		mu.Unlock()
	}))
	defer srv.Close()
	httpAddr, raftAddr := freeAddr(t), freeAddr(t)
	smap := writeFile(t, fmt.Sprintf(`{
  "membership": 0,
  "nodes": {"s1": {"raft": %q, "http": %q}},
  "shards": [{"id": 0, "voters": ["s1"]}, {"id": 1, "voters": ["s1"]}, {"id": 2, "voters": ["s1"]}],
  "worlds": {"a": 1, %q: 2}
}`, raftAddr, httpAddr, moderation.World))
	n := startNodeAt(t, "s1", t.TempDir(), httpAddr, raftAddr, "--detect", "--shard-map", smap,
		"--flags-webhook", srv.URL, "--flags-webhook-secret-file", secretFile)
	n.waitLeader(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := n.client(t)
	require.NoError(t, c.CreateWorld(ctx, "a", wire.Rules{}))
	funnel(ctx, t, c, "a", "feeder", "main")
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(posted.String(), `"funnel"`) && strings.Contains(posted.String(), moderation.World)
	}, time.Minute, 20*time.Millisecond, "the flag recorded on group 2 was never posted")
}
