package client

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/api"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// playNode is one real store behind a real api Server.
type playNode struct {
	st  *store.Store
	url string
}

func startPlayNode(t *testing.T, tweak ...func(*api.Config)) *playNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	raftLn, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	raftAddr := raftLn.Addr().String()
	require.NoError(t, raftLn.Close())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := store.DefaultConfig()
	cfg.ID, cfg.Dir, cfg.RaftAddr, cfg.HTTPAddr = "n1", t.TempDir(), raftAddr, ln.Addr().String()
	cfg.Bootstrap, cfg.NoSync, cfg.Logger = true, true, log
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 200*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond
	st, err := store.New(cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, st.Close(ctx))
	})
	acfg := api.DefaultConfig()
	acfg.Logger = log
	acfg.Play.AckInterval = 10 * time.Millisecond
	for _, f := range tweak {
		f(&acfg)
	}
	srv, err := api.New(acfg, st, api.NewSingleGroupRouter(st), nil)
	require.NoError(t, err)
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.Listener.Close()
	ts.Listener = ln
	ts.Start()
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
	})
	require.Eventually(t, st.LeaderReady, 10*time.Second, 10*time.Millisecond)
	return &playNode{st: st, url: ts.URL}
}

func playCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func incrAction(player string, seq uint64) ActionRequest {
	return ActionRequest{Player: player, Seq: seq, Ops: []wire.Op{Incr("e", "score", 1)}}
}

func TestPlayResumesAfterDropsMidStreamWithoutGapsOrDuplicates(t *testing.T) {
	forEachEncoding(t, testPlayResumesAfterDropsMidStreamWithoutGapsOrDuplicates)
}

func testPlayResumesAfterDropsMidStreamWithoutGapsOrDuplicates(t *testing.T, enc string) {
	n := startPlayNode(t)
	c := New([]string{n.url}, WithBackoff(5*time.Millisecond, 50*time.Millisecond))
	ctx := playCtx(t)
	require.NoError(t, c.CreateWorld(ctx, "arena", wire.Rules{}))
	p, err := c.Play(ctx, "arena", PlayOptions{Encoding: enc, Player: "ann", AckInterval: 5 * time.Millisecond})
	require.NoError(t, err)
	defer p.Close()

	// Another player writes over HTTP while ann's connection drops again and again.
	const total = 200
	writer := make(chan error, 1)
	go func() {
		for i := uint64(1); i <= total; i++ {
			if _, err := c.Act(ctx, "arena", incrAction("bob", i)); err != nil {
				writer <- err
				return
			}
		}
		writer <- nil
	}()
	for want := uint64(1); want <= total; want++ {
		ev, err := p.Next(ctx)
		require.NoError(t, err)
		require.Equal(t, want, ev.Seq, "no gap, no duplicate")
		if want%25 == 0 {
			p.Drop()
		}
	}
	require.NoError(t, <-writer)
	_, resumes := p.Session()
	require.GreaterOrEqual(t, resumes, 1)
	require.Empty(t, p.Data(), "this player has no stored data")
}

func TestPlayActionsAreAnsweredAndSurviveAResume(t *testing.T) {
	forEachEncoding(t, testPlayActionsAreAnsweredAndSurviveAResume)
}

func testPlayActionsAreAnsweredAndSurviveAResume(t *testing.T, enc string) {
	n := startPlayNode(t)
	c := New([]string{n.url}, WithBackoff(5*time.Millisecond, 50*time.Millisecond))
	ctx := playCtx(t)
	require.NoError(t, c.CreateWorld(ctx, "arena", wire.Rules{}))
	p, err := c.Play(ctx, "arena", PlayOptions{Encoding: enc, Player: "ann"})
	require.NoError(t, err)
	defer p.Close()
	for i := uint64(1); i <= 20; i++ {
		ev, err := p.Act(ctx, incrAction("", i))
		require.NoError(t, err)
		require.Equal(t, "ann", ev.Player)
		require.Equal(t, i, ev.ClientSeq)
		if i%5 == 0 {
			p.Drop()
		}
	}
	for want := uint64(1); want <= 20; want++ {
		ev, err := p.Next(ctx)
		require.NoError(t, err)
		require.Equal(t, want, ev.Seq)
	}
	// A refused action is an *Error with the server's code.
	_, err = p.Act(ctx, incrAction("bob", 99))
	require.Equal(t, api.CodeForbidden, Code(err))
	rtt, err := p.Ping(ctx)
	require.NoError(t, err)
	require.Positive(t, rtt)
}

