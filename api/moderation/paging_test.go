package moderation

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/gsd-dev/gsd/anticheat/moderation"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// raise records n speed flags of players prefix0, prefix1, ...
func raise(t *testing.T, e *env, prefix string, n int) {
	t.Helper()
	for i := range n {
		created, err := e.api.Raise(context.Background(), record("speed", fmt.Sprintf("%s%d", prefix, i)))
		require.NoError(t, err)
		require.True(t, created)
	}
}

func listPage(t *testing.T, e *env, query string, hdr ...string) wire.FlagList {
	t.Helper()
	code, _, b := e.Do("GET", PathFlags+query, "", hdr...)
	require.Equal(t, http.StatusOK, code, "%s", b)
	var out wire.FlagList
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

func TestPagingReturnsEachFlagOnceWhileFlagsAreRecorded(t *testing.T) {
	e := newEnv(t)
	mod := token(t, "mia", moderation.Class, false)
	raise(t, e, "old", DefaultLimit+20)

	first := listPage(t, e, "", mod...)
	require.Len(t, first.Flags, DefaultLimit, "the default limit")
	require.NotEmpty(t, first.NextCursor)

	seen := map[string]int{}
	var lastRaised uint64
	count := func(fs []wire.Flag) {
		for _, f := range fs {
			seen[f.ID]++
			require.Greater(t, f.Raised, lastRaised, "oldest first, never one before the cursor")
			lastRaised = f.Raised
		}
	}
	p := listPage(t, e, "?limit=30", mod...)
	count(p.Flags)
	pages := 1
	for p.NextCursor != "" {
		raise(t, e, fmt.Sprintf("new%d-", pages), 7) // recorded between two pages
		p = listPage(t, e, "?limit=30&cursor="+p.NextCursor, mod...)
		count(p.Flags)
		pages++
		require.Less(t, pages, 100, "paging ends")
	}
	for i := range DefaultLimit + 20 {
		require.Equal(t, 1, seen[moderation.ID("speed", []string{fmt.Sprintf("old%d", i)}, "arena", 3)], "old%d", i)
	}
	for id, n := range seen {
		require.Equal(t, 1, n, id)
	}
	all := listPage(t, e, fmt.Sprintf("?limit=%d", MaxLimit), mod...)
	require.Empty(t, all.NextCursor, "the last page has no cursor")
	require.Len(t, all.Flags, len(seen), "the flags recorded meanwhile came in later pages")
	for _, f := range all.Flags {
		require.Equal(t, 1, seen[f.ID], f.Players)
	}
	speeds := listPage(t, e, "?detector=funnel&limit=1", mod...)
	require.Empty(t, speeds.Flags, "filters apply before the page")
	require.Empty(t, speeds.NextCursor)
}

func TestBadLimitsAndCursorsAreRefused(t *testing.T) {
	e := newEnv(t)
	mod := token(t, "mia", moderation.Class, false)
	for _, q := range []string{"?limit=0", "?limit=-1", "?limit=1001", "?limit=ten", "?cursor=%21%21", "?cursor=bm9zbGFzaA", "?cursor=eC95"} {
		e.RequireError(http.StatusBadRequest, fsm.CodeMalformed, "GET", PathFlags+q, "", mod...)
	}
	require.Equal(t, cursor{7, "flag-x"}, must(parseCursor(cursor{7, "flag-x"}.String())))
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// A record this node holds is not written again: detectors that rebuilt
// their counts raise their old flags again, and each would cost a write.
func TestARecordHeldAlreadyIsNotWrittenAgain(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	created, err := e.api.Raise(ctx, record("speed", "ann"))
	require.NoError(t, err)
	require.True(t, created)
	before, err := e.api.World(moderation.World)
	require.NoError(t, err)
	created, err = e.api.Raise(ctx, record("speed", "ann"))
	require.NoError(t, err)
	require.False(t, created)
	after, err := e.api.World(moderation.World)
	require.NoError(t, err)
	require.Equal(t, before.Seq, after.Seq, "no write")
	created, err = e.api.Raise(ctx, record("speed", "bob"))
	require.NoError(t, err)
	require.True(t, created, "another suspicion is written")
}
