package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gsd-dev/gsd/wire"
)

// The audit routes (docs/API.md, "Audit"): each answer comes from one
// node's tree, and every replica's tree is the same up to its size.

// AuditCheckpoint returns world's newest signed audit checkpoint, as the
// note text a node signed (audit.OpenCheckpoint reads it).
func (c *Client) AuditCheckpoint(ctx context.Context, world string) ([]byte, error) {
	return c.raw(ctx, &request{method: http.MethodGet, path: path("worlds", world, "audit", "checkpoint")})
}

// SignAuditCheckpoint asks the node to sign world's checkpoint now (admin).
func (c *Client) SignAuditCheckpoint(ctx context.Context, world string) ([]byte, error) {
	return c.raw(ctx, &request{method: http.MethodPost, path: path("worlds", world, "audit", "checkpoint")})
}

// AuditProof returns the inclusion proof of the event of seq in world's
// tree of size events.
func (c *Client) AuditProof(ctx context.Context, world string, seq uint64, size int64) (wire.AuditProof, error) {
	q := url.Values{"seq": {strconv.FormatUint(seq, 10)}, "size": {strconv.FormatInt(size, 10)}}
	var p wire.AuditProof
	err := c.do(ctx, &request{method: http.MethodGet, path: path("worlds", world, "audit", "proof"), query: q}, &p)
	return p, err
}

// AuditConsistency returns the proof that world's tree of from events is a
// prefix of its tree of to events.
func (c *Client) AuditConsistency(ctx context.Context, world string, from, to int64) (wire.AuditConsistency, error) {
	q := url.Values{"from": {strconv.FormatInt(from, 10)}, "to": {strconv.FormatInt(to, 10)}}
	var p wire.AuditConsistency
	err := c.do(ctx, &request{method: http.MethodGet, path: path("worlds", world, "audit", "consistency"), query: q}, &p)
	return p, err
}

// AuditCheckpointOf returns the newest signed audit checkpoint of
// world's incarnation inc (fsm.WorldInfo.Incarnation): for a deleted
// incarnation, its tombstone, the final checkpoint of its tree.
func (c *Client) AuditCheckpointOf(ctx context.Context, world string, inc uint64) ([]byte, error) {
	q := url.Values{"incarnation": {strconv.FormatUint(inc, 10)}}
	return c.raw(ctx, &request{method: http.MethodGet, path: path("worlds", world, "audit", "checkpoint"), query: q})
}

// AuditLeavesOf is AuditLeaves of world's incarnation inc, current or
// deleted.
func (c *Client) AuditLeavesOf(ctx context.Context, world string, inc uint64, from, to uint64) ([]byte, error) {
	return c.auditLeaves(ctx, world, url.Values{"incarnation": {strconv.FormatUint(inc, 10)}}, from, to)
}

// AuditSalts returns a salted world's salt table (moderators and
// admins): what gsdctl audit verify needs to recompute its leaves.
func (c *Client) AuditSalts(ctx context.Context, world string) (wire.AuditSalts, error) {
	var out wire.AuditSalts
	err := c.do(ctx, &request{method: http.MethodGet, path: path("worlds", world, "audit", "salts")}, &out)
	return out, err
}

// AuditSaltsSigned returns a salted world's salt table (moderators and
// admins) as the exact JSON bytes the node served, and the salts note the
// node signed over them with its audit key (anticheat/audit.OpenSalts
// reads it): nil when the node holds no key, or is from before signed
// salts (it answers the table alone).
func (c *Client) AuditSaltsSigned(ctx context.Context, world string) (table, note []byte, err error) {
	q := url.Values{"signed": {"1"}}
	b, err := c.raw(ctx, &request{method: http.MethodGet, path: path("worlds", world, "audit", "salts"), query: q})
	if err != nil {
		return nil, nil, err
	}
	var s wire.AuditSaltsSigned
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, nil, fmt.Errorf("salts of %s: %w", world, err)
	}
	if s.Table == nil { // a node from before: the table alone, unsigned
		return bytes.TrimSuffix(b, []byte("\n")), nil, nil
	}
	if s.Note != "" {
		note = []byte(s.Note)
	}
	return s.Table, note, nil
}

// EraseAuditSalt deletes player's salt in a salted world (admin): the
// world's leaves no longer link to the player's id.
func (c *Client) EraseAuditSalt(ctx context.Context, world, player string) error {
	return c.do(ctx, &request{method: http.MethodDelete, path: path("worlds", world, "audit", "salts", player), write: true}, nil)
}

// auditLeavesPage is the most leaf hashes one request asks for (the
// server's bound).
const auditLeavesPage = 1 << 16

// AuditLeaves returns the leaf hashes of world's events from seq from to
// to, 32 bytes each in seq order (audit.DecodeLeafHashes reads them),
// fetched in pages.
func (c *Client) AuditLeaves(ctx context.Context, world string, from, to uint64) ([]byte, error) {
	return c.auditLeaves(ctx, world, url.Values{}, from, to)
}

func (c *Client) auditLeaves(ctx context.Context, world string, q url.Values, from, to uint64) ([]byte, error) {
	var out []byte
	for from <= to {
		end := min(to, from+auditLeavesPage-1)
		q.Set("from", strconv.FormatUint(from, 10))
		q.Set("to", strconv.FormatUint(end, 10))
		b, err := c.raw(ctx, &request{method: http.MethodGet, path: path("worlds", world, "audit", "leaves"), query: q})
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
		from = end + 1
	}
	return out, nil
}

// raw runs a call whose answer is not JSON and returns its body.
func (c *Client) raw(ctx context.Context, r *request) ([]byte, error) {
	var out []byte
	err := c.exec(ctx, r, func(ctx context.Context, base string, _ []byte) error {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if c.attemptTimeout > 0 {
			actx, cancel = context.WithTimeout(ctx, c.attemptTimeout)
		}
		defer cancel()
		req, err := c.newHTTPRequest(actx, base, r, nil)
		if err != nil {
			return err
		}
		resp, err := c.send(req, base)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if out, err = io.ReadAll(io.LimitReader(resp.Body, maxBody)); err != nil {
			return &connError{addr: base, sent: true, err: err}
		}
		return nil
	})
	return out, err
}