func TestPlayEndsForGoodOnRefusals(t *testing.T) { forEachEncoding(t, testPlayEndsForGoodOnRefusals) }

func testPlayEndsForGoodOnRefusals(t *testing.T, enc string) {
	n := startPlayNode(t)
	c := New([]string{n.url}, WithBackoff(5*time.Millisecond, 50*time.Millisecond))
	ctx := playCtx(t)
	require.NoError(t, c.CreateWorld(ctx, "arena", wire.Rules{}))
	_, err := c.Play(ctx, "nowhere", PlayOptions{Encoding: enc, Player: "ann"})
	var ce *CloseError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, 4404, ce.Code)
	require.Contains(t, ce.Error(), "play closed 4404")

	// Another connection of the same player replaces the first for good.
	p1, err := c.Play(ctx, "arena", PlayOptions{Encoding: enc, Player: "ann"})
	require.NoError(t, err)
	p2, err := c.Play(ctx, "arena", PlayOptions{Encoding: enc, Player: "ann"})
	require.NoError(t, err)
	defer p2.Close()
	_, err = p1.Next(ctx)
	require.ErrorAs(t, err, &ce)
	require.Equal(t, 4409, ce.Code)

	// Close forgets the session; the Play then reports it closed.
	require.NoError(t, p2.Close())
	_, err = p2.Next(ctx)
	require.ErrorIs(t, err, ErrPlayClosed)
	id, _ := p2.Session()
	require.Eventually(t, func() bool {
		_, err := n.st.SessionInfo("arena", id)
		return err != nil
	}, 10*time.Second, 10*time.Millisecond)
}

func TestPlayWithAuthRejectsBadTokensAndUsesTheSubject(t *testing.T) {
	forEachEncoding(t, testPlayWithAuthRejectsBadTokensAndUsesTheSubject)
}

func testPlayWithAuthRejectsBadTokensAndUsesTheSubject(t *testing.T, enc string) {
	key := []byte(fmt.Sprintf("%032d", 7))
	now := time.Now()
	n := startPlayNode(t, func(c *api.Config) {
		c.Auth = &api.AuthConfig{HS256Key: key, Audience: "game", Leeway: time.Second}
	})
	c := New([]string{n.url}, WithBackoff(5*time.Millisecond, 50*time.Millisecond))
	ctx := playCtx(t)
	createArena(ctx, t, n.url, key)
	for what, tok := range map[string]string{
		"forged":         hs256(t, []byte(fmt.Sprintf("%032d", 8)), "ann", "game", now.Add(time.Hour)),
		"expired":        hs256(t, key, "ann", "game", now.Add(-time.Hour)),
		"wrong audience": hs256(t, key, "ann", "other", now.Add(time.Hour)),
	} {
		_, err := c.Play(ctx, "arena", PlayOptions{Encoding: enc, Token: tok})
		require.Equal(t, 401, StatusCode(err), "%s: %v", what, err)
	}
	p, err := c.Play(ctx, "arena", PlayOptions{Encoding: enc, Token: hs256(t, key, "ann", "game", now.Add(time.Hour))})
	require.NoError(t, err)
	defer p.Close()
	ev, err := p.Act(ctx, incrAction("", 1))
	require.NoError(t, err)
	require.Equal(t, "ann", ev.Player)
}

func TestPlayWithKeyframeStartsFromTheWorldsState(t *testing.T) {
	forEachEncoding(t, testPlayWithKeyframeStartsFromTheWorldsState)
}

