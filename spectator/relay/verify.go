package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/spectator"
	"github.com/gsd-dev/gsd/wire"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Verifying what a relay receives (issues 13 and 15). A relay given the
// cluster's audit public keys (Config.AuditKeys) asks its upstream, while
// it follows a world and every Config.CheckpointInterval, for the world's
// newest signed audit checkpoint, and accepts it only when it is signed
// by one of those keys, is of the world followed, and extends the last
// one it accepted (a consistency proof from the upstream checks that the
// tree only grew). A checkpoint older than the accepted one (rolled back
// or replayed), one of the same size with another root (a fork), or one
// the proof does not tie to the accepted one is refused: the relay drops
// the upstream (the follow ends and its viewers with it), logs, and
// counts gsd_relay_checkpoint_failures_total{reason}. What it accepted
// is kept for the relay's life, so that a follow opened again cannot be
// fed an older history.
//
// The events it holds against the leaves (leaves.go): a leaf is the
// hash of a whole event, hidden changes included, and a node gives a
// world's audit hashes only to callers that see everything; so a relay
// whose view hides fields gets no checkpoint at all (its upstream
// refuses it, and the relay goes on without), and a relay that gets
// checkpoints receives every event whole. Such a relay hashes each
// event it receives into the tree's right edge, from seq 1, and compares
// it with the checkpoints it accepts: events that are not the signed
// history drop the upstream too (reason leaves). It passes on only what
// it accepted.

// DefaultCheckpointInterval is how often a verifying relay asks for a
// world's newest checkpoint: a node signs one every 10 s by default.
const DefaultCheckpointInterval = 10 * time.Second

// ErrCheckpoint reports a checkpoint the relay refused (CheckpointError).
var ErrCheckpoint = errors.New("gsd/relay: audit checkpoint refused")

// The reasons a checkpoint is refused: gsd_relay_checkpoint_failures_total's
// reason label.
const (
	ReasonMalformed    = "malformed"    // not a signed checkpoint note
	ReasonSignature    = "signature"    // a known key's signature does not verify (forged)
	ReasonUnknownKey   = "unknown_key"  // signed by no key the relay knows
	ReasonOrigin       = "origin"       // a checkpoint of another world
	ReasonRollback     = "rollback"     // older than the one accepted (replayed, or the tree went back)
	ReasonFork         = "fork"         // the size accepted with another root
	ReasonInconsistent = "inconsistent" // the consistency proof does not tie it to the one accepted
)

// CheckpointError is a refused checkpoint and why.
type CheckpointError struct {
	World  string
	Reason string // one of the Reason constants
	Detail string
}

func (e *CheckpointError) Error() string {
	return fmt.Sprintf("%s: world %s: %s: %s", ErrCheckpoint, e.World, e.Reason, e.Detail)
}

// Unwrap makes errors.Is(err, ErrCheckpoint) hold.
func (e *CheckpointError) Unwrap() error { return ErrCheckpoint }

// keep is how many accepted checkpoints a world keeps, for the keyframes
// of delayed viewers (spectator.CheckpointFunc: the newest at or below a
// keyframe's seq) and the checkpoint route.
const keep = 64

// checkpoints are the checkpoints a relay accepted, per world.
type checkpoints struct {
	keys     note.Verifiers
	failures *prometheus.CounterVec

	// The leaves' checks (leaves.go): sizes verified, follows skipped.
	leavesVerified prometheus.Counter
	leavesSkipped  *prometheus.CounterVec

	mu     sync.Mutex
	worlds map[string][]acceptedCP // sizes ascending, one incarnation's
}

// acceptedCP is one accepted checkpoint and its note.
type acceptedCP struct {
	cp   audit.Checkpoint
	note []byte
}

// newCheckpoints returns the verifier of keys (nil when there are none:
// the relay verifies nothing), its metric registered in reg.
func newCheckpoints(keys []audit.VerifyingKey, reg prometheus.Registerer) (*checkpoints, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	vs := make([]note.Verifier, len(keys))
	for i, k := range keys {
		if k.Verifier == nil {
			return nil, fmt.Errorf("relay: AuditKeys[%d] is empty", i)
		}
		vs[i] = k.Verifier
	}
	c := &checkpoints{keys: note.VerifierList(vs...), worlds: make(map[string][]acceptedCP),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gsd_relay_checkpoint_failures_total",
			Help: "Audit checkpoints the relay refused (and dropped the upstream for), by reason."}, []string{"reason"}),
		leavesVerified: prometheus.NewCounter(prometheus.CounterOpts{Name: "gsd_relay_leaf_checks_total",
			Help: "Sizes at which the events the relay received were verified against a signed checkpoint's tree."}),
		leavesSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gsd_relay_leaf_checks_skipped_total",
			Help: "Follows whose events the relay could not check against the audit tree's leaves, by reason."}, []string{"reason"})}
	for _, m := range []prometheus.Collector{c.failures, c.leavesVerified, c.leavesSkipped} {
		if err := reg.Register(m); err != nil {
			return nil, fmt.Errorf("relay metrics: %w", err)
		}
	}
	return c, nil
}

