package wire

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// genValue draws a scalar value (floats finite, as values are).
func genValue(t *rapid.T, label string) Value {
	switch rapid.IntRange(0, 4).Draw(t, label+" kind") {
	case 0:
		return Int(rapid.Int64().Draw(t, label))
	case 1:
		f := rapid.Float64().Draw(t, label)
		switch {
		case math.IsInf(f, 0) || math.IsNaN(f):
			f = 0.5
		case rapid.IntRange(0, 19).Draw(t, label+" -0") == 0:
			f = math.Copysign(0, -1)
		}
		return Float(f)
	case 2:
		if rapid.IntRange(0, 9).Draw(t, label+" bytes") == 0 {
			return String(string(rapid.SliceOf(rapid.Byte()).Draw(t, label))) // maybe not UTF-8
		}
		return String(rapid.String().Draw(t, label))
	case 3:
		return Bool(rapid.Bool().Draw(t, label))
	}
	return Value{}
}

// genEvent draws an event as a node's line has it: its versions are its
// changes' (fsm.Event.Versions), an applied change's version often the
// seq.
func genEvent(t *rapid.T) Event {
	seq := rapid.Uint64Range(1, math.MaxUint64).Draw(t, "seq")
	e := Event{World: rapid.StringMatching(`[a-z]{1,8}`).Draw(t, "world"), Seq: seq,
		Index: rapid.Uint64().Draw(t, "index"), Time: rapid.Int64().Draw(t, "time"),
		Player: rapid.String().Draw(t, "player"), ClientSeq: rapid.Uint64().Draw(t, "client_seq"),
		Priority: rapid.SampledFrom([]string{PriorityNameCritical, PriorityNameBulk}).Draw(t, "priority"),
		Status:   rapid.SampledFrom([]string{StatusApplied, StatusConflict, StatusRejected}).Draw(t, "status"),
		Reason:   rapid.SampledFrom([]string{"", "validator", "banned"}).Draw(t, "reason"),
	}
	if rapid.Bool().Draw(t, "notice") {
		e.Notice = &Notice{Kind: "rules", RulesVersion: rapid.Uint64().Draw(t, "rules_version"),
			Node: rapid.String().Draw(t, "node"), Index: rapid.Uint64().Draw(t, "notice index")}
	}
	n := rapid.IntRange(0, 5).Draw(t, "changes")
	for range n {
		c := Change{Entity: rapid.SampledFrom([]string{"p1", "p2", "item<&>"}).Draw(t, "entity"),
			Field: rapid.SampledFrom([]string{"", "x", "hp", "inventory"}).Draw(t, "field"),
			Op:    rapid.SampledFrom([]string{"", "set", "incr", "add", "remove", "delete"}).Draw(t, "op"),
		}
		switch rapid.IntRange(0, 2).Draw(t, "version kind") {
		case 0:
			c.Version = seq
		case 1:
			c.Version = 0
		default:
			c.Version = rapid.Uint64().Draw(t, "version")
		}
		if v := genValue(t, "value"); v.Kind != KindNull { // a node sends no null value
			c.Value = &v
		}
		for j := range rapid.IntRange(0, 2).Draw(t, "set") {
			c.Set = append(c.Set, genValue(t, "element"+string(rune('0'+j))))
		}
		if e.Status == StatusConflict {
			ex := rapid.Bool().Draw(t, "exists")
			c.Exists = &ex
		}
		e.Changes = append(e.Changes, c)
	}
	if len(e.Changes) > 0 {
		e.Versions = map[string]map[string]uint64{}
		for _, c := range e.Changes {
			if c.Field == "" {
				continue
			}
			if e.Versions[c.Entity] == nil {
				e.Versions[c.Entity] = map[string]uint64{}
			}
			e.Versions[c.Entity][c.Field] = c.Version
		}
	}
	return e
}

// A lean line of an event LeanExact accepts, read back and rebuilt, is
// the whole line, byte for byte, and leaves out the world, the versions,
// and a change's version that is the seq (an explicit 0 stays).
// LeanExact refuses only events whose rebuilt line would differ.
func TestLeanEventRebuildsTheWholeLine(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		e := genEvent(t)
		whole, err := json.Marshal(e)
		require.NoError(t, err)
		l := Lean(&e)
		lean, err := json.Marshal(l)
		require.NoError(t, err)
		var back LeanEvent
		require.NoError(t, json.Unmarshal(lean, &back))
		rebuilt, err := json.Marshal(back.Event(e.World))
		require.NoError(t, err)
		if !LeanExact(&e) {
			require.NotEqual(t, string(whole), string(rebuilt), "LeanExact refused an event that rebuilds")
			return
		}
		require.Equal(t, string(whole), string(rebuilt))

		var raw map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(lean, &raw))
		require.NotContains(t, raw, "world")
		require.NotContains(t, raw, "versions")
		for i, c := range l.Changes {
			require.Equal(t, e.Changes[i].Version == e.Seq, c.Version == nil, "change %d", i)
		}
	})
}

// Lean does not share its versions with the event: rebuilding from it
// after the event changed gives the event as it was.
func TestLeanKeepsItsOwnVersions(t *testing.T) {
	e := Event{World: "w", Seq: 9, Status: StatusConflict, Changes: []Change{{Entity: "a", Field: "x", Version: 3}}}
	l := Lean(&e)
	e.Changes[0].Version = 4
	require.EqualValues(t, 3, l.Event("w").Changes[0].Version)
}

// jsonNames returns the JSON names of t's fields.
func jsonNames(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		out = append(out, name)
	}
	return out
}