func testPlayWithKeyframeStartsFromTheWorldsState(t *testing.T, enc string) {
	n := startPlayNode(t)
	c := New([]string{n.url})
	ctx := playCtx(t)
	require.NoError(t, c.CreateWorld(ctx, "arena", wire.Rules{}))
	for i := uint64(1); i <= 3; i++ {
		_, err := c.Act(ctx, "arena", incrAction("bob", i))
		require.NoError(t, err)
	}
	p, err := c.Play(ctx, "arena", PlayOptions{Encoding: enc, Player: "ann", Keyframe: true})
	require.NoError(t, err)
	defer p.Close()
	kf := p.Keyframe()
	require.NotNil(t, kf)
	require.Equal(t, uint64(3), kf.Seq)
	require.Equal(t, wire.Int(3), *kf.Entities["e"].Fields["score"].Value)
	_, err = c.Act(ctx, "arena", incrAction("bob", 4))
	require.NoError(t, err)
	ev, err := p.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(4), ev.Seq, "the events after the keyframe")

	plain, err := c.Play(ctx, "arena", PlayOptions{Encoding: enc, Player: "cat"})
	require.NoError(t, err)
	defer plain.Close()
	require.Nil(t, plain.Keyframe())
}

// In a world with an interest grid, the player's whole area reaches Next
// first, as an AreaStatus event, and an entity that walks out as a
// LeaveStatus event; a HeadersOnly Play drops both and sees the events
// alone.
func TestPlayEnterSnapshotsReachNext(t *testing.T) {
	forEachEncoding(t, func(t *testing.T, enc string) {
		n := startPlayNode(t)
		c := New([]string{n.url})
		ctx := playCtx(t)
		require.NoError(t, n.st.CreateWorld(ctx, "g", fsm.Rules{Schema: fsm.Schema{Interest: fsm.InterestRule{Cell: 10, X: "x", Y: "y", Radius: 1}}}))
		_, err := c.Act(ctx, "g", ActionRequest{Player: "gm", Seq: 1, Ops: []wire.Op{Set("ann", "x", wire.Int(5)), Set("ann", "y", wire.Int(5)),
			Set("gem", "x", wire.Int(6)), Set("gem", "y", wire.Int(6)), Set("gem", "value", wire.Int(100)), Add("gem", "tags", wire.String("shiny"))}})
		require.NoError(t, err)
		p, err := c.Play(ctx, "g", PlayOptions{Encoding: enc, Player: "ann"})
		require.NoError(t, err)
		defer p.Close()
		ev, err := p.Next(ctx)
		require.NoError(t, err)
		require.Equal(t, AreaStatus, ev.Status)
		require.Equal(t, uint64(1), ev.Seq)
		require.Equal(t, wire.Int(100), *ev.Changes[slices.IndexFunc(ev.Changes, func(c wire.Change) bool { return c.Entity == "gem" && c.Field == "value" })].Value)
		require.Equal(t, uint64(1), ev.Versions["gem"]["value"])
		tags := ev.Changes[slices.IndexFunc(ev.Changes, func(c wire.Change) bool { return c.Field == "tags" })]
		require.Equal(t, []wire.Value{wire.String("shiny")}, tags.Set)
		require.Nil(t, tags.Value)

		_, err = c.Act(ctx, "g", ActionRequest{Player: "gm", Seq: 2, Ops: []wire.Op{Set("gem", "x", wire.Int(95))}})
		require.NoError(t, err)
		ev, err = p.Next(ctx)
		require.NoError(t, err)
		require.Equal(t, LeaveStatus, ev.Status, "the walk out is not sent: the leave says it")
		require.Equal(t, []wire.Change{{Entity: "gem", Op: "leave"}}, ev.Changes)
		require.Equal(t, uint64(2), ev.Seq)
		require.NoError(t, p.Close())

		h, err := c.Play(ctx, "g", PlayOptions{Encoding: enc, Player: "ann", HeadersOnly: true})
		require.NoError(t, err)
		defer h.Close()
		_, err = c.Act(ctx, "g", ActionRequest{Player: "gm", Seq: 3, Ops: []wire.Op{Set("gem", "x", wire.Int(6))}}) // enters
		require.NoError(t, err)
		// Read 3 before the walk out: in one hub batch with 4 it would be
		// judged by where gem stands at the batch's end (out of the area),
		// as docs/PROTOCOL.md says (api/play's
		// TestAWalkInAndOutWithinOneBatchIsFilteredByWhereTheEntityEnds).
		ev, err = h.Next(ctx)
		require.NoError(t, err)
		require.Equal(t, uint64(3), ev.Seq, "the area snapshot was dropped")
		_, err = c.Act(ctx, "g", ActionRequest{Player: "gm", Seq: 4, Ops: []wire.Op{Set("gem", "x", wire.Int(95))}}) // leaves
		require.NoError(t, err)
		_, err = c.Act(ctx, "g", ActionRequest{Player: "gm", Seq: 5, Ops: []wire.Op{Set("ann", "hp", wire.Int(1))}})
		require.NoError(t, err)
		ev, err = h.Next(ctx)
		require.NoError(t, err)
		require.Equal(t, uint64(5), ev.Seq, "the enter and leave were dropped")
	})
}

