package feed

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
)

// PositionsWorld is the reserved world where the webhook and files sinks
// keep their export positions in the store, so that a group's new leader
// goes on where the old one stopped instead of from its own node's file.
// Each group keeps its own: a world's positions are written to
// PositionsWorld in the world's own group, by that group's leader (the
// node that runs the world's sinks), so they fail over with the world.
// The sinks never export PositionsWorld itself.
const PositionsWorld = "gsd.sinks"

// positionField is the field of a position entity: the last delivered seq.
const positionField = "seq"

// PositionsRules returns PositionsWorld's rules: strict (the seq field
// only), hidden from players and the public, written by servers only.
func PositionsRules() fsm.Rules {
	return fsm.RecordRules(map[string]fsm.FieldRule{positionField: {Type: fsm.KindInt, Policy: fsm.PolicyAuthoritative}})
}

// PositionGroup is a world's Raft group on this node: *store.Store.
type PositionGroup interface {
	Act(ctx context.Context, a *fsm.Action) (*fsm.Event, bool, error)
	CreateWorld(ctx context.Context, id string, rules fsm.Rules) error
	Entity(ctx context.Context, world, id string, c store.Consistency) (fsm.EntityView, error)
}

// ReplicatedConfig configures Replicated.
type ReplicatedConfig struct {
	// Sink names the sink whose positions these are ("webhook", "files").
	Sink string
	// Writer is this node's id; the actions' player is
	// "gsd.sinks.<Writer>.<Sink>" (each sink draws its own action seqs,
	// so two sinks of a node must not act as one player).
	Writer string
	// Every and Interval bound how often a position is written: once
	// Every events were delivered since the last write, or Interval
	// passed since it (at-least-once: after a failover the new leader
	// repeats at most the events delivered since the last write).
	Every    uint64
	Interval time.Duration
}

// Validate checks the config.
func (c ReplicatedConfig) Validate() error {
	var errs []error
	if c.Sink == "" || c.Writer == "" {
		errs = append(errs, errors.New("replicated positions: Sink and Writer are required"))
	}
	if c.Every == 0 || c.Interval <= 0 {
		errs = append(errs, errors.New("replicated positions: Every and Interval must be positive"))
	}
	return errors.Join(errs...)
}

// Replicated keeps a sink's positions in the store: one entity of
// PositionsWorld per (sink, world, incarnation) holding the last
// delivered seq, written through the ordinary action path with an expect
// on the field's version, so two nodes that both believe they lead never
// move a position backwards. Safe for concurrent use.
type Replicated struct {
	cfg   ReplicatedConfig
	group func(world string) (PositionGroup, error)

	mu     sync.Mutex
	last   uint64 // the last action seq used
	saved  map[posKey]savedPos
	pruned time.Time // when Prune last ran
}

// posKey names one position: a world's incarnation.
type posKey struct {
	world string
	inc   int64
}

// savedPos is what this node last wrote or read of one entity.
type savedPos struct {
	seq     uint64
	version uint64 // the field's version (0: absent)
	at      time.Time
	// failed is when the last write failed: unforced saves wait
	// Interval after it (a cluster that cannot take them, e.g. a voter
	// of an older gsd, is not asked on every batch).
	failed time.Time
}

// NewReplicated returns the positions of cfg.Sink, kept in the group
// group returns for each world.
func NewReplicated(cfg ReplicatedConfig, group func(world string) (PositionGroup, error)) (*Replicated, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if group == nil {
		return nil, errors.New("replicated positions: no group")
	}
	return &Replicated{cfg: cfg, group: group, saved: make(map[posKey]savedPos)}, nil
}

// ErrPositionConflict reports a position another node moved in between
// (a write whose expect failed twice).
var ErrPositionConflict = errors.New("gsd/feed: the replicated position changed meanwhile")

// entity returns the entity id of (sink, world, inc), hashed when too long.
func (r *Replicated) entity(world string, inc int64) string {
	id := r.cfg.Sink + "|" + strconv.FormatInt(inc, 10) + "|" + world
	if len(id) > fsm.MaxNameLen {
		id = r.cfg.Sink + "|" + strconv.FormatInt(inc, 10) + "|#" + worldHash(world)
	}
	return id
}

// Load returns the seq stored for world's incarnation inc (false: none),
// read on world's group's leader (linearizable).
func (r *Replicated) Load(ctx context.Context, world string, inc int64) (uint64, bool, error) {
	g, err := r.group(world)
	if err != nil {
		return 0, false, fmt.Errorf("replicated position of %s: %w", world, err)
	}
	seq, version, err := r.read(ctx, g, world, inc)
	if err != nil {
		return 0, false, err
	}
	r.mu.Lock()
	r.saved[posKey{world, inc}] = savedPos{seq: seq, version: version, at: time.Now()}
	r.mu.Unlock()
	return seq, version > 0, nil
}

// read returns the entity's seq and the field's version (0: absent).
func (r *Replicated) read(ctx context.Context, g PositionGroup, world string, inc int64) (uint64, uint64, error) {
	ev, err := g.Entity(ctx, PositionsWorld, r.entity(world, inc), store.Linearizable)
	if errors.Is(err, fsm.ErrUnknownWorld) || errors.Is(err, fsm.ErrNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("replicated position of %s: %w", world, err)
	}
	for _, f := range ev.Fields {
		if f.Name == positionField && f.Value.Int > 0 {
			return uint64(f.Value.Int), f.Version, nil
		}
	}
	return 0, 0, nil
}

