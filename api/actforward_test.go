package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// playAction is a play action of player, with its raw form as a play
// connection reads it.
func playAction(world, player string, seq uint64) (*fsm.Action, json.RawMessage) {
	a := &fsm.Action{World: world, Player: player, Seq: seq, Priority: fsm.PriorityCritical,
		Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e1", Field: "score", By: 1}}}
	raw, _ := json.Marshal(map[string]any{"seq": seq, "ops": []map[string]any{{"op": "incr", "entity": "e1", "field": "score", "by": 1}}})
	return a, raw
}

func TestForwardedPlayActionAnswersLikeTheDirectPath(t *testing.T) {
	t.Parallel()
	leader, follower := newPair(t)
	ctx := context.Background()
	rich := &fsm.Event{World: "arena", Seq: 7, Index: 17, Time: 1234, Player: "p1", ClientSeq: 1, Priority: fsm.PriorityCritical,
		Status: fsm.StatusApplied, Changes: []fsm.Change{
			{Entity: "e1", Field: "score", Op: fsm.OpIncr, Value: fsm.Int(3), Version: 7},
			{Entity: "e1", Field: "name", Op: fsm.OpSet, Value: fsm.String("ann"), Version: 7},
			{Entity: "e2", Op: fsm.OpDelete, Version: 5},
		}}
	conflict := &fsm.Event{World: "arena", Seq: 8, Index: 18, Time: 1235, Player: "p1", ClientSeq: 1, Status: fsm.StatusConflict,
		Changes: []fsm.Change{{Entity: "e1", Field: "tags", Set: []fsm.Value{fsm.String("a"), fsm.String("b")}, Version: 4, Exists: true}}}
	rejected := &fsm.Event{World: "arena", Seq: 9, Index: 19, Time: 1236, Player: "p1", ClientSeq: 1, Status: fsm.StatusRejected, Reason: "cooldown"}
	for _, c := range []struct {
		name  string
		world string
		hook  func(context.Context, *fsm.Action) (*fsm.Event, bool, error)
		code  string // the error's code; "" for an event
	}{
		{"applied", "arena", func(context.Context, *fsm.Action) (*fsm.Event, bool, error) { return rich, false, nil }, ""},
		{"conflict", "arena", func(context.Context, *fsm.Action) (*fsm.Event, bool, error) { return conflict, false, nil }, ""},
		{"rejected", "arena", func(context.Context, *fsm.Action) (*fsm.Event, bool, error) { return rejected, false, nil }, ""},
		{"duplicate", "arena", func(context.Context, *fsm.Action) (*fsm.Event, bool, error) { return rich, true, nil }, ""},
		{"unknown world", "nowhere", nil, fsm.CodeUnknownWorld},
		{"seq reused", "arena", func(context.Context, *fsm.Action) (*fsm.Event, bool, error) {
			return nil, false, fsm.ErrSeqReused
		}, fsm.CodeSeqReused},
		{"overloaded", "arena", func(context.Context, *fsm.Action) (*fsm.Event, bool, error) {
			return nil, false, store.ErrOverloaded
		}, edge.CodeOverloaded},
		{"rate limited", "arena", func(context.Context, *fsm.Action) (*fsm.Event, bool, error) {
			return nil, false, &edge.RateLimitError{Player: "p1", Wait: time.Second}
		}, edge.CodeRateLimited},
		{"outcome unknown", "arena", func(context.Context, *fsm.Action) (*fsm.Event, bool, error) {
			return nil, false, store.ErrOutcomeUnknown
		}, edge.CodeOutcomeUnknown},
		{"not leader", "arena", func(context.Context, *fsm.Action) (*fsm.Event, bool, error) {
			return nil, false, store.ErrNotLeader
		}, edge.CodeNotLeader},
	} {
		t.Run(c.name, func(t *testing.T) {
			leader.Fake.Set(func(f *apitest.Fake) { f.ActHook = c.hook })
			a, raw := playAction(c.world, "p1", 1)
			direct, derr := leader.srv.ActOnLeader(ctx, a, raw, "")
			a, raw = playAction(c.world, "p1", 1)
			fwd, ferr := follower.srv.ActOnLeader(ctx, a, raw, "")
			if c.code == "" {
				require.NoError(t, derr)
				require.NoError(t, ferr)
				require.Equal(t, direct, fwd, "the forwarded answer is the direct one")
				return
			}
			require.Error(t, derr)
			require.Error(t, ferr)
			ds, dc := edge.Classify(derr, true)
			fs, fc := edge.Classify(ferr, true)
			require.Equal(t, c.code, dc, "%v", derr)
			require.Equal(t, []any{ds, dc}, []any{fs, fc}, "forwarded: %v", ferr)
		})
	}
	leader.Fake.Set(func(f *apitest.Fake) { f.ActHook = nil })

	// A player banned on the leader (the follower may not have applied
	// the ban yet) is refused there, as the public route refuses it.
	leader.Fake.Set(func(f *apitest.Fake) { f.BanMap = map[string]string{"arena/p9": "spam"} })
	a, raw := playAction("arena", "p9", 1)
	_, err := follower.srv.ActOnLeader(ctx, a, raw, "")
	status, code := edge.Classify(err, true)
	require.Equal(t, []any{http.StatusForbidden, fsm.CodeBanned}, []any{status, code}, "%v", err)

	// The same seq answers the same outcome, marked a duplicate.
	a, raw = playAction("arena", "p2", 1)
	first, err := follower.srv.ActOnLeader(ctx, a, raw, "")
	require.NoError(t, err)
	a, raw = playAction("arena", "p2", 1)
	again, err := follower.srv.ActOnLeader(ctx, a, raw, "")
	require.NoError(t, err)
	require.True(t, again.Duplicate)
	again.Duplicate = false
	require.Equal(t, first, again)
	require.Zero(t, follower.Fake.Acts)
}

func TestActRouteTrustsTheIdentityOnlyFromAPeerBeyondDoubt(t *testing.T) {
	t.Parallel()
	tok := func(player, role string) []string {
		return []string{"Authorization", "Bearer " + sign(t, jwt.SigningMethodHS256, keys.HS, edge.AdminClaims{RegisteredClaims: claims(player), Role: role})}
	}
	path := edge.InternalActRoutePath("arena")
	fwd := []string{edge.HeaderForwarded, "1"}
	withRole := func(player, role string, seq uint64) string {
		a, _ := playAction("arena", player, seq)
		a.Role = role
		return actRouteBody(a)
	}
	result := func(t *testing.T, e *testEnv, body string, hdr ...string) edge.ActRouteResult {
		t.Helper()
		code, h, b := e.Do("POST", path, body, hdr...)
		require.Equal(t, 200, code, "%s", b)
		require.Equal(t, "1", h.Get(edge.HeaderActRoute))
		var out edge.ActRouteAnswer
		require.NoError(t, json.Unmarshal(b, &out))
		require.Len(t, out.Results, 1)
		return out.Results[0]
	}
	newArena := func(opts ...func(*Config)) *testEnv {
		f := apitest.NewFake()
		require.NoError(t, f.CreateWorld(context.Background(), "arena", fsm.Rules{}))
		return newEnv(t, f, opts...)
	}

	// Auth on, no secret: anyone who reaches the port may call it, so the
	// token is verified and must name the action's player, whose role it
	// gives.
	open := newArena(withAuth)
	m := open.RequireError(403, edge.CodeForbidden, "POST", path, withRole("p2", "", 1), append(fwd, tok("p1", "")...)...)
	require.Contains(t, m["error"], `the token is for player "p1"`)
	open.RequireError(401, edge.CodeUnauthorized, "POST", path, withRole("p1", "", 1), fwd...)
	require.Zero(t, open.Fake.Acts, "a forged identity acts nothing")
	r := result(t, open, withRole("p1", fsm.RoleAdmin, 1), append(fwd, tok("p1", "scout")...)...)
	require.NotNil(t, r.Event, "%+v", r)
	require.Equal(t, "scout", open.Fake.LastAction.Role, "the role is the token's, not the body's")

	// Auth off, no secret: actions carry no role, as on the public route.
	off := newArena()
	result(t, off, withRole("p1", fsm.RoleAdmin, 1), fwd...)
	require.Empty(t, off.Fake.LastAction.Role)

	// With the cluster secret (compared before the handler runs) the
	// caller is a node of the cluster: the identity it sends is the one
	// its play connection's hello verified.
	keyed := newArena(withAuth, withSecret)
	keyed.RequireError(401, edge.CodeUnauthorized, "POST", path, withRole("p2", "", 1), append(fwd, tok("p2", "")...)...)
	r = result(t, keyed, withRole("p2", "scout", 1), append(fwd, edge.HeaderClusterKey, testSecret)...)
	require.NotNil(t, r.Event, "%+v", r)
	require.Equal(t, "p2", keyed.Fake.LastAction.Player)
	require.Equal(t, "scout", keyed.Fake.LastAction.Role)

	// Only nodes call it, and only with actions of the path's world.
	off.RequireError(403, edge.CodeForbidden, "POST", path, withRole("p1", "", 2))
	off.RequireError(400, fsm.CodeMalformed, "POST", edge.InternalActRoutePath("lobby"), withRole("p1", "", 2), fwd...)
	off.RequireError(400, fsm.CodeMalformed, "POST", path, `{"seq":1}`, fwd...)
	off.RequireError(400, fsm.CodeMalformed, "POST", path, actRouteBody(), fwd...)
	invalid, _ := playAction("arena", "", 3) // no player: Validate refuses it
	r = result(t, off, actRouteBody(invalid), fwd...)
	require.Equal(t, []any{400, fsm.CodeMalformed}, []any{r.Status, r.Code}, "%+v", r)
	notAction := string(fsm.EncodeBatch(&fsm.Batch{Commands: []fsm.Command{{Kind: fsm.CmdSessionClose, Session: &fsm.SessionCmd{World: "arena", ID: "s1"}}}}))
	off.RequireError(400, fsm.CodeMalformed, "POST", path, notAction, fwd...)

	// Several actions in one call: one result each, in order.
	a1, _ := playAction("arena", "p1", 10)
	a2, _ := playAction("arena", "p2", 10)
	a3, _ := playAction("arena", "p1", 10)
	a3.Ops[0].By = 2 // the same seq, another payload
	code, _, b := off.Do("POST", path, actRouteBody(a1, a2, a3), fwd...)
	require.Equal(t, 200, code, "%s", b)
	var out edge.ActRouteAnswer
	require.NoError(t, json.Unmarshal(b, &out))
	require.Len(t, out.Results, 3)
	require.NotNil(t, out.Results[1].Event, "%+v", out.Results[1])
	require.Equal(t, "p2", out.Results[1].Event.Player)
	// a1 and a3 race for p1's seq 10: one is applied, the other refused.
	won, lost := out.Results[0], out.Results[2]
	if won.Event == nil {
		won, lost = lost, won
	}
	require.NotNil(t, won.Event, "%+v", out.Results)
	require.Equal(t, "p1", won.Event.Player)
	require.Equal(t, []any{409, fsm.CodeSeqReused}, []any{lost.Status, lost.Code}, "%+v", lost)
}

func TestFollowerFallsBackToTheOldActRouteForALeaderWithoutIt(t *testing.T) {
	t.Parallel()
	lf := apitest.NewFake()
	require.NoError(t, lf.CreateWorld(context.Background(), "arena", fsm.Rules{}))
	leader := newEnv(t, lf)
	// A leader of an older version: its mux knows no compact act route.
	var refused atomic.Int32
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ":forward") {
			refused.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"code":"not_found","error":"no such route"}`))
			return
		}
		leader.srv.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(old.Close)
	ff := apitest.NewFake()
	ff.LeaderFlag.Store(false)
	ff.ActErr = store.ErrNotLeader
	ff.SetLeader("n1", old.URL)
	follower := newEnv(t, ff)

	ctx := context.Background()
	for seq := uint64(1); seq <= 3; seq++ {
		a, raw := playAction("arena", "p1", seq)
		ev, err := follower.srv.ActOnLeader(ctx, a, raw, "")
		require.NoError(t, err)
		require.Equal(t, "applied", ev.Status)
		require.Equal(t, seq, ev.ClientSeq)
	}
	require.Equal(t, int32(1), refused.Load(), "the follower remembers the leader lacks the route")
	require.Equal(t, 3, lf.Acts)
	require.Equal(t, float64(3), requests(leader, "POST "+edge.InternalPrefix+"/worlds/{world}/actions", "200"))

	// A 404 of the new route itself (a world the leader's shard map does
	// not place) is an answer, not a missing route: nothing is sent again.
	var olds atomic.Int32
	placing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, ":forward") {
			olds.Add(1)
		}
		w.Header().Set(edge.HeaderActRoute, "1")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"code":"unknown_world","error":"no world nowhere"}`))
	}))
	t.Cleanup(placing.Close)
	ff.SetLeader("n3", placing.URL)
	a, raw := playAction("nowhere", "p1", 1)
	_, err := follower.srv.ActOnLeader(ctx, a, raw, "")
	_, code := edge.Classify(err, true)
	require.Equal(t, fsm.CodeUnknownWorld, code)
	require.Zero(t, olds.Load(), "not sent by the old route")
}

