package wire

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
)

// Appenders of JSON that encoding/json would write, byte for byte, for the
// hot paths that build frames by hand (api/play's enter, leave and delta
// frames, spectator's watch frames): no reflection, no allocation for the
// usual ids and numbers. Tests there compare them with json.Marshal.

// AppendJSONString appends s as json.Marshal quotes it: as it is when it
// holds only printable ASCII that Marshal leaves alone (ids and field
// names, nearly always), else through Marshal (escapes, HTML-safe
// characters, invalid UTF-8), without allocating in the first case.
func AppendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string: never fails
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// AppendValueJSON appends v as Value.MarshalJSON writes it; false for a
// float json.Marshal refuses (NaN, infinities).
func AppendValueJSON(b []byte, v Value) ([]byte, bool) {
	switch v.Kind {
	case KindInt:
		return strconv.AppendInt(b, v.Int, 10), true
	case KindFloat:
		if math.IsNaN(v.Float) || math.IsInf(v.Float, 0) {
			return b, false
		}
		return strconv.AppendFloat(b, v.Float, 'g', -1, 64), true
	case KindString:
		return AppendJSONString(b, v.Str), true
	case KindBool:
		return strconv.AppendBool(b, v.Int != 0), true
	}
	return append(b, "null"...), true
}

// AppendWatchFieldJSON appends f as json.Marshal writes a WatchField;
// false as AppendValueJSON.
func AppendWatchFieldJSON(b []byte, f WatchField) ([]byte, bool) {
	b = append(b, '{')
	ok := true
	if f.Value != nil {
		b = append(b, `"value":`...)
		if b, ok = AppendValueJSON(b, *f.Value); !ok {
			return b, false
		}
		b = append(b, ',')
	}
	if len(f.Set) > 0 {
		b = append(b, `"set":[`...)
		for i, v := range f.Set {
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = AppendValueJSON(b, v); !ok {
				return b, false
			}
		}
		b = append(b, "],"...)
	}
	if f.IsSet {
		b = append(b, `"is_set":true,`...)
	}
	b = append(b, `"version":`...)
	b = strconv.AppendUint(b, f.Version, 10)
	return append(b, '}'), true
}

// AppendWatchEntityJSON appends e as json.Marshal writes a WatchEntity,
// sorting its fields' names in names' memory, which it returns for the
// next entity; false as AppendValueJSON.
func AppendWatchEntityJSON(b []byte, e WatchEntity, names []string) ([]byte, []string, bool) {
	b = append(b, `{"version":`...)
	b = strconv.AppendUint(b, e.Version, 10)
	if e.Replace {
		b = append(b, `,"replace":true`...)
	}
	if e.Deleted {
		b = append(b, `,"deleted":true`...)
	}
	if len(e.Fields) > 0 {
		b = append(b, `,"fields":{`...)
		names = sortedKeysInto(e.Fields, names)
		for i, name := range names {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendJSONString(b, name)
			b = append(b, ':')
			var ok bool
			if b, ok = AppendWatchFieldJSON(b, e.Fields[name]); !ok {
				return b, names, false
			}
		}
		b = append(b, '}')
	}
	return append(b, '}'), names, true
}

// AppendWatchEntitiesJSON appends the object of es (not nil) as
// json.Marshal writes a keyframe's or a delta's entities: ids sorted, each
// entity as AppendWatchEntityJSON; false as AppendValueJSON.
func AppendWatchEntitiesJSON(b []byte, es map[string]WatchEntity) ([]byte, bool) {
	b = append(b, '{')
	var ids, names [16]string // (room for most messages without allocating)
	fields := names[:0]       // one entity's fields, sorted (reused)
	for i, id := range sortedKeysInto(es, ids[:0]) {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendJSONString(b, id)
		b = append(b, ':')
		var ok bool
		if b, fields, ok = AppendWatchEntityJSON(b, es[id], fields); !ok {
			return b, false
		}
	}
	return append(b, '}'), true
}

// sortedKeysInto returns m's keys sorted, in scratch's memory when it has
// room (map keys in json.Marshal's order).
func sortedKeysInto[V any](m map[string]V, scratch []string) []string {
	keys := scratch[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
