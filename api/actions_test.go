package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func newArenaEnv(t *testing.T, opts ...func(*Config)) *testEnv {
	t.Helper()
	f := apitest.NewFake()
	require.NoError(t, f.CreateWorld(context.Background(), "arena", fsm.Rules{}))
	return newEnv(t, f, opts...)
}

func TestActionAppliedReturnsEventAndRepeatIsDuplicate(t *testing.T) {
	t.Parallel()
	e := newArenaEnv(t)
	body := `{"player":"p1","seq":7,"priority":"bulk","input_time":5,"ops":[` +
		`{"op":"incr","entity":"e1","field":"score","by":1},` +
		`{"op":"set","entity":"door","field":"open","value":true,"expect":"12"}]}`
	code, m := e.DoJSON("POST", "/v1/worlds/arena/actions", body)
	require.Equal(t, 200, code, "%v", m)
	require.Equal(t, "applied", m["status"])
	require.Equal(t, float64(1), m["seq"])
	require.Equal(t, float64(7), m["client_seq"])
	require.Equal(t, "bulk", m["priority"])
	require.Nil(t, m["duplicate"])
	require.Len(t, m["changes"], 2)

	a := e.Fake.LastAction
	require.Equal(t, "arena", a.World)
	require.Equal(t, fsm.PriorityBulk, a.Priority)
	require.Equal(t, int64(5), a.InputTime)
	require.Equal(t, fsm.Expect{Mode: fsm.ExpectVersion, Version: 12}, a.Ops[1].Expect)
	require.Equal(t, fsm.Bool(true), a.Ops[1].Value)

	code, m = e.DoJSON("POST", "/v1/worlds/arena/actions", body)
	require.Equal(t, 200, code)
	require.Equal(t, true, m["duplicate"])
	require.Equal(t, float64(1), m["seq"])

	e.RequireError(409, "seq_reused", "POST", "/v1/worlds/arena/actions",
		`{"player":"p1","seq":7,"ops":[{"op":"incr","entity":"e1","field":"score","by":2}]}`)
}

