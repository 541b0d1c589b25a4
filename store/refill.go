package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/prometheus/client_golang/prometheus"
)

// ErrUnverifiable reports events a RefillVerifier has nothing to check
// against (beyond the audit tree it trusts, or no tree for the world).
var ErrUnverifiable = errors.New("gsd/store: events cannot be verified here")

// ErrNotServed reports a peer that cannot serve the archive pages asked
// for: one that does not run the group, or an older gsd that cannot be
// asked for a group by name. RefillPeers wrap it; the refiller logs the
// refusal and asks the other peers, and stores nothing from that one.
var ErrNotServed = errors.New("gsd/store: the peer does not serve this group's archive")

// RefillVerifier checks events fetched from another node before the
// archive stores them (the node's audit tree: cmd/gsd wires the auditor).
type RefillVerifier interface {
	// VerifyRefill checks events (one world, consecutive seqs) and
	// returns how many leading ones it verified. A nil error with fewer
	// than all: the rest are beyond what it can check. An error: the
	// event after the verified ones is refused (it differs from what the
	// verifier trusts).
	VerifyRefill(world string, events []*fsm.Event) (int, error)
}

// RefillPeers fetches archived events from other nodes (api/edge's peer
// client in gsd; other Stores in tests).
type RefillPeers interface {
	// FetchArchive returns up to max consecutive events of world from
	// seq from on, as node's archive holds them (none: it does not).
	FetchArchive(ctx context.Context, node fsm.NodeInfo, world string, from uint64, max int) ([]*fsm.Event, error)
}

// Verification methods, the keys of ArchiveStatus.Verified.
const (
	// VerifiedByAudit: every event's leaf is in the audit tree this node
	// trusts (an inclusion proof against its root).
	VerifiedByAudit = "audit"
	// VerifiedByTwoPeers: beyond the audit tree, or without one: two
	// other nodes answered the same bytes.
	VerifiedByTwoPeers = "two_peers"
)

// RefillConfig configures Store.RunRefill.
type RefillConfig struct {
	Peers RefillPeers
	// Members returns the nodes that hold a replica of this group (this
	// one may be among them): the peers a refill asks. nil: the nodes in
	// the group's node table, which is every node for the membership
	// group (a shard's table lists only the nodes that led it).
	Members  func() []fsm.NodeInfo
	Verifier RefillVerifier // nil: two peers' equal answers only
	Interval time.Duration  // how often the archive is checked again
	PageSize int            // events fetched per call
}

// DefaultRefillConfig returns the defaults: a check a minute, pages of
// 256 events.
func DefaultRefillConfig() RefillConfig {
	return RefillConfig{Interval: time.Minute, PageSize: 256}
}

