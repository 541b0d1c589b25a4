package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/anticheat/moderation"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

// outcomeTable is the outcome table of docs/API.md: every error the backend
// can return, wrapped as the store wraps it, with the answer a write gets.
var outcomeTable = []struct {
	name   string
	err    error
	status int
	code   string
}{
	{"malformed", fsm.ErrMalformed, 400, "malformed"},
	{"type mismatch", fsm.ErrTypeMismatch, 400, "type_mismatch"},
	{"policy violation", fsm.ErrPolicyViolation, 400, "policy_violation"},
	{"undeclared field", fsm.ErrUndeclaredField, 400, "undeclared_field"},
	{"validator", fsm.ErrValidator, 400, "validator"},
	{"unknown world", fsm.ErrUnknownWorld, 404, "unknown_world"},
	{"not found", fsm.ErrNotFound, 404, "not_found"},
	{"seq unknown", fsm.ErrSeqUnknown, 404, "seq_unknown"},
	{"unknown action", fsm.ErrUnknownAction, 404, "unknown_action"},
	{"forbidden", fsm.ErrForbidden, 403, "forbidden"},
	{"world exists", fsm.ErrWorldExists, 409, "world_exists"},
	{"seq reused", fsm.ErrSeqReused, 409, "seq_reused"},
	{"seq expired", fsm.ErrSeqExpired, 409, "seq_expired"},
	{"world moved", &fsm.MovedError{Fence: fsm.Fence{World: "arena", Shard: 2, Seq: 17}}, 421, "world_moved"},
	{"archive gap", store.ErrArchiveGap, 410, "archive_gap"},
	{"overloaded", store.ErrOverloaded, 429, "overloaded"},
	{"not leader", store.ErrNotLeader, 503, "not_leader"},
	{"outcome unknown", store.ErrOutcomeUnknown, 503, "outcome_unknown"},
	{"store closed", store.ErrClosed, 503, "unavailable"},
	{"deadline", context.DeadlineExceeded, 503, "outcome_unknown"},
	{"canceled", context.Canceled, 503, "outcome_unknown"},
	{"too large", edge.ErrTooLarge, 413, "too_large"},
	{"illegal review transition", moderation.ErrIllegal, 409, "illegal_transition"},
	{"review conflict", moderation.ErrRace, 409, "review_conflict"},
	{"anything else", errors.New("disk on fire"), 500, "internal"},
}

func TestActionErrorsMapToStatusAndCode(t *testing.T) {
	t.Parallel()
	for _, tc := range outcomeTable {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := apitest.NewFake()
			f.ActErr = fmt.Errorf("act: %w", tc.err)
			e := newEnv(t, f)
			code, h, _ := e.Do("POST", "/v1/worlds/arena/actions", incrBody)
			require.Equal(t, tc.status, code)
			e.RequireError(tc.status, tc.code, "POST", "/v1/worlds/arena/actions", incrBody)
			if tc.status == 429 || tc.status == 503 {
				require.Equal(t, "1", h.Get("Retry-After"))
			}
		})
	}
}

func TestReadDeadlineIsTimeoutNotOutcomeUnknown(t *testing.T) {
	t.Parallel()
	status, code := edge.Classify(fmt.Errorf("read: %w", context.DeadlineExceeded), false)
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, edge.CodeTimeout, code)

	f := apitest.NewFake()
	f.EntityHook = func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	e := newEnv(t, f, func(c *Config) { c.RequestTimeout = 20 * time.Millisecond })
	e.RequireError(503, "timeout", "GET", "/v1/worlds/arena/entities/e1", "")
}

func TestWriteDeadlineIsOutcomeUnknown(t *testing.T) {
	t.Parallel()
	f := apitest.NewFake()
	f.ActHook = func(ctx context.Context, a *fsm.Action) (*fsm.Event, bool, error) {
		<-ctx.Done()
		return nil, false, ctx.Err()
	}
	e := newEnv(t, f, func(c *Config) { c.RequestTimeout = 20 * time.Millisecond })
	e.RequireError(503, "outcome_unknown", "POST", "/v1/worlds/arena/actions", incrBody)
}

func TestCommittedRejectedAndConflictAre200WithStatus(t *testing.T) {
	t.Parallel()
	for _, ev := range []*fsm.Event{
		{World: "arena", Seq: 3, Index: 9, Player: "p1", ClientSeq: 1, Status: fsm.StatusRejected, Reason: "validator"},
		{World: "arena", Seq: 4, Index: 9, Player: "p1", ClientSeq: 1, Status: fsm.StatusConflict,
			Changes: []fsm.Change{{Entity: "door", Field: "open", Value: fsm.Bool(false), Version: 2, Exists: true}}},
	} {
		f := apitest.NewFake()
		require.NoError(t, f.CreateWorld(context.Background(), "arena", fsm.Rules{}))
		f.ActHook = func(context.Context, *fsm.Action) (*fsm.Event, bool, error) { return ev, false, nil }
		e := newEnv(t, f)
		code, m := e.DoJSON("POST", "/v1/worlds/arena/actions", incrBody)
		require.Equal(t, 200, code)
		require.Equal(t, ev.Status.String(), m["status"])
		require.Equal(t, float64(ev.Seq), m["seq"])
		require.Nil(t, m["duplicate"])
		if ev.Status == fsm.StatusRejected {
			require.Equal(t, "validator", m["reason"])
		} else {
			ch := m["changes"].([]any)[0].(map[string]any)
			require.Equal(t, true, ch["exists"])
			require.Equal(t, false, ch["value"])
			require.Equal(t, map[string]any{"door": map[string]any{"open": float64(2)}}, m["versions"])
		}
	}
}

func TestReadErrorsMapLikeWrites(t *testing.T) {
	t.Parallel()
	for _, tc := range outcomeTable {
		if errors.Is(tc.err, context.DeadlineExceeded) || errors.Is(tc.err, context.Canceled) || errors.Is(tc.err, store.ErrNotLeader) {
			continue // reads differ here: covered by their own tests
		}
		status, code := edge.Classify(fmt.Errorf("read: %w", tc.err), false)
		require.Equal(t, tc.status, status, tc.name)
		require.Equal(t, tc.code, code, tc.name)
	}
}