// proveFunc fetches the proof that world's tree of from events is a
// prefix of its tree of to (of incarnation inc).
type proveFunc func(from, to int64, inc uint64) (tlog.TreeProof, error)

// check verifies msg, a signed checkpoint of world from the upstream,
// against the one accepted last, and accepts it. An error that is no
// CheckpointError (the proof could not be fetched) leaves the next round
// to try again.
func (c *checkpoints) check(world string, msg []byte, prove proveFunc) error {
	n, err := note.Open(msg, c.keys)
	if err != nil {
		var unknown *note.UnknownVerifierError
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		switch {
		case errors.As(err, &invalid):
			return c.refuse(world, ReasonSignature, err.Error())
		case errors.As(err, &unknown), errors.As(err, &unverified):
			return c.refuse(world, ReasonUnknownKey, err.Error())
		}
		return c.refuse(world, ReasonMalformed, err.Error())
	}
	cp, err := audit.ParseCheckpoint(n.Text)
	if err != nil {
		return c.refuse(world, ReasonMalformed, err.Error())
	}
	if cp.Origin != world {
		return c.refuse(world, ReasonOrigin, fmt.Sprintf("a checkpoint of %q", cp.Origin))
	}
	c.mu.Lock()
	acc := c.worlds[world]
	c.mu.Unlock()
	before := acc
	if len(acc) > 0 {
		last := acc[len(acc)-1].cp
		switch {
		case cp.Incarnation < last.Incarnation:
			return c.refuse(world, ReasonRollback, fmt.Sprintf("incarnation %d after %d", cp.Incarnation, last.Incarnation))
		case cp.Incarnation > last.Incarnation:
			acc = nil // the world was created again: a new tree
		case cp.Size < last.Size:
			return c.refuse(world, ReasonRollback, fmt.Sprintf("%d events after %d", cp.Size, last.Size))
		case cp.Size == last.Size && cp.Root != last.Root:
			return c.refuse(world, ReasonFork, fmt.Sprintf("%d events with root %v, accepted with root %v", cp.Size, cp.Root, last.Root))
		case cp.Size == last.Size:
			return nil // the one accepted, again
		case last.Size > 0:
			p, err := prove(last.Size, cp.Size, cp.Incarnation)
			if err != nil {
				return fmt.Errorf("consistency proof of world %s from %d to %d: %w", world, last.Size, cp.Size, err)
			}
			if err := audit.CheckConsistency(last, cp, p); err != nil {
				return c.refuse(world, ReasonInconsistent, err.Error())
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.worlds[world]; len(now) != len(before) || len(now) > 0 && now[len(now)-1].cp != before[len(before)-1].cp {
		// Another check of the world accepted one meanwhile (a follow
		// replaced): the next round compares with it.
		return nil
	}
	if len(acc) == keep {
		acc = acc[1:]
	}
	c.worlds[world] = append(slices.Clip(acc), acceptedCP{cp: cp, note: msg})
	return nil
}

// refuse counts and returns a refusal.
func (c *checkpoints) refuse(world, reason, detail string) error {
	c.failures.WithLabelValues(reason).Inc()
	return &CheckpointError{World: world, Reason: reason, Detail: detail}
}

// at returns the newest accepted checkpoint of world of at most seq
// events (nil: none); a spectator.CheckpointFunc.
func (c *checkpoints) at(world string, seq uint64) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	acc := c.worlds[world]
	for i := len(acc) - 1; i >= 0; i-- {
		if uint64(acc[i].cp.Size) <= seq {
			return acc[i].note
		}
	}
	return nil
}

var _ spectator.CheckpointFunc = (*checkpoints)(nil).at

// verify checks the upstream's checkpoints of f's world until ctx ends,
// and ends the follow (and so drops the upstream) on one it refuses. The
// returned func stops it and waits; without audit keys it does nothing.
func (f *follow) verify(ctx context.Context) (wait func()) {
	c := f.r.checkpoints
	if c == nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		every := f.r.cfg.CheckpointInterval
		if every <= 0 {
			every = DefaultCheckpointInterval
		}
		quiet := false // the upstream gives no checkpoint: said once
		for {
			err := f.checkOnce(ctx)
			if err == nil {
				err = f.checkLeaves(ctx)
			}
			switch {
			case errors.Is(err, ErrCheckpoint):
				f.end(err) // logs it
				f.cancel()
				return
			case err != nil && ctx.Err() == nil && !quiet:
				f.r.log.Info("no audit checkpoint verified from the upstream", "world", f.world, "err", err)
				quiet = true
			case err == nil:
				quiet = false
			}
			if !sleep(ctx, every) {
				return
			}
		}
	}()
	return func() {
		f.cancel() // the follow ended: so does its verifier
		<-done
	}
}

// checkOnce fetches the upstream's newest checkpoint of f's world and
// checks it.
func (f *follow) checkOnce(ctx context.Context) error {
	msg, err := f.r.upstreamGet(ctx, f.world, "audit/checkpoint", nil)
	if err != nil {
		return err
	}
	return f.r.checkpoints.check(f.world, msg, f.prover(ctx))
}

// checkLeaves compares the events f received with the newest checkpoint
// accepted (leaves.go).
func (f *follow) checkLeaves(ctx context.Context) error {
	cp, ok := f.r.checkpoints.latest(f.world)
	if !ok || f.leaves == nil {
		return nil
	}
	return f.leaves.round(cp, f.prover(ctx))
}

// prover fetches consistency proofs of f's world from the upstream.
func (f *follow) prover(ctx context.Context) proveFunc {
	return func(from, to int64, inc uint64) (tlog.TreeProof, error) {
		q := url.Values{"from": {strconv.FormatInt(from, 10)}, "to": {strconv.FormatInt(to, 10)}}
		if inc != 0 {
			q.Set("incarnation", strconv.FormatUint(inc, 10))
		}
		b, err := f.r.upstreamGet(ctx, f.world, "audit/consistency", q)
		if err != nil {
			return nil, err
		}
		var ac wire.AuditConsistency
		if err := json.Unmarshal(b, &ac); err != nil {
			return nil, fmt.Errorf("%w: consistency proof: %v", wire.ErrMalformed, err)
		}
		p := make(tlog.TreeProof, len(ac.Proof))
		for i, h := range ac.Proof {
			if len(h) != tlog.HashSize {
				return nil, fmt.Errorf("%w: consistency proof: a hash of %d bytes", wire.ErrMalformed, len(h))
			}
			p[i] = tlog.Hash(h)
		}
		return p, nil
	}
}

// maxAuditAnswer bounds an audit answer read from the upstream: a
// checkpoint note or a consistency proof is a few KB.
const maxAuditAnswer = 1 << 20

// upstreamGet reads the upstream's answer to GET
// /v1/worlds/{world}/{route}?q, with the relay's token.
func (r *Relay) upstreamGet(ctx context.Context, world, route string, q url.Values) ([]byte, error) {
	u := strings.TrimSuffix(r.cfg.Upstream, "/") + "/v1/worlds/" + url.PathEscape(world) + "/" + route
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.OpenTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: upstream %s: %v", ErrBadRequest, r.cfg.Upstream, err)
	}
	tok := r.cfg.Token
	if r.cfg.TokenSource != nil {
		if tok, err = r.cfg.TokenSource(); err != nil {
			return nil, &UpstreamError{Code: wire.CodeUnauthorized, Message: "the relay's token: " + err.Error()}
		}
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := r.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAuditAnswer))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		ue := &UpstreamError{Status: resp.StatusCode}
		var eb wire.ErrorBody
		if json.Unmarshal(b, &eb) == nil {
			ue.Code, ue.Message = eb.Code, eb.Error
		} else {
			ue.Message = strings.TrimSpace(string(b))
		}
		return nil, ue
	}
	return b, nil
}