// Save stores p as world's position when Every events or Interval passed
// since the last write (force: now, e.g. when a session ends), and never
// lowers a stored position. It reports whether it wrote.
func (r *Replicated) Save(ctx context.Context, world string, p Position, force bool) (bool, error) {
	if p.Incarnation == 0 || p.Seq == 0 {
		return false, nil // nothing to name it by, or nothing delivered
	}
	key := posKey{world, p.Incarnation}
	r.mu.Lock()
	cur, known := r.saved[key]
	r.mu.Unlock()
	if known && p.Seq <= cur.seq {
		return false, nil
	}
	if known && !force && !cur.failed.IsZero() && time.Since(cur.failed) < r.cfg.Interval {
		return false, nil
	}
	if known && !force && p.Seq-cur.seq < r.cfg.Every && time.Since(cur.at) < r.cfg.Interval {
		return false, nil
	}
	g, err := r.group(world)
	if err != nil {
		return false, fmt.Errorf("replicated position of %s: %w", world, err)
	}
	if !known {
		if cur.seq, cur.version, err = r.read(ctx, g, world, p.Incarnation); err != nil {
			r.failed(key, savedPos{})
			return false, err
		}
	}
	for attempt := 0; ; attempt++ {
		if p.Seq <= cur.seq {
			r.remember(key, cur)
			return false, nil // another node stored as far or further
		}
		version, err := r.write(ctx, g, r.entity(world, p.Incarnation), p.Seq, cur.version)
		if err == nil {
			r.remember(key, savedPos{seq: p.Seq, version: version, at: time.Now()})
			return true, nil
		}
		if !errors.Is(err, ErrPositionConflict) || attempt > 0 {
			r.failed(key, cur)
			return false, err
		}
		if cur.seq, cur.version, err = r.read(ctx, g, world, p.Incarnation); err != nil {
			r.failed(key, cur)
			return false, err
		}
	}
}

func (r *Replicated) remember(key posKey, s savedPos) {
	r.mu.Lock()
	r.saved[key] = s
	r.mu.Unlock()
}

// failed remembers a failed write (or read) of key after cur.
func (r *Replicated) failed(key posKey, cur savedPos) {
	cur.failed = time.Now()
	r.remember(key, cur)
}

// write sets the entity's seq expecting the field at version (0: absent)
// and returns its new version; ErrPositionConflict when the expect
// failed.
func (r *Replicated) write(ctx context.Context, g PositionGroup, entity string, seq, version uint64) (uint64, error) {
	if seq > 1<<63-1 {
		return 0, fmt.Errorf("replicated position %s: seq %d out of range", entity, seq)
	}
	expect := fsm.Expect{Mode: fsm.ExpectAbsent}
	if version > 0 {
		expect = fsm.Expect{Mode: fsm.ExpectVersion, Version: version}
	}
	a := &fsm.Action{World: PositionsWorld, Player: "gsd.sinks." + r.cfg.Writer + "." + r.cfg.Sink, Seq: r.nextSeq(), Role: fsm.RoleServer,
		Ops: []fsm.Op{{Kind: fsm.OpSet, Entity: entity, Field: positionField, Value: fsm.Int(int64(seq)), Expect: expect}}}
	ev, _, err := g.Act(ctx, a)
	if errors.Is(err, fsm.ErrUnknownWorld) {
		if err = g.CreateWorld(ctx, PositionsWorld, PositionsRules()); err == nil || errors.Is(err, fsm.ErrWorldExists) {
			a.Seq = r.nextSeq()
			ev, _, err = g.Act(ctx, a)
		}
	}
	if err != nil {
		return 0, fmt.Errorf("replicated position %s: %w", entity, err)
	}
	switch ev.Status {
	case fsm.StatusApplied:
		for _, c := range ev.Changes {
			if c.Entity == entity && c.Field == positionField {
				return c.Version, nil
			}
		}
		return version + 1, nil
	case fsm.StatusConflict:
		return 0, fmt.Errorf("%w: %s", ErrPositionConflict, entity)
	}
	return 0, fmt.Errorf("replicated position %s: rejected: %s", entity, ev.Reason)
}

// nextSeq returns the next action seq: above the last and the clock's
// milliseconds, so a restarted node does not reuse one.
func (r *Replicated) nextSeq() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = max(r.last+1, uint64(max(time.Now().UnixMilli(), 1)))
	return r.last
}

// Merge returns ps, a sink's node-local positions of world (newest
// first), with the replicated position of the incarnation src holds put
// first when it is further than the local one of that incarnation, or
// there is none: another node led the world's group since.
func (r *Replicated) Merge(ctx context.Context, src Source, world string, ps []Position) ([]Position, error) {
	inc, known := Incarnation(src, world)
	if !known {
		return ps, nil
	}
	seq, found, err := r.Load(ctx, world, inc)
	if err != nil || !found {
		return ps, err
	}
	out := []Position{{Incarnation: inc, Seq: seq}}
	for _, p := range ps {
		if p.Incarnation != inc {
			out = append(out, p)
		} else if p.Seq > seq {
			out[0] = p
		}
	}
	return out, nil
}
