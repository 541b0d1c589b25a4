// Package audit serves the audit log of each world on this node over
// HTTP: the newest signed checkpoint, inclusion and consistency proofs,
// and the leaf hashes an offline verifier needs to name changed events
// (docs/API.md, "Audit"; docs/ANTICHEAT.md). It is one surface of the edge
// (api/doc.go) over the node's auditor (anticheat/audit/auditor), which
// keeps the trees; any node answers from its own tree, which every replica
// builds alike.
package audit

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"golang.org/x/mod/sumdb/tlog"
)

// Logs is what the routes need of the node's auditor
// (*auditor.Auditor implements it).
type Logs interface {
	// Log returns world's audit log on this node.
	Log(world string) (*audit.Log, error)
	// Checkpoint returns world's newest signed checkpoint, a note.
	Checkpoint(world string) ([]byte, error)
	// Sign signs world's checkpoint now and returns it.
	Sign(world string) ([]byte, error)
	// LogOf returns the audit log of world's incarnation inc, current or
	// deleted.
	LogOf(world string, inc uint64) (*audit.Log, error)
	// CheckpointOf returns the newest signed checkpoint of world's
	// incarnation inc: a deleted one's tombstone.
	CheckpointOf(world string, inc uint64) ([]byte, error)
	// SignSalts signs a salted world's salts note with the key that
	// signs its checkpoints (auditor.ErrNoKey: the node has none).
	SignSalts(n audit.SaltsNote) ([]byte, error)
}

// MaxLeaves bounds the leaf hashes of one leaves answer (2 MiB).
const MaxLeaves = 1 << 16

// API serves the audit routes over the edge's shared core.
type API struct {
	*edge.Core
	logs Logs
}

// New returns the audit routes' handlers over core and the node's logs.
func New(core *edge.Core, logs Logs) *API { return &API{Core: core, logs: logs} }

// Register adds the audit routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/worlds/{world}/audit/checkpoint", a.Checkpoint)
	mux.HandleFunc("POST /v1/worlds/{world}/audit/checkpoint", a.Sign)
	mux.HandleFunc("GET /v1/worlds/{world}/audit/proof", a.Proof)
	mux.HandleFunc("GET /v1/worlds/{world}/audit/consistency", a.Consistency)
	mux.HandleFunc("GET /v1/worlds/{world}/audit/leaves", a.Leaves)
	a.registerSalts(mux)
}

// Checkpoint answers the world's newest signed checkpoint as note text;
// with ?incarnation=N, that world incarnation's (a deleted one's
// tombstone).
func (a *API) Checkpoint(w http.ResponseWriter, r *http.Request) {
	if err := a.guard(r); err != nil {
		a.WriteError(w, err, false)
		return
	}
	inc, ok, err := incarnation(r)
	switch {
	case err != nil:
		a.WriteError(w, err, false)
	case ok:
		a.note(w, r, func(world string) ([]byte, error) { return a.logs.CheckpointOf(world, inc) })
	default:
		a.note(w, r, a.logs.Checkpoint)
	}
}

// log returns the log the request names: the world's current
// incarnation's, or ?incarnation=N's.
func (a *API) log(r *http.Request) (*audit.Log, error) {
	inc, ok, err := incarnation(r)
	switch {
	case err != nil:
		return nil, err
	case ok:
		return a.logs.LogOf(r.PathValue("world"), inc)
	default:
		return a.logs.Log(r.PathValue("world"))
	}
}

// incarnation reads ?incarnation=N (from 0), and whether it was given.
func incarnation(r *http.Request) (uint64, bool, error) {
	v := r.URL.Query().Get("incarnation")
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("%w: query parameter incarnation must be a number, got %q", fsm.ErrMalformed, v)
	}
	return n, true, nil
}

// Sign signs the world's checkpoint now and answers it as note text.
func (a *API) Sign(w http.ResponseWriter, r *http.Request) {
	a.note(w, r, a.logs.Sign)
}

