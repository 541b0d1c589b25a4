package detect

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// durations are the Config's duration fields, by their path of keys.
var durations = [][]string{{"Reaction", "Median"}, {"Reaction", "Window"}, {"Economy", "Window"}, {"Lockstep", "Tick"}, {"Scan"}, {"Checkpoint"}}

// ParseConfig reads a Config from JSON over DefaultConfig: keys are the
// Go field names (matched without case, as encoding/json does), keys left
// out keep their defaults, durations are Go duration strings ("20ms") or
// nanoseconds, and unknown keys are refused. The result is validated.
//
//	{"Fields": {"Hit": "health"}, "Reaction": {"Median": "180ms"}}
func ParseConfig(data []byte) (Config, error) {
	var tree map[string]any
	if err := json.Unmarshal(data, &tree); err != nil {
		return Config{}, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	for _, path := range durations {
		if err := parseDuration(tree, path); err != nil {
			return Config{}, err
		}
	}
	data, _ = json.Marshal(tree) // decoded from JSON, with int64s added: it encodes
	cfg := DefaultConfig()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return cfg, cfg.Validate()
}

// parseDuration replaces the duration string at path in tree, if any, by
// its nanoseconds; what is not there or not a string is left to the
// decoder.
func parseDuration(tree map[string]any, path []string) error {
	var v any = tree
	var parent map[string]any
	var key string
	for _, name := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		k, found := findKey(m, name)
		if !found {
			return nil
		}
		parent, key, v = m, k, m[k]
	}
	s, ok := v.(string)
	if !ok {
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrConfig, strings.Join(path, "."), err)
	}
	parent[key] = int64(d)
	return nil
}

// findKey returns m's key equal to name without case, as encoding/json
// matches field names.
func findKey(m map[string]any, name string) (string, bool) {
	for k := range m {
		if strings.EqualFold(k, name) {
			return k, true
		}
	}
	return "", false
}