// A lean line carries every field of a whole one but world and versions:
// a field added to Event or Change must be added to the lean form too
// (else a relay would serve lines without it, and hash other leaves).
func TestLeanFormCarriesEveryOtherFieldOfAnEvent(t *testing.T) {
	var whole []string
	for _, n := range jsonNames(reflect.TypeFor[Event]()) {
		if n != "world" && n != "versions" {
			whole = append(whole, n)
		}
	}
	require.Equal(t, whole, jsonNames(reflect.TypeFor[LeanEvent]()))
	require.Equal(t, jsonNames(reflect.TypeFor[Change]()), jsonNames(reflect.TypeFor[LeanChange]()))
}

// Each place a string that is not UTF-8, or a float -0, can be in makes
// LeanExact refuse the event: its lean line would rebuild another line.
func TestLeanExactRefusesWhatJSONReadsBackOtherwise(t *testing.T) {
	const bad = "a\xffb"
	negZero := Float(math.Copysign(0, -1))
	base := func() Event {
		v := Int(1)
		return Event{World: "w", Seq: 2, Player: "p", Status: StatusApplied,
			Changes: []Change{{Entity: "e", Field: "f", Op: "set", Value: &v, Version: 2}}}
	}
	for name, spoil := range map[string]func(e *Event){
		"player":      func(e *Event) { e.Player = bad },
		"notice":      func(e *Event) { e.Notice = &Notice{Kind: "rules", Node: bad} },
		"entity":      func(e *Event) { e.Changes[0].Entity = bad },
		"value":       func(e *Event) { e.Changes[0].Value = &negZero },
		"set element": func(e *Event) { e.Changes[0].Set = []Value{Int(1), String(bad)} },
	} {
		e := base()
		require.True(t, LeanExact(&e), name)
		spoil(&e)
		require.False(t, LeanExact(&e), name)
		whole, err := json.Marshal(e)
		require.NoError(t, err)
		l := Lean(&e)
		lean, err := json.Marshal(l)
		require.NoError(t, err)
		var back LeanEvent
		require.NoError(t, json.Unmarshal(lean, &back))
		rebuilt, err := json.Marshal(back.Event(e.World))
		require.NoError(t, err)
		require.NotEqual(t, string(whole), string(rebuilt), name)
	}
	e := base()
	e.Notice = &Notice{Kind: "rules", Node: "n1"}
	require.True(t, LeanExact(&e), "a notice in UTF-8")
}

// AppendLeanLine makes from an event's line the bytes of its lean line
// (json.Marshal(Lean(e))), appended to what dst holds, newline kept; it
// refuses no more than what LeanExact refuses, and the lines
// that hold an escaped U+FFFD as text.
func TestAppendLeanLineIsTheLeanLineOfTheEvent(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		e := genEvent(t)
		whole, err := json.Marshal(e)
		require.NoError(t, err)
		lean, err := json.Marshal(Lean(&e))
		require.NoError(t, err)
		got, ok := AppendLeanLine([]byte("x\n"), append(whole, '\n'))
		if !ok {
			require.Equal(t, "x\n", string(got), "dst as it was")
			require.True(t, !LeanExact(&e) || strings.Contains(string(whole), `\ufffd`), "%s", whole)
			return
		}
		require.True(t, LeanExact(&e), "%s", whole)
		require.Equal(t, "x\n"+string(lean)+"\n", string(got))
	})
}

// Lines that are not an event's as json.Marshal writes them are refused,
// whatever part is off.
func TestAppendLeanLineRefusesOtherLines(t *testing.T) {
	for _, l := range []string{
		``,
		`{"seq":1}`,
		`{"world":`,
		`{"world":5,"seq":1}`,
		`{"world":"w`,
		`{"world":"w"}`,
		`{"world":"w","index":1}`,
		`{"world":"w","seq":x}`,
		`{"world":"w","seq":1,"player":"p`,
		`{"world":"w","seq":1,"versions":[1],"changes":[]}`,
		`{"world":"w","seq":1,"versions":{"e":{"x":1}`,
		`{"world":"w","seq":1,"versions":{"e":"unterminated}`,
		`{"world":"w","seq":1,"changes":[{"entity":"e","value":-0,"version":1}]}`,
		`{"world":"w","seq":1,"changes":[{"entity":"e","value":-`,
		`{"world":"w","seq":1,"player":"\ufffd"}`,
	} {
		got, ok := AppendLeanLine([]byte("d"), []byte(l))
		require.False(t, ok, l)
		require.Equal(t, "d", string(got), l)
	}
	got, ok := AppendLeanLine(nil, []byte(`{"world":"w","seq":12,"versions":{"e":{"x":12,"s\"}":3}},"changes":[{"entity":"e","field":"x","value":-0.5,"version":12},{"entity":"e","field":"s\"}","set":[-1],"version":3}]}`))
	require.True(t, ok)
	require.Equal(t, `{"seq":12,"changes":[{"entity":"e","field":"x","value":-0.5},{"entity":"e","field":"s\"}","set":[-1],"version":3}]}`, string(got))
}

// AppendLeanForm appends the lean line where AppendLeanLine makes one,
// and the whole line otherwise (its reader knows it by its world).
func TestAppendLeanFormFallsBackToTheWholeLine(t *testing.T) {
	whole := `{"world":"w","seq":2,"versions":{"e":{"x":2}},"changes":[{"entity":"e","field":"x","value":1,"version":2}]}` + "\n"
	require.Equal(t, "d"+`{"seq":2,"changes":[{"entity":"e","field":"x","value":1}]}`+"\n", string(AppendLeanForm([]byte("d"), []byte(whole))))
	exact := strings.Replace(whole, `"value":1`, `"value":-0`, 1)
	require.Equal(t, "d"+exact, string(AppendLeanForm([]byte("d"), []byte(exact))))
}