func TestBadActionBodiesAre400WithoutReachingTheBackend(t *testing.T) {
	t.Parallel()
	e := newArenaEnv(t)
	op := `{"op":"incr","entity":"e1","field":"score","by":1}`
	for name, body := range map[string]string{
		"empty":              ``,
		"not json":           `{"player":`,
		"array":              `[1,2]`,
		"trailing data":      `{"player":"p1","seq":1,"ops":[` + op + `]} {}`,
		"trailing garbage":   `{"player":"p1","seq":1,"ops":[` + op + `]}xx`,
		"unknown field":      `{"player":"p1","seq":1,"world":"x","ops":[` + op + `]}`,
		"unknown op field":   `{"player":"p1","seq":1,"ops":[{"op":"incr","entity":"e1","field":"score","by":1,"expcet":"3"}]}`,
		"seq as string":      `{"player":"p1","seq":"1","ops":[` + op + `]}`,
		"negative seq":       `{"player":"p1","seq":-1,"ops":[` + op + `]}`,
		"seq zero":           `{"player":"p1","seq":0,"ops":[` + op + `]}`,
		"by as float":        `{"player":"p1","seq":1,"ops":[{"op":"incr","entity":"e1","field":"score","by":1.5}]}`,
		"value object":       `{"player":"p1","seq":1,"ops":[{"op":"set","entity":"e1","field":"f","value":{"a":1}}]}`,
		"set without value":  `{"player":"p1","seq":1,"ops":[{"op":"set","entity":"e1","field":"f"}]}`,
		"unknown op":         `{"player":"p1","seq":1,"ops":[{"op":"explode","entity":"e1","field":"f"}]}`,
		"bad expect":         `{"player":"p1","seq":1,"ops":[{"op":"set","entity":"e1","field":"f","value":1,"expect":"x"}]}`,
		"op not object":      `{"player":"p1","seq":1,"ops":[7]}`,
		"no ops":             `{"player":"p1","seq":1,"ops":[]}`,
		"no player":          `{"seq":1,"ops":[` + op + `]}`,
		"bad priority":       `{"player":"p1","seq":1,"priority":"urgent","ops":[` + op + `]}`,
		"too many ops":       `{"player":"p1","seq":1,"ops":[` + strings.Repeat(op+",", fsm.MaxOpsPerAction) + op + `]}`,
		"player too long":    `{"player":"` + strings.Repeat("p", fsm.MaxNameLen+1) + `","seq":1,"ops":[` + op + `]}`,
		"delete with field":  `{"player":"p1","seq":1,"ops":[{"op":"delete","entity":"e1","field":"f"}]}`,
		"huge int as number": `{"player":"p1","seq":1,"ops":[{"op":"incr","entity":"e1","field":"score","by":1e30}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			e.With(t).RequireError(400, "malformed", "POST", "/v1/worlds/arena/actions", body)
		})
	}
	require.Zero(t, e.Fake.Acts, "a malformed action reached the backend")
}

func TestOversizedBodiesAre413(t *testing.T) {
	t.Parallel()
	e := newArenaEnv(t, func(c *Config) { c.MaxBodyBytes = 256; c.MaxBatchBodyBytes = 512 })
	big := `{"player":"p1","seq":1,"ops":[{"op":"set","entity":"e1","field":"f","value":"` + strings.Repeat("x", 300) + `"}]}`
	// With a Content-Length.
	e.RequireError(413, "too_large", "POST", "/v1/worlds/arena/actions", big)
	e.RequireError(413, "too_large", "POST", "/v1/worlds", `{"id":"`+strings.Repeat("w", 300)+`"}`)
	// Without one (chunked): the limit is enforced while reading.
	req, err := http.NewRequest("POST", e.TS.URL+"/v1/worlds/arena/actions", io.MultiReader(strings.NewReader(big)))
	require.NoError(t, err)
	req.ContentLength = -1
	resp, err := e.TS.Client().Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 413, resp.StatusCode)
	require.Contains(t, string(b), `"too_large"`)
	// A batch has its own, larger limit.
	batch := `{"actions":[` + strings.Repeat(incrBody+",", 4) + incrBody + `]}`
	require.Greater(t, len(batch), 256)
	require.Less(t, len(batch), 512)
	code, _ := e.DoJSON("POST", "/v1/worlds/arena/actions:batch", batch)
	require.Equal(t, 200, code)
	e.RequireError(413, "too_large", "POST", "/v1/worlds/arena/actions:batch", `{"actions":[`+strings.Repeat(incrBody+",", 8)+incrBody+`]}`)
	require.Equal(t, 5, e.Fake.Acts)
}

func TestBatchAnswersEachActionInOrder(t *testing.T) {
	t.Parallel()
	e := newArenaEnv(t)
	body := `{"actions":[
		{"player":"p1","seq":1,"ops":[{"op":"incr","entity":"e1","field":"score","by":1}]},
		{"player":"p1","seq":1,"ops":[{"op":"incr","entity":"e1","field":"score","by":1}]},
		{"player":"p1","seq":1,"ops":[{"op":"incr","entity":"e1","field":"score","by":5}]},
		{"player":"p2","seq":1,"ops":[{"op":"bogus","entity":"e1"}]},
		{"player":"p3","seq":1,"ops":[{"op":"incr","entity":"e1","field":"score","by":1}]}
	]}`
	code, m := e.DoJSON("POST", "/v1/worlds/arena/actions:batch", body)
	require.Equal(t, 200, code)
	res := m["results"].([]any)
	require.Len(t, res, 5)
	item := func(i int) map[string]any { return res[i].(map[string]any) }
	// Items 0-2 share a seq and race each other (concurrent submission):
	// whichever comes first applies; an equal repeat is a duplicate, a
	// different payload seq_reused.
	codes := map[string]int{}
	for i := range 3 {
		if c, ok := item(i)["code"]; ok {
			codes[c.(string)]++
		} else if item(i)["duplicate"] == true {
			codes["duplicate"]++
		} else {
			codes[item(i)["status"].(string)]++
		}
	}
	require.Equal(t, 1, codes["applied"], "%v", res)
	require.Equal(t, 2, codes["seq_reused"]+codes["duplicate"], "%v", res)
	require.Equal(t, "malformed", item(3)["code"])
	require.Contains(t, item(3)["error"], "action 3")
	require.Equal(t, "applied", item(4)["status"])
	require.Equal(t, "p3", item(4)["player"])
}

func TestBatchOfDistinctActionsAppliesAll(t *testing.T) {
	t.Parallel()
	e := newArenaEnv(t, func(c *Config) { c.BatchConcurrency = 4 })
	var sb strings.Builder
	sb.WriteString(`{"actions":[`)
	for i := range 50 {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `{"player":"p%d","seq":1,"ops":[{"op":"incr","entity":"e1","field":"score","by":1}]}`, i)
	}
	sb.WriteString(`]}`)
	code, m := e.DoJSON("POST", "/v1/worlds/arena/actions:batch", sb.String())
	require.Equal(t, 200, code)
	seqs := map[float64]bool{}
	for i, r := range m["results"].([]any) {
		ev := r.(map[string]any)
		require.Equal(t, "applied", ev["status"])
		require.Equal(t, fmt.Sprintf("p%d", i), ev["player"])
		seqs[ev["seq"].(float64)] = true
	}
	require.Len(t, seqs, 50)
	require.LessOrEqual(t, e.Fake.MaxInfl, 4)
}

func TestBatchActionsRunConcurrently(t *testing.T) {
	t.Parallel()
	f := apitest.NewFake()
	const n = 8
	var arrived sync.WaitGroup
	arrived.Add(n)
	release := make(chan struct{})
	go func() { arrived.Wait(); close(release) }()
	f.ActHook = func(ctx context.Context, a *fsm.Action) (*fsm.Event, bool, error) {
		arrived.Done()
		<-release // only returns once all n are in flight together
		return &fsm.Event{World: a.World, Seq: a.Seq, Player: a.Player, ClientSeq: a.Seq, Status: fsm.StatusApplied}, false, nil
	}
	e := newEnv(t, f)
	var acts []string
	for i := range n {
		acts = append(acts, fmt.Sprintf(`{"player":"p","seq":%d,"ops":[{"op":"incr","entity":"e","field":"f","by":1}]}`, i+1))
	}
	code, m := e.DoJSON("POST", "/v1/worlds/arena/actions:batch", `{"actions":[`+strings.Join(acts, ",")+`]}`)
	require.Equal(t, 200, code)
	require.Len(t, m["results"], n)
	require.Equal(t, n, f.MaxInfl)
}

func TestBatchItemErrorsAndPanicsAreAnsweredPerItem(t *testing.T) {
	t.Parallel()
	f := apitest.NewFake()
	f.ActHook = func(ctx context.Context, a *fsm.Action) (*fsm.Event, bool, error) {
		switch a.Player {
		case "boom":
			panic("fake act exploded")
		case "slow":
			return nil, false, fmt.Errorf("%w", context.DeadlineExceeded)
		}
		return nil, false, fmt.Errorf("x: %w", fsm.ErrUnknownWorld)
	}
	e := newEnv(t, f)
	code, m := e.DoJSON("POST", "/v1/worlds/nowhere/actions:batch", `{"actions":[`+
		`{"player":"boom","seq":1,"ops":[{"op":"incr","entity":"e","field":"f","by":1}]},`+
		`{"player":"slow","seq":1,"ops":[{"op":"incr","entity":"e","field":"f","by":1}]},`+
		`{"player":"p","seq":1,"ops":[{"op":"incr","entity":"e","field":"f","by":1}]}]}`)
	require.Equal(t, 200, code)
	res := m["results"].([]any)
	require.Equal(t, "internal", res[0].(map[string]any)["code"])
	require.Equal(t, "outcome_unknown", res[1].(map[string]any)["code"])
	require.Equal(t, "unknown_world", res[2].(map[string]any)["code"])
}

func TestBadBatchBodiesAreRefusedWhole(t *testing.T) {
	t.Parallel()
	e := newArenaEnv(t, func(c *Config) { c.MaxBatchActions = 2 })
	e.RequireError(400, "malformed", "POST", "/v1/worlds/arena/actions:batch", `{"actions":[]}`)
	e.RequireError(400, "malformed", "POST", "/v1/worlds/arena/actions:batch", `{"acts":[]}`)
	e.RequireError(400, "malformed", "POST", "/v1/worlds/arena/actions:batch", `{"actions":[]}{}`)
	e.RequireError(413, "too_large", "POST", "/v1/worlds/arena/actions:batch",
		`{"actions":[`+incrBody+`,`+incrBody+`,`+incrBody+`]}`)
	require.Zero(t, e.Fake.Acts)
}

func TestEventJSONRoundTripsThroughTheWireForm(t *testing.T) {
	t.Parallel()
	ev := &fsm.Event{World: "w", Seq: 2, Status: fsm.StatusApplied,
		Changes: []fsm.Change{{Entity: "e", Field: "f", Op: fsm.OpSet, Value: fsm.String("x"), Version: 2}}}
	b, err := json.Marshal(edge.EventJSON(ev, true))
	require.NoError(t, err)
	var j wire.Event
	require.NoError(t, json.Unmarshal(b, &j))
	require.True(t, j.Duplicate)
	require.Equal(t, "x", j.Changes[0].Value.Str)
}
