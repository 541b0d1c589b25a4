package edge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/gsd-dev/gsd/fsm"
)

// ReadBody reads the whole body, at most limit bytes. The bytes are kept so
// that a follower can re-send them to the leader unchanged.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, fmt.Errorf("%w: body of %d bytes, limit %d", ErrTooLarge, r.ContentLength, limit)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, fmt.Errorf("%w: body over %d bytes", ErrTooLarge, limit)
		}
		return nil, fmt.Errorf("%w: read body: %v", fsm.ErrMalformed, err)
	}
	return b, nil
}

// DecodeStrict decodes exactly one JSON value from b into v, refusing
// unknown fields and trailing data. Every error wraps fsm.ErrMalformed.
func DecodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: empty body", fsm.ErrMalformed)
		}
		if errors.Is(err, fsm.ErrMalformed) {
			return err
		}
		return fmt.Errorf("%w: %v", fsm.ErrMalformed, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: trailing data after the JSON value", fsm.ErrMalformed)
	}
	return nil
}

// ActionRequest is the wire form of an action; the world comes from the path.
// Action and Params are a declared action (wire.ActionRequest).
type ActionRequest struct {
	Player    string               `json:"player"`
	Seq       uint64               `json:"seq"`
	Priority  string               `json:"priority"`
	InputTime int64                `json:"input_time"`
	Ops       []json.RawMessage    `json:"ops"`
	Action    string               `json:"action"`
	Params    map[string]fsm.Value `json:"params"`
}

// opKeys mirrors wire.Op's JSON form only to refuse unknown keys and wrong
// types: wire.Op's UnmarshalJSON, which gives an op its meaning, accepts any.
type opKeys struct {
	Op     string          `json:"op"`
	Entity string          `json:"entity"`
	Field  string          `json:"field"`
	Value  json.RawMessage `json:"value"`
	By     int64           `json:"by"`
	Expect string          `json:"expect"`
}

// DecodeAction decodes and validates one action of world as id, the
// verified caller. A non-empty id.Player (auth on) is the action's player:
// a body that names another is forbidden. The action carries id.Role,
// which only the token gives: the body has no key for it, so a client
// cannot claim a role (an unknown key is malformed).
func DecodeAction(b []byte, world string, id Identity) (*fsm.Action, error) {
	player := id.Player
	var req ActionRequest
	if err := DecodeStrict(b, &req); err != nil {
		return nil, err
	}
	if player != "" {
		if req.Player != "" && req.Player != player {
			return nil, fmt.Errorf("%w: the token is for player %q, the action names %q", ErrForbidden, player, req.Player)
		}
		req.Player = player
	}
	a := &fsm.Action{World: world, Player: req.Player, Seq: req.Seq, InputTime: req.InputTime, Role: id.Role}
	switch req.Priority {
	case "", "critical":
		a.Priority = fsm.PriorityCritical
	case "bulk":
		a.Priority = fsm.PriorityBulk
	default:
		return nil, fmt.Errorf("%w: priority must be critical or bulk, got %q", fsm.ErrMalformed, req.Priority)
	}
	if len(req.Ops) > fsm.MaxOpsPerAction {
		return nil, fmt.Errorf("%w: more than %d ops", fsm.ErrMalformed, fsm.MaxOpsPerAction)
	}
	a.Ops = make([]fsm.Op, len(req.Ops))
	for i, raw := range req.Ops {
		if err := DecodeStrict(raw, &opKeys{}); err != nil {
			return nil, fmt.Errorf("op %d: %w", i, err)
		}
		if err := a.Ops[i].UnmarshalJSON(raw); err != nil {
			return nil, fmt.Errorf("op %d: %w", i, err)
		}
	}
	a.Name = req.Action
	for _, n := range slices.Sorted(maps.Keys(req.Params)) {
		a.Params = append(a.Params, fsm.Param{Name: n, Value: req.Params[n]})
	}
	if err := a.Validate(); err != nil {
		return nil, err
	}
	return a, nil
}

// ruleKeys mirrors wire.Rules only to refuse unknown keys (its own name:
// decoding errors name it, and answers carry them).
type ruleKeys struct {
	Strict     bool   `json:"strict"`
	FairWindow string `json:"fair_window"`
	MaxLag     string `json:"max_lag_compensation"`
	Fields     map[string]struct {
		Type   string `json:"type"`
		Policy string `json:"policy"`
		fsm.FieldAccess
	} `json:"fields"`
	fsm.Schema // rules schema v1's other keys (docs/RULES.md)
}

// DecodeRules decodes and validates a world's rules; absent means none.
func DecodeRules(raw json.RawMessage) (fsm.Rules, error) {
	var rules fsm.Rules
	if len(raw) == 0 {
		return rules, nil
	}
	if err := DecodeStrict(raw, &ruleKeys{}); err != nil {
		return rules, fmt.Errorf("rules: %w", err)
	}
	if err := rules.UnmarshalJSON(raw); err != nil {
		return rules, err
	}
	return rules, nil
}

// CheckName checks a name taken from a request: 1..fsm.MaxNameLen bytes of UTF-8.
func CheckName(what, s string) error {
	if s == "" || len(s) > fsm.MaxNameLen || !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s must be 1..%d bytes of UTF-8", fsm.ErrMalformed, what, fsm.MaxNameLen)
	}
	return nil
}

// ParseSeq parses an optional non-negative seq query parameter.
func ParseSeq(r *http.Request, name string) (uint64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s must be a non-negative integer, got %q", fsm.ErrMalformed, name, v)
	}
	return n, nil
}

// readJSON reads a body of at most limit bytes and decodes it strictly into
// v; on failure it answers the error and returns false.
func (s *Core) ReadJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	body, err := ReadBody(w, r, limit)
	if err == nil {
		err = DecodeStrict(body, v)
	}
	if err != nil {
		s.WriteError(w, err, true)
		return false
	}
	return true
}

// forwardedOnly answers 403 and returns false unless another node of the
// cluster sent r (internal endpoints; with a cluster secret the request
// must carry it too: cluster_auth.go).
func (s *Core) ForwardedOnly(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get(HeaderForwarded) == "" {
		s.WriteError(w, fmt.Errorf("%w: internal endpoint: only nodes of the cluster call it", ErrForbidden), true)
		return false
	}
	return true
}