// A Play with Keyframe whose resume finds its missed events gone (4410
// archive_gap, as at a world's new home after a move) resumes again with
// a keyframe: Next returns the events it had, the keyframe as a
// KeyframeStatus event, then the events after it.
func TestPlayWithKeyframeResumesWithOneAfterAnArchiveGap(t *testing.T) {
	ev := func(seq int) map[string]any {
		return map[string]any{"world": "arena", "seq": seq, "index": seq, "time": 1, "player": "gm", "priority": "critical", "status": "applied"}
	}
	f := &fakeMover{script: []func(ctx context.Context, c *websocket.Conn){
		func(ctx context.Context, c *websocket.Conn) {
			send(ctx, c, map[string]any{"type": "welcome", "session": "s1", "resume_token": "rt", "seq": 0})
			send(ctx, c, map[string]any{"type": "keyframe", "world": "arena", "seq": 0, "time": 0, "entities": map[string]any{}})
			send(ctx, c, map[string]any{"type": "events", "from": 1, "seq": 1, "events": []any{ev(1)}})
			for { // drop once the client acked it (it read it)
				if m, err := recv(ctx, c); err != nil || m["type"] == "ack" {
					break
				}
			}
			_ = c.CloseNow()
		},
		func(ctx context.Context, c *websocket.Conn) {
			_ = c.Close(CloseArchiveGap, "archive_gap: seq 2 is not held")
		},
		func(ctx context.Context, c *websocket.Conn) {
			send(ctx, c, map[string]any{"type": "welcome", "session": "s1", "seq": 5})
			send(ctx, c, map[string]any{"type": "keyframe", "world": "arena", "seq": 5, "time": 0,
				"entities": map[string]any{"e": map[string]any{"version": 5, "fields": map[string]any{"n": map[string]any{"value": 5, "version": 5}}}}})
			send(ctx, c, map[string]any{"type": "events", "from": 6, "seq": 6, "events": []any{ev(6)}})
		},
	}}
	ts := httptest.NewServer(f)
	defer ts.Close()
	cl := New([]string{ts.URL}, WithBackoff(time.Millisecond, 10*time.Millisecond))
	defer cl.Close()
	ctx := playCtx(t)
	p, err := cl.Play(ctx, "arena", PlayOptions{Player: "ann", Keyframe: true})
	require.NoError(t, err)
	defer p.Close()
	var got []string
	for len(got) < 3 {
		e, err := p.Next(ctx)
		require.NoError(t, err, "%v", got)
		got = append(got, fmt.Sprintf("%s@%d", e.Status, e.Seq))
		if e.Status == KeyframeStatus {
			require.Equal(t, wire.Int(5), *e.Changes[0].Value)
		}
	}
	require.Equal(t, []string{"applied@1", "keyframe@5", "applied@6"}, got)
	require.Equal(t, uint64(5), p.Keyframe().Seq)
	firsts := f.seenFirsts()
	require.Len(t, firsts, 3)
	require.Equal(t, true, firsts[0]["keyframe"])
	require.Nil(t, firsts[1]["keyframe"], "a resume asks for no keyframe at first")
	require.Equal(t, float64(1), firsts[1]["last_seq"])
	require.Equal(t, true, firsts[2]["keyframe"], "after archive_gap it does")
}