// Validate checks the config.
func (c RefillConfig) Validate() error {
	var errs []error
	if c.Peers == nil {
		errs = append(errs, errors.New("config.Peers is required"))
	}
	if c.Interval <= 0 {
		errs = append(errs, errors.New("config.Interval must be > 0"))
	}
	if c.PageSize < 1 {
		errs = append(errs, errors.New("config.PageSize must be >= 1"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("refill config: %w", err)
	}
	return nil
}

// ArchiveStatus is what the node knows its event archive lacks, and what
// refills did since the node started.
type ArchiveStatus struct {
	// Missing are the ranges the archive lacks: below the newest event it
	// holds (or the newest the log no longer replays) and above what
	// retention deleted on purpose.
	Missing       []Range `json:"missing"`
	MissingEvents uint64  `json:"missing_events"`
	// Refilled counts events stored by refills, Refused fetched events
	// that failed verification (or a peer's answer that was malformed).
	Refilled uint64            `json:"refilled"`
	Refused  uint64            `json:"refused"`
	Verified map[string]uint64 `json:"verified,omitempty"` // refilled events by method
	Checked  time.Time         `json:"checked"`
	Error    string            `json:"error,omitempty"` // why the last refill stopped short
}

// refillState is the Store's archive status and the refiller's wake-up.
type refillState struct {
	mu   sync.Mutex
	st   ArchiveStatus
	kick chan struct{}
}

func (r *refillState) wake() chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.kick == nil {
		r.kick = make(chan struct{}, 1)
	}
	return r.kick
}

// ArchiveStatus returns the archive's status as of its last check.
func (s *Store) ArchiveStatus() ArchiveStatus {
	s.refill.mu.Lock()
	defer s.refill.mu.Unlock()
	st := s.refill.st
	st.Missing = append([]Range{}, st.Missing...) // [] rather than null in JSON
	if st.Verified != nil {
		m := make(map[string]uint64, len(st.Verified))
		for k, v := range st.Verified {
			m[k] = v
		}
		st.Verified = m
	}
	return st
}

// CheckArchive finds the ranges the event archive lacks, world by world,
// and records them in the status (and gsd_archive_missing_events): after
// a corrupt archive was replaced by an empty one, a snapshot install, or
// a lost write. A world's archive should hold every seq above what
// retention deleted (and above the retention count bound) up to the
// newest seq the feed archived or that a snapshot restore skipped.
func (s *Store) CheckArchive() ([]Range, error) {
	var out []Range
	var errs []error
	for _, w := range s.fsm.Worlds() {
		s.feed.mu.Lock()
		var hi uint64
		if t := s.feed.tails[w.ID]; t != nil {
			hi = min(t.archived, w.Seq)
		}
		s.feed.mu.Unlock()
		floor, err := s.arch.pruned(w.ID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if keep := s.cfg.Retention.MaxEventsPerWorld; keep > 0 && w.Seq > keep {
			floor = max(floor, w.Seq-keep)
		}
		if hi <= floor {
			continue
		}
		holes, err := s.arch.holes(w.ID, floor, hi)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, holes...)
	}
	var n uint64
	for _, r := range out {
		n += r.Len()
	}
	s.refill.mu.Lock()
	s.refill.st.Missing, s.refill.st.MissingEvents, s.refill.st.Checked = out, n, time.Now()
	s.refill.mu.Unlock()
	return out, errors.Join(errs...)
}

// RefillNow makes a running refiller check the archive at once.
func (s *Store) RefillNow() {
	select {
	case s.refill.wake() <- struct{}{}:
	default:
	}
}

// RunRefill checks the archive every cfg.Interval (and on RefillNow) and
// refills the ranges it lacks from other nodes, verified, until ctx ends.
func (s *Store) RunRefill(ctx context.Context, cfg RefillConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	kick := s.refill.wake()
	for {
		if err := s.refillOnce(ctx, cfg); err != nil && ctx.Err() == nil {
			s.log.Warn("event archive refill incomplete; retrying", "err", err, "in", cfg.Interval)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-kick:
		}
	}
}

// refillOnce checks the archive and refills what it lacks.
func (s *Store) refillOnce(ctx context.Context, cfg RefillConfig) error {
	missing, err := s.CheckArchive()
	if len(missing) == 0 {
		s.setRefillError(err)
		return err
	}
	members := s.fsm.Nodes
	if cfg.Members != nil {
		members = cfg.Members
	}
	var peers []fsm.NodeInfo
	for _, n := range members() {
		if n.ID != s.cfg.ID && n.HTTPAddr != "" {
			peers = append(peers, n)
		}
	}
	errs := []error{err}
	for _, r := range missing {
		if _, err := s.refillRange(ctx, cfg, peers, r); err != nil {
			errs = append(errs, fmt.Errorf("world %s seqs %d to %d: %w", r.World, r.From, r.To, err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	// What is missing now: refilled and given-up ranges no longer are.
	_, cerr := s.CheckArchive()
	errs = append(errs, cerr)
	err = errors.Join(errs...)
	s.setRefillError(err)
	return err
}

func (s *Store) setRefillError(err error) {
	s.refill.mu.Lock()
	defer s.refill.mu.Unlock()
	s.refill.st.Error = ""
	if err != nil {
		s.refill.st.Error = err.Error()
	}
}

// refillRange fetches r page by page, verifies each page and stores it.
// It returns how many events it stored; it stops at the first page no
// peer answers with verified events. A part of r that every peer answers
// it no longer holds (their retention deleted it) is given up: recorded
// as deleted by retention here too, so it is not missing any more.
func (s *Store) refillRange(ctx context.Context, cfg RefillConfig, peers []fsm.NodeInfo, r Range) (uint64, error) {
	if len(peers) == 0 {
		return 0, errors.New("no other node to refill from")
	}
	var stored uint64
	for from := r.From; from <= r.To; {
		want := int(min(uint64(cfg.PageSize), r.To-from+1))
		evs, method, err := s.fetchVerified(ctx, cfg, peers, r.World, from, want)
		if gone, ok := errors.AsType[*goneError](err); ok {
			if err := s.arch.markPruned(r.World, gone.next-1); err != nil {
				return stored, err
			}
			s.log.Warn("event archive refill: no other node holds these events any more (retention); given up",
				"world", r.World, "from", from, "to", gone.next-1)
			if gone.next > r.To {
				break
			}
			from, evs, method, err = gone.next, gone.evs, gone.method, nil
		}
		if err != nil {
			return stored, err
		}
		if err := s.markMovedRefill(r.World, evs); err != nil {
			return stored, err
		}
		n, err := s.arch.fill(r.World, evs, func() (uint64, bool) {
			w, err := s.fsm.World(r.World)
			return archiveFloor(w), err == nil
		})
		if err != nil {
			return stored, fmt.Errorf("store refilled events: %w", err)
		}
		stored += uint64(n)
		s.refill.mu.Lock()
		s.refill.st.Refilled += uint64(n)
		if s.refill.st.Verified == nil {
			s.refill.st.Verified = make(map[string]uint64)
		}
		s.refill.st.Verified[method] += uint64(n)
		s.refill.mu.Unlock()
		s.log.Info("event archive refilled", "world", r.World, "from", from, "to", evs[len(evs)-1].Seq, "stored", n, "verified_by", method)
		from += uint64(len(evs))
	}
	return stored, nil
}

// goneError: every peer answered and none holds seq from any more; the
// oldest seq after it that one holds is next, and evs are the events
// from next on, verified by method.
type goneError struct {
	from, next uint64
	evs        []*fsm.Event
	method     string
}

func (e *goneError) Error() string {
	return fmt.Sprintf("no node holds seqs %d to %d any more", e.from, e.next-1)
}

// fetchVerified asks the peers in turn for up to want events of world from
// seq from on and returns the first answer that verifies, with how.
// Refused events are counted and logged; nothing unverified is returned.
// When every peer answered, none holds from and none was refused, the
// error is a *goneError carrying the oldest later page a peer holds,
// verified: a peer claiming it lacks from must show what it holds instead.
// A page from from that no other peer confirmed nor contradicted is not
// refused, but a peer holds from: nothing is given up.
func (s *Store) fetchVerified(ctx context.Context, cfg RefillConfig, peers []fsm.NodeInfo, world string, from uint64, want int) ([]*fsm.Event, string, error) {
	var errs []error
	var later []*fsm.Event // the page from the oldest seq after from a peer holds
	laterPeer, answered, refused, held := -1, 0, false, false
	for i, p := range peers {
		evs, err := s.fetchPage(ctx, cfg, p, world, from, want)
		if err != nil {
			refused = refused || errors.Is(err, errMalformedPage)
			errs = append(errs, err)
			continue
		}
		answered++
		if len(evs) == 0 || evs[0].Seq != from {
			if len(evs) > 0 && (later == nil || evs[0].Seq < later[0].Seq) {
				later, laterPeer = evs, i
			}
			errs = append(errs, fmt.Errorf("%w: node %s, seq %d", errNotHeld, p.ID, from))
			continue
		}
		got, method, err := s.verifyPage(ctx, cfg, peers, i, world, evs)
		if err == nil {
			return got, method, nil
		}
		held = true
		refused = refused || !errors.Is(err, errUnconfirmed)
		errs = append(errs, err)
	}
	if answered == len(peers) && !refused && !held && later != nil {
		got, method, err := s.verifyPage(ctx, cfg, peers, laterPeer, world, later)
		if err == nil {
			return nil, "", &goneError{from: from, next: later[0].Seq, evs: got, method: method}
		}
		errs = append(errs, err)
	}
	return nil, "", errors.Join(errs...)
}

// verifyPage verifies evs, peers[i]'s answer: by the verifier, or, for
// what it cannot check, by a second peer's equal answer. It returns the
// leading events verified, or why none were: refused (counted and
// logged) when they differ from the tree or from another peer's answer,
// errUnconfirmed when no other peer holds them to compare with.
func (s *Store) verifyPage(ctx context.Context, cfg RefillConfig, peers []fsm.NodeInfo, i int, world string, evs []*fsm.Event) ([]*fsm.Event, string, error) {
	p := peers[i]
	if cfg.Verifier != nil {
		n, err := cfg.Verifier.VerifyRefill(world, evs)
		if err != nil {
			s.refused(p, world, evs[n:], err)
			if n == 0 {
				return nil, "", fmt.Errorf("node %s: %w", p.ID, err)
			}
		}
		if n > 0 {
			return evs[:n], VerifiedByAudit, nil
		}
	}
	// Nothing to check against: a second node must answer the same.
	second, err := s.secondOpinion(ctx, cfg, peers, i, world, evs[0].Seq, evs)
	if errors.Is(err, errUnconfirmed) {
		s.log.Warn("event archive refill: no second peer holds these events to confirm them; not stored yet",
			"peer", p.ID, "world", world, "from", evs[0].Seq, "events", len(evs), "err", err)
	} else if err != nil {
		s.refused(p, world, evs, err)
	}
	if err != nil {
		return nil, "", fmt.Errorf("node %s: %w", p.ID, err)
	}
	return second, VerifiedByTwoPeers, nil
}

// secondOpinion returns the leading events of evs (node peers[skip]'s
// answer) that another peer answered byte for byte the same. A peer whose
// answer does not start at from does not hold it (one that has not swept
// a moved world's events from before its move yet, or pruned them): it
// has no opinion. The error wraps ErrUnverifiable, and errUnconfirmed
// unless a peer answered other events from from (a contradiction).
func (s *Store) secondOpinion(ctx context.Context, cfg RefillConfig, peers []fsm.NodeInfo, skip int, world string, from uint64, evs []*fsm.Event) ([]*fsm.Event, error) {
	var errs []error
	contradicted := false
	for j, q := range peers {
		if j == skip {
			continue
		}
		other, err := s.fetchPage(ctx, cfg, q, world, from, len(evs))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(other) == 0 || other[0].Seq != from {
			errs = append(errs, fmt.Errorf("%w: node %s, seq %d", errNotHeld, q.ID, from))
			continue
		}
		k := 0
		for k < len(other) && bytes.Equal(fsm.EncodeEvent(evs[k]), fsm.EncodeEvent(other[k])) {
			k++
		}
		if k > 0 {
			return evs[:k], nil
		}
		contradicted = true
		errs = append(errs, fmt.Errorf("node %s answered other events", q.ID))
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("%w: %w: no second node to compare with", ErrUnverifiable, errUnconfirmed)
	}
	if !contradicted {
		return nil, fmt.Errorf("%w: %w: %w", ErrUnverifiable, errUnconfirmed, errors.Join(errs...))
	}
	return nil, fmt.Errorf("%w: %w", ErrUnverifiable, errors.Join(errs...))
}

// fetchPage fetches a page and checks its shape: world's consecutive seqs
// from from or a later seq (the peer no longer holds from), at most want
// of them, of the world's current incarnation (a peer that missed its
// delete and re-creation holds the earlier one's). A page of another
// shape is refused.
func (s *Store) fetchPage(ctx context.Context, cfg RefillConfig, p fsm.NodeInfo, world string, from uint64, want int) ([]*fsm.Event, error) {
	evs, err := cfg.Peers.FetchArchive(ctx, p, world, from, want)
	if errors.Is(err, ErrNotServed) {
		s.log.Warn(notServedMessage(err), "peer", p.ID, "world", world, "err", err)
	}
	if err != nil {
		return nil, fmt.Errorf("fetch from node %s: %w", p.ID, err)
	}
	if len(evs) > want {
		evs = evs[:want]
	}
	// Events from before the world's incarnation began on this group are
	// another incarnation's: a peer that missed its delete and
	// re-creation holds the earlier one's. An event carries its world's
	// name and seq and the index of the entry that carried it in the log
	// of the group that applied it (fsm.Event), but neither its
	// incarnation nor that group. So the check is exact only for a world
	// created on this group (every event's index is this log's, at or
	// after its creation). For an imported world the events from before
	// its import carry the source group's indexes, which are not ordered
	// with this log's: the floor (archiveFloor) is a loose bound, and an
	// earlier incarnation's events from another group may pass it. What
	// keeps those out is the verification after: the audit tree used is
	// only this group's incarnation's (cmd/gsd's auditVerifier), and
	// without it two peers must answer the same bytes.
	var inc uint64
	if w, err := s.fsm.World(world); err == nil {
		inc = archiveFloor(w)
	}
	for i, ev := range evs {
		if ev == nil || ev.World != world || ev.Seq < from || (i > 0 && ev.Seq != evs[i-1].Seq+1) || ev.Index < inc {
			err := fmt.Errorf("%w: node %s answered a malformed page: event %d of %d is not the next of %s from seq %d", errMalformedPage, p.ID, i, len(evs), world, from)
			s.refused(p, world, evs, err)
			return nil, err
		}
	}
	return evs, nil
}

// notServedMessage is the log message for a peer's ErrNotServed: a peer
// that runs the group but holds no such world in it (fsm.ErrUnknownWorld:
// not applied its creation or import yet) is told apart from one that does
// not serve the group's archive at all.
func notServedMessage(err error) string {
	if errors.Is(err, fsm.ErrUnknownWorld) {
		return "event archive refill: a peer holds no such world in this group (yet); asking the others"
	}
	return "event archive refill: a peer does not serve this group's archive; asking the others"
}

// errNotHeld: a peer does not hold the seq asked for.
var errNotHeld = errors.New("not held")

// errUnconfirmed: no other peer answered the events asked for to compare
// with (none holds them, or none answered), and none contradicted them.
var errUnconfirmed = errors.New("unconfirmed")

// errMalformedPage: a peer's page of other seqs or another world.
var errMalformedPage = errors.New("malformed archive page")

// refused counts and logs events that failed verification.
func (s *Store) refused(p fsm.NodeInfo, world string, evs []*fsm.Event, err error) {
	s.refill.mu.Lock()
	s.refill.st.Refused += uint64(len(evs))
	s.refill.mu.Unlock()
	s.log.Warn("event archive refill: refused events from a peer", "peer", p.ID, "world", world, "events", len(evs), "err", err)
}

// archiveCollectors are the archive's metrics, read from its status.
func (s *Store) archiveCollectors() []prometheus.Collector {
	get := func(f func(ArchiveStatus) uint64) func() float64 {
		return func() float64 {
			s.refill.mu.Lock()
			defer s.refill.mu.Unlock()
			return float64(f(s.refill.st))
		}
	}
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gsd_archive_missing_events",
			Help: "Events the event archive lacks as of its last check (refilled from peers when a refiller runs)."},
			get(func(st ArchiveStatus) uint64 { return st.MissingEvents })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gsd_archive_refilled_events_total",
			Help: "Events the archive refilled from peers, verified."},
			get(func(st ArchiveStatus) uint64 { return st.Refilled })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gsd_archive_refill_refused_total",
			Help: "Events fetched from peers for a refill and refused: they failed verification or came malformed."},
			get(func(st ArchiveStatus) uint64 { return st.Refused })),
	}
}

// String is the range as the logs and gsdctl show it.
func (r Range) String() string {
	return r.World + " " + strconv.FormatUint(r.From, 10) + "-" + strconv.FormatUint(r.To, 10)
}

// checkArchiveOnOpen checks the archive once Raft restored its snapshot and
// logs what it lacks: the operator sees a damaged archive at start, before
// any refill.
func (s *Store) checkArchiveOnOpen() {
	missing, err := s.CheckArchive()
	if err != nil {
		s.log.Error("event archive check failed", "err", err)
	}
	for _, r := range missing {
		s.log.Warn("event archive lacks events (a damaged archive or a snapshot install); a refiller fetches them from peers",
			"world", r.World, "from", r.From, "to", r.To, "events", r.Len())
	}
}
