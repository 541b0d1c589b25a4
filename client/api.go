package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gsd-dev/gsd/wire"
)

// CreateWorld creates a world with rules. It is not idempotent, so it is
// repeated only when the server did nothing; a world that exists answers
// 409 world_exists.
func (c *Client) CreateWorld(ctx context.Context, id string, rules wire.Rules) error {
	return c.createWorld(ctx, wire.CreateWorld{ID: id, Rules: rules})
}

// CreateSaltedWorld creates a world whose audit leaves are salted per
// player (leaf version 2, docs/ANTICHEAT.md).
func (c *Client) CreateSaltedWorld(ctx context.Context, id string, rules wire.Rules) error {
	return c.createWorld(ctx, wire.CreateWorld{ID: id, Rules: rules, AuditLeaf: 2})
}

func (c *Client) createWorld(ctx context.Context, body wire.CreateWorld) error {
	return c.do(ctx, &request{method: http.MethodPost, path: path("worlds"), body: body, mode: retryUnapplied, write: true}, nil)
}

// Worlds lists the worlds the answering node knows (a stale read).
func (c *Client) Worlds(ctx context.Context) ([]World, error) {
	var out wire.Worlds
	err := c.do(ctx, &request{method: http.MethodGet, path: path("worlds")}, &out)
	return out.Worlds, err
}

// Act submits one action and returns its committed event; Duplicate is set
// when the server had already applied this (player, seq). Failures that
// leave the outcome open (not_leader, outcome_unknown, overloaded, lost
// connections) are retried with the same action until ctx ends or the
// attempts run out; then the error satisfies IsOutcomeUnknown if any attempt
// may have been applied. A committed action that conflicted or was rejected
// is not an error: see the event's Status.
func (c *Client) Act(ctx context.Context, world string, a ActionRequest) (wire.Event, error) {
	if a.Seq == 0 {
		return wire.Event{}, errors.New("gsd/client: an action needs a seq > 0 (its idempotency key)")
	}
	var ev wire.Event
	err := c.do(ctx, &request{method: http.MethodPost, path: path("worlds", world, "actions"), body: a, write: true}, &ev)
	return ev, err
}

// ActBatch submits several actions in one request and returns one result per
// action, in order. Actions whose own result is retryable are sent again
// (with their seqs) until they settle, ctx ends or the attempts run out. The
// error is set only when no result could be had at all.
func (c *Client) ActBatch(ctx context.Context, world string, actions []ActionRequest) ([]BatchResult, error) {
	for i, a := range actions {
		if a.Seq == 0 {
			return nil, fmt.Errorf("gsd/client: action %d needs a seq > 0 (its idempotency key)", i)
		}
	}
	results := make([]BatchResult, len(actions))
	pending := make([]int, len(actions))
	for i := range pending {
		pending[i] = i
	}
	backoff := c.minBackoff
	maybe := make([]bool, len(actions)) // some attempt of action i may have committed
	settle := func(i int, err error) {
		maybe[i] = maybe[i] || IsOutcomeUnknown(err)
		results[i].Err = giveUp(nil, err, maybe[i])
	}
	for attempt := 1; ; attempt++ {
		batch := make([]ActionRequest, len(pending))
		for j, i := range pending {
			batch[j] = actions[i]
		}
		var out struct {
			Results []json.RawMessage `json:"results"`
		}
		err := c.do(ctx, &request{method: http.MethodPost, path: path("worlds", world, "actions:batch"),
			body: wire.Batch{Actions: batch}, write: true}, &out)
		if err != nil {
			if attempt == 1 {
				return nil, err
			}
			for _, i := range pending {
				settle(i, err)
			}
			return results, nil
		}
		if len(out.Results) != len(batch) {
			return nil, fmt.Errorf("gsd/client: batch of %d answered %d results", len(batch), len(out.Results))
		}
		var again []int
		for j, raw := range out.Results {
			i := pending[j]
			results[i] = decodeBatchResult(raw)
			if results[i].Err != nil {
				// An earlier attempt's unknown outcome stays unknown until
				// an answer with an event settles it.
				settle(i, results[i].Err)
			}
			if IsRetryable(results[i].Err) {
				again = append(again, i)
			}
		}
		pending = again
		if len(pending) == 0 || (c.maxAttempts > 0 && attempt >= c.maxAttempts) {
			return results, nil
		}
		if err := sleep(ctx, jitter(backoff)); err != nil {
			for _, i := range pending {
				results[i].Err = giveUp(err, results[i].Err, maybe[i])
			}
			return results, nil
		}
		backoff = min(backoff*2, c.maxBackoff)
	}
}

func decodeBatchResult(raw json.RawMessage) BatchResult {
	var probe wire.ErrorBody
	if err := json.Unmarshal(raw, &probe); err != nil {
		return BatchResult{Err: fmt.Errorf("gsd/client: decode batch result: %w", err)}
	}
	if probe.Code != "" {
		return BatchResult{Err: &Error{Code: probe.Code, Message: probe.Error, Status: codeStatus[probe.Code]}}
	}
	var r BatchResult
	if err := json.Unmarshal(raw, &r.Event); err != nil {
		r.Err = fmt.Errorf("gsd/client: decode batch event: %w", err)
	}
	return r
}

// Entity reads one entity. An empty consistency means linearizable.
func (c *Client) Entity(ctx context.Context, world, id string, consistency Consistency) (Entity, error) {
	q := url.Values{}
	if consistency != "" {
		q.Set("consistency", string(consistency))
	}
	var e Entity
	err := c.do(ctx, &request{method: http.MethodGet, path: path("worlds", world, "entities", id), query: q}, &e)
	return e, err
}

// Hash returns the answering node's state hash of world after event seq
// (0: now). Compare nodes by asking each with its own single-address client.
func (c *Client) Hash(ctx context.Context, world string, seq uint64) (HashPoint, error) {
	q := url.Values{}
	if seq > 0 {
		q.Set("seq", strconv.FormatUint(seq, 10))
	}
	var h HashPoint
	err := c.do(ctx, &request{method: http.MethodGet, path: path("worlds", world, "hash"), query: q}, &h)
	return h, err
}

// Status returns the answering node's view of its group.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	err := c.do(ctx, &request{method: http.MethodGet, path: path("status")}, &s)
	return s, err
}

// Join adds a node as a voter. It is idempotent: joining a member with the
// same addresses succeeds without change.
func (c *Client) Join(ctx context.Context, n wire.NodeInfo) error {
	return c.do(ctx, &request{method: http.MethodPost, path: path("cluster", "join"), body: n, write: true}, nil)
}

// Remove removes a member of the group.
func (c *Client) Remove(ctx context.Context, id string) error {
	return c.do(ctx, &request{method: http.MethodDelete, path: path("cluster", "nodes", id), write: true}, nil)
}

// TransferLeadership asks the leader to hand leadership to another voter.
func (c *Client) TransferLeadership(ctx context.Context) error {
	return c.do(ctx, &request{method: http.MethodPost, path: path("cluster", "transfer-leadership"), mode: retryUnapplied, write: true}, nil)
}

// Snapshot makes the answering node take a snapshot now and returns its
// Raft index.
func (c *Client) Snapshot(ctx context.Context) (uint64, error) {
	var out struct {
		Index uint64 `json:"index"`
	}
	err := c.do(ctx, &request{method: http.MethodPost, path: path("cluster", "snapshot"), write: true}, &out)
	return out.Index, err
}