func TestForwardedPlayActionFollowsALeaderChangeAndNeverResendsAnUnknownOutcome(t *testing.T) {
	t.Parallel()
	first, follower := newPair(t, func(c *Config) { c.ForwardTimeout = 200 * time.Millisecond })
	ctx := context.Background()

	// The first leader takes the action and never answers in time: its
	// outcome is unknown, and the follower does not send it again.
	release := make(chan struct{})
	first.Fake.Set(func(f *apitest.Fake) {
		f.ActHook = func(ctx context.Context, a *fsm.Action) (*fsm.Event, bool, error) {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil, false, store.ErrOutcomeUnknown
		}
	})
	t.Cleanup(func() { close(release) })
	a, raw := playAction("arena", "p1", 1)
	_, err := follower.srv.ActOnLeader(ctx, a, raw, "")
	_, code := edge.Classify(err, true)
	require.Equal(t, edge.CodeOutcomeUnknown, code, "%v", err)
	require.Equal(t, 1, fakeActs(first.Fake), "sent once, never again")

	// Leadership moves: the follower's next forwards go to the new leader,
	// and the retry with the same seq is answered by the new leader's log
	// (here it had committed: a duplicate of the original event).
	lf := apitest.NewFake()
	require.NoError(t, lf.CreateWorld(context.Background(), "arena", fsm.Rules{}))
	second := newEnv(t, lf)
	a, _ = playAction("arena", "p1", 1)
	orig, _, err := lf.Act(ctx, a)
	require.NoError(t, err)
	follower.Fake.SetLeader("n2", second.TS.Listener.Addr().String())
	a, raw = playAction("arena", "p1", 1)
	ev, err := follower.srv.ActOnLeader(ctx, a, raw, "")
	require.NoError(t, err)
	require.True(t, ev.Duplicate)
	require.Equal(t, orig.Seq, ev.Seq)
	a, raw = playAction("arena", "p1", 2)
	ev, err = follower.srv.ActOnLeader(ctx, a, raw, "")
	require.NoError(t, err)
	require.False(t, ev.Duplicate)
	require.Equal(t, 3, fakeActs(lf))
	require.Equal(t, 1, fakeActs(first.Fake))

	// A cancelled caller is not left waiting, and the leader sees the
	// request's end.
	cctx, cancel := context.WithCancel(ctx)
	lf.Set(func(f *apitest.Fake) {
		f.ActHook = func(ctx context.Context, a *fsm.Action) (*fsm.Event, bool, error) {
			cancel()
			<-ctx.Done()
			return nil, false, ctx.Err()
		}
	})
	a, raw = playAction("arena", "p1", 3)
	_, err = follower.srv.ActOnLeader(cctx, a, raw, "")
	_, code = edge.Classify(err, true)
	require.Equal(t, edge.CodeOutcomeUnknown, code, "%v", err)
}

