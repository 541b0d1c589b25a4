package fsm

import (
	"bytes"
	"encoding/json"
	"github.com/gsd-dev/gsd/internal/golden"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// The JSON wire forms the fsm package defines: values of every kind, ops of
// every kind and expect, rules, node infos and events (applied, conflict
// with current values, rejected with a reason). One value per line.

// goldenJSON is the JSON encoding the HTTP API uses for fsm types.
func goldenJSON(v any) ([]byte, error) { return json.Marshal(v) }

// goldenJSONLines encodes each value on its own line.
func goldenJSONLines(t *testing.T, vs ...any) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, v := range vs {
		j, err := goldenJSON(v)
		require.NoError(t, err)
		buf.Write(j)
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

func TestGoldenValueJSON(t *testing.T) {
	got := goldenJSONLines(t,
		Value{}, Int(0), Int(-42), Int(math.MaxInt64), Int(math.MinInt64),
		Float(0.1), Float(-2.5e-300), Float(1e21), Float(3), Float(math.MaxFloat64),
		String(""), String("plain"), String("quote \" back \\ <tag> & é 😀 \u2028"),
		Bool(true), Bool(false),
		[]Value{Int(1), String("a"), Bool(true), Float(0.5), {}},
	)
	golden.Text(t, "json_values.jsonl", got)
}

func TestGoldenOpJSON(t *testing.T) {
	var vs []any
	for _, o := range goldenAction().Ops {
		vs = append(vs, o)
	}
	vs = append(vs, goldenAction().Ops) // as a list
	golden.Text(t, "json_ops.jsonl", goldenJSONLines(t, vs...))
}

func TestGoldenRulesJSON(t *testing.T) {
	got := goldenJSONLines(t,
		goldenRules(),
		Rules{},
		Rules{Strict: true},
		Rules{Fields: map[string]FieldRule{"hp": {Type: KindInt, Policy: PolicyCounter}}},
	)
	golden.Text(t, "json_rules.jsonl", got)
}

func TestGoldenNodeInfoJSON(t *testing.T) {
	got := goldenJSONLines(t,
		NodeInfo{ID: "n1", RaftAddr: "10.0.0.1:7000", HTTPAddr: "10.0.0.1:8080", Region: "eu-west"},
		NodeInfo{ID: "n2", RaftAddr: "r2", HTTPAddr: "h2"},
	)
	golden.Text(t, "json_nodes.jsonl", got)
}

func TestGoldenEventJSON(t *testing.T) {
	evs := goldenArchiveEvents()
	dup := evs["applied"].Wire()
	dup.Duplicate = true
	got := goldenJSONLines(t, evs["applied"], evs["conflict"], evs["rejected"], dup)
	golden.Text(t, "json_events.jsonl", got)
}