func (a *API) note(w http.ResponseWriter, r *http.Request, get func(string) ([]byte, error)) {
	msg, err := get(r.PathValue("world"))
	if err != nil {
		a.WriteError(w, err, false)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(msg)
}

// Proof answers the inclusion proof of ?seq=N in the tree of ?size=M
// events (default: the log's size now).
func (a *API) Proof(w http.ResponseWriter, r *http.Request) {
	if err := a.guard(r); err != nil {
		a.WriteError(w, err, false)
		return
	}
	world := r.PathValue("world")
	l, err := a.log(r)
	if err != nil {
		a.WriteError(w, err, false)
		return
	}
	seq, err1 := param(r, "seq", 0, true)
	size, err2 := param(r, "size", uint64(l.Size()), false)
	if err := errors.Join(err1, err2); err != nil {
		a.WriteError(w, err, false)
		return
	}
	p, err := l.ProveInclusion(seq, int64(size))
	if err != nil {
		a.WriteError(w, err, false)
		return
	}
	a.WriteJSON(w, http.StatusOK, wire.AuditProof{World: world, Seq: seq, Size: int64(size), Proof: hashes(p)})
}

// Consistency answers the proof that the tree of ?from=M events is a
// prefix of the tree of ?to=N (default: the log's size now).
func (a *API) Consistency(w http.ResponseWriter, r *http.Request) {
	if err := a.guard(r); err != nil {
		a.WriteError(w, err, false)
		return
	}
	world := r.PathValue("world")
	l, err := a.log(r)
	if err != nil {
		a.WriteError(w, err, false)
		return
	}
	from, err1 := param(r, "from", 0, true)
	to, err2 := param(r, "to", uint64(l.Size()), false)
	if err := errors.Join(err1, err2); err != nil {
		a.WriteError(w, err, false)
		return
	}
	p, err := l.ProveConsistency(int64(from), int64(to))
	if err != nil {
		a.WriteError(w, err, false)
		return
	}
	a.WriteJSON(w, http.StatusOK, wire.AuditConsistency{World: world, From: int64(from), To: int64(to), Proof: hashes(p)})
}

// Leaves answers the leaf hashes of seqs ?from= (default 1) to ?to=
// (default: the log's size, and at most MaxLeaves from from), 32 bytes
// each in seq order (audit.EncodeLeafHashes). The seqs answered are in
// the headers Gsd-Audit-From and Gsd-Audit-To.
func (a *API) Leaves(w http.ResponseWriter, r *http.Request) {
	if err := a.guard(r); err != nil {
		a.WriteError(w, err, false)
		return
	}
	l, err := a.log(r)
	if err != nil {
		a.WriteError(w, err, false)
		return
	}
	from, err1 := param(r, "from", 1, false)
	to, err2 := param(r, "to", min(uint64(l.Size()), from+MaxLeaves-1), false)
	if err := errors.Join(err1, err2); err != nil {
		a.WriteError(w, err, false)
		return
	}
	if to >= from && to-from >= MaxLeaves {
		a.WriteError(w, fmt.Errorf("%w: at most %d leaves per request, asked %d", fsm.ErrMalformed, MaxLeaves, to-from+1), false)
		return
	}
	hs, err := l.LeafHashes(from, to)
	if err != nil {
		a.WriteError(w, err, false)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Gsd-Audit-From", strconv.FormatUint(from, 10))
	w.Header().Set("Gsd-Audit-To", strconv.FormatUint(to, 10))
	w.Write(audit.EncodeLeafHashes(hs))
}

// param reads a decimal query parameter from 1 on; def when absent and
// not required.
func param(r *http.Request, name string, def uint64, required bool) (uint64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		if required {
			return 0, fmt.Errorf("%w: query parameter %s is required", fsm.ErrMalformed, name)
		}
		return def, nil
	}
	n, err := strconv.ParseUint(v, 10, 63)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%w: query parameter %s must be a number from 1, got %q", fsm.ErrMalformed, name, v)
	}
	return n, nil
}

func hashes(p []tlog.Hash) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}