func TestActRouteRefusesWhatItCannotServe(t *testing.T) {
	t.Parallel()
	path := edge.InternalActRoutePath("arena")
	fwd := []string{edge.HeaderForwarded, "1"}
	f := apitest.NewFake()
	require.NoError(t, f.CreateWorld(context.Background(), "arena", fsm.Rules{}))
	e := newEnv(t, f, func(c *Config) { c.MaxBatchActions = 2; c.MaxBodyBytes, c.MaxBatchBodyBytes = 4096, 4096 })
	a, _ := playAction("arena", "p1", 1)
	e.RequireError(413, edge.CodeTooLarge, "POST", path, actRouteBody(a, a, a), fwd...)
	e.RequireError(413, edge.CodeTooLarge, "POST", path, strings.Repeat("x", 5000), fwd...)

	// A node that does not lead refuses, never sends on.
	f.SetLeader("n9", "127.0.0.1:1")
	f.LeaderFlag.Store(false)
	e.RequireError(503, edge.CodeNotLeader, "POST", path, actRouteBody(a), fwd...)
	require.Zero(t, f.Acts)
}

func TestFollowerRefusesAnUndecodableActRouteAnswer(t *testing.T) {
	t.Parallel()
	for _, body := range []string{`{"results":[]}`, `not json`} {
		bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(body))
		}))
		t.Cleanup(bad.Close)
		ff := apitest.NewFake()
		ff.LeaderFlag.Store(false)
		ff.ActErr = store.ErrNotLeader
		ff.SetLeader("n1", bad.URL)
		follower := newEnv(t, ff)
		a, raw := playAction("arena", "p1", 1)
		_, err := follower.srv.ActOnLeader(context.Background(), a, raw, "")
		require.ErrorIs(t, err, edge.ErrInternal, body)
		require.Contains(t, err.Error(), "undecodable answer")
	}
}