// registerAudit adds the audit routes a relay serves when it verifies,
// so that a relay of it verifies too: GET .../audit/checkpoint answers
// the newest checkpoint it accepted of at most the events it received
// (never one its viewers' view is not at yet), and GET
// .../audit/consistency passes the upstream's proof on (it proves
// itself).
func (r *Relay) registerAudit(mux *http.ServeMux) {
	if r.checkpoints == nil {
		return
	}
	mux.HandleFunc("GET /v1/worlds/{world}/audit/checkpoint", r.auditCheckpoint)
	mux.HandleFunc("GET /v1/worlds/{world}/audit/consistency", r.auditConsistency)
}

// errNoCheckpoint: the relay accepted no checkpoint it may pass on.
var errNoCheckpoint = &UpstreamError{Status: http.StatusNotFound, Code: wire.CodeNoAuditKey,
	Message: "this relay holds no verified audit checkpoint of the world at or before what it received"}

func (r *Relay) auditCheckpoint(w http.ResponseWriter, req *http.Request) {
	world := req.PathValue("world")
	r.mu.Lock()
	f := r.follows[world]
	r.mu.Unlock()
	var msg []byte
	if f != nil {
		msg = r.checkpoints.at(world, f.position()-1)
	}
	if msg == nil {
		r.writeError(w, errNoCheckpoint)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(msg)
}

func (r *Relay) auditConsistency(w http.ResponseWriter, req *http.Request) {
	b, err := r.upstreamGet(req.Context(), req.PathValue("world"), "audit/consistency", req.URL.Query())
	if err != nil {
		r.writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}
