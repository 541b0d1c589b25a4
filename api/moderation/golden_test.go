package moderation

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/gsd-dev/gsd/anticheat/moderation"
	"github.com/gsd-dev/gsd/internal/golden"
	"github.com/stretchr/testify/require"
)

// The moderation routes' JSON answers, fixed by a fresh store (ids and
// seqs are deterministic) and the API's clock: the bytes clients and
// gsdctl read (wire/moderation.go).
func TestModerationAnswersAreGolden(t *testing.T) {
	e := newEnv(t)
	mod := token(t, "mia", moderation.Class, false)
	rec := record("funnel", "feeder", "main")
	_, err := e.api.Raise(context.Background(), rec)
	require.NoError(t, err)
	var all bytes.Buffer
	for _, c := range []struct{ method, path, body string }{
		{"GET", PathFlags, ""},
		{"POST", PathFlags + "/" + rec.ID + "/confirm", `{"reason":"ten gifts, none back"}`},
		{"GET", PathFlags + "/" + rec.ID, ""},
		{"POST", PathFlags + "/" + rec.ID + "/dismiss", `{"reason":"changed my mind"}`},
		{"POST", PathFlags, `{"detector":"speed","players":["ann"],"score":0.5,"evidence":[],"world":"arena","incarnation":3,"raised_by":"ops"}`},
	} {
		hdr := mod
		if c.method == "POST" && c.path == PathFlags {
			hdr = token(t, "ops", "", true)
		}
		code, _, b := e.Do(c.method, c.path, c.body, hdr...)
		var v any
		require.NoError(t, json.Unmarshal(b, &v), "%s", b)
		pretty, _ := json.MarshalIndent(v, "", "  ")
		fmt.Fprintf(&all, "%s %s %s\n%d\n%s\n\n", c.method, c.path, c.body, code, pretty)
	}
	golden.Text(t, "moderation_answers.txt", all.Bytes())
}