// blockingLeader makes leader's group hold every action until release is
// closed, counting them in arrived, and answer each with its own event.
func blockingLeader(t *testing.T, leader *testEnv) (arrived *atomic.Int32, release chan struct{}) {
	t.Helper()
	arrived, release = new(atomic.Int32), make(chan struct{})
	var seq atomic.Uint64
	leader.Fake.Set(func(f *apitest.Fake) {
		f.ActHook = func(ctx context.Context, a *fsm.Action) (*fsm.Event, bool, error) {
			arrived.Add(1)
			select {
			case <-release:
			case <-ctx.Done():
				return nil, false, store.ErrOutcomeUnknown
			}
			return &fsm.Event{World: a.World, Seq: seq.Add(1), Player: a.Player, ClientSeq: a.Seq, Status: fsm.StatusApplied}, false, nil
		}
	})
	return arrived, release
}

func TestFollowerSharesCallsAmongPlayActionsDueAtOnce(t *testing.T) {
	t.Parallel()
	leader, follower := newPair(t)
	arrived, release := blockingLeader(t, leader)
	forwarded := func() int {
		leader.Fake.Mu.Lock()
		defer leader.Fake.Mu.Unlock()
		return leader.Fake.Forwarded
	}
	type answer struct {
		player string
		ev     wire.Event
		err    error
	}
	answers := make(chan answer, 64)
	act := func(ctx context.Context, player string) {
		a, raw := playAction("arena", player, 1)
		ev, err := follower.srv.ActOnLeader(ctx, a, raw, "")
		answers <- answer{player, ev, err}
	}
	// As many calls as may be in flight, one action each (each caller
	// comes when the calls before it are held), held.
	for i := range 4 {
		go act(context.Background(), fmt.Sprintf("p%d", i))
		require.Eventually(t, func() bool { return arrived.Load() == int32(i+1) }, 10*time.Second, time.Millisecond)
	}
	require.Equal(t, 4, forwarded())

	// An action whose caller gives up while it waits is never sent.
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	act(cancelled, "gone")
	gone := <-answers
	_, code := edge.Classify(gone.err, true)
	require.Equal(t, edge.CodeOutcomeUnknown, code, "%v", gone.err)

	// The actions that arrive meanwhile wait, and go in fewer calls.
	for i := 4; i < 40; i++ {
		go act(context.Background(), fmt.Sprintf("p%d", i))
	}
	close(release)
	seqs := map[uint64]bool{}
	for range 40 {
		a := <-answers
		require.NoError(t, a.err, a.player)
		require.Equal(t, a.player, a.ev.Player, "each caller gets its own action's event")
		require.Equal(t, uint64(1), a.ev.ClientSeq)
		require.False(t, seqs[a.ev.Seq], "one event per action")
		seqs[a.ev.Seq] = true
	}
	require.Equal(t, int32(40), arrived.Load(), "the abandoned action never reached the leader")
	require.LessOrEqual(t, forwarded(), 40)
	t.Logf("40 actions in %d calls", forwarded())
}

func TestFollowerCloseDoesNotWaitForItsCallersOwnForwards(t *testing.T) {
	t.Parallel()
	leader, follower := newPair(t)
	arrived, release := blockingLeader(t, leader)
	t.Cleanup(func() { close(release) })
	errs := make(chan error, 4)
	ctx, cancel := context.WithCancel(context.Background())
	for i := range 4 {
		go func() {
			a, raw := playAction("arena", fmt.Sprintf("p%d", i), 1)
			_, err := follower.srv.ActOnLeader(ctx, a, raw, "")
			errs <- err
		}()
	}
	require.Eventually(t, func() bool { return arrived.Load() == 4 }, 10*time.Second, time.Millisecond)
	// Close waits for the shared calls' senders only: a call of a
	// caller's own ends with the caller (a play connection ends when the
	// node closes), as before.
	follower.srv.Close()
	cancel()
	for range 4 {
		_, code := edge.Classify(<-errs, true)
		require.Equal(t, edge.CodeOutcomeUnknown, code)
	}
}

func TestForwardedPlayActionWithoutAPeerCredentialCarriesItsPlayersToken(t *testing.T) {
	t.Parallel()
	// Auth on, no cluster secret: the leader trusts no caller's identity,
	// so each action goes alone with its player's token, which must name
	// the action's player.
	leader, follower := newPair(t, withAuth)
	ctx := context.Background()
	p1 := sign(t, jwt.SigningMethodHS256, keys.HS, edge.AdminClaims{RegisteredClaims: claims("p1"), Role: "scout"})
	a, raw := playAction("arena", "p1", 1)
	a.Role = "scout"
	ev, err := follower.srv.ActOnLeader(ctx, a, raw, p1)
	require.NoError(t, err)
	require.Equal(t, "p1", ev.Player)
	require.Equal(t, "scout", leader.Fake.LastAction.Role)

	a, raw = playAction("arena", "p2", 1)
	_, err = follower.srv.ActOnLeader(ctx, a, raw, p1)
	status, code := edge.Classify(err, true)
	require.Equal(t, []any{http.StatusForbidden, edge.CodeForbidden}, []any{status, code}, "%v", err)
	require.Equal(t, 1, leader.Fake.Acts, "the forged action acted nothing")
}

// fakeActs is f.Acts, read under its lock (a forward the follower gave up
// on may still run on the leader).
func fakeActs(f *apitest.Fake) int {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	return f.Acts
}
