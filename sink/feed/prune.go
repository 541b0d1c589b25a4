package feed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/gsd-dev/gsd/fsm"
)

// pruneGroup is what Prune reads of a position group besides
// PositionGroup (*store.Store): its worlds, PositionsWorld's entities as
// this node applied them, and whether this node leads it.
type pruneGroup interface {
	PositionGroup
	Worlds() []fsm.WorldInfo
	Entities(world string) ([]fsm.EntityView, uint64, error)
	IsLeader() bool
}

// Prune removes the positions the sink no longer needs, at most once per
// Interval (it reports 0 and nil between): from memory every position
// but those of following, and from PositionsWorld of each group this
// node leads (of src's worlds) the sink's entities of incarnations that
// group no longer holds: a world deleted, or deleted and created again.
// following maps each world the sink follows here, or is still ending a
// session of, to the incarnation it follows (0: not known yet, which
// keeps all of the world's); those are never removed, so a session is
// done with an incarnation before its position goes. An entity of a
// world whose incarnation this node cannot read (from before
// incarnations, its event 1 pruned) is kept, and so is the position of a
// world that moved away (its old home keeps the fenced world). A session
// only ever resumes the incarnation the node holds, so what Prune
// removes is never resumed, and a restart after it exports nothing
// again. It reports how many entities it removed.
func (r *Replicated) Prune(ctx context.Context, src Source, following map[string]int64) (int, error) {
	r.mu.Lock()
	due := time.Since(r.pruned) >= r.cfg.Interval
	if due {
		r.pruned = time.Now()
	}
	for k := range r.saved {
		if !keeps(following, k) {
			delete(r.saved, k) // a cache: a later Save or Load reads the store again
		}
	}
	r.mu.Unlock()
	if !due {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(ctx, max(r.cfg.Interval, time.Second))
	defer cancel()
	n := 0
	var errs []error
	for _, g := range r.ledGroups(src) {
		k, err := r.pruneGroup(ctx, src, g, following)
		n += k
		if err != nil {
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

// keeps reports whether following needs k's position.
func keeps(following map[string]int64, k posKey) bool {
	inc, ok := following[k.world]
	return ok && (inc == 0 || inc == k.inc)
}

// ledGroups returns the groups of src's worlds that this node leads, each
// once.
func (r *Replicated) ledGroups(src Source) []pruneGroup {
	seen := make(map[pruneGroup]bool)
	var out []pruneGroup
	for _, w := range src.Worlds() {
		g, err := r.group(w.ID)
		if err != nil {
			continue
		}
		pg, ok := g.(pruneGroup)
		if !ok || !reflect.TypeOf(pg).Comparable() || seen[pg] {
			continue // a group that cannot be told apart is not pruned
		}
		seen[pg] = true
		if pg.IsLeader() {
			out = append(out, pg)
		}
	}
	return out
}

// pruneGroup removes the sink's entities of g's PositionsWorld that
// Prune's rules let go.
func (r *Replicated) pruneGroup(ctx context.Context, src Source, g pruneGroup, following map[string]int64) (int, error) {
	ents, _, err := g.Entities(PositionsWorld)
	if errors.Is(err, fsm.ErrUnknownWorld) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("prune replicated positions: %w", err)
	}
	// Read after the entities: every world an entity names was created
	// before it was written, so it is listed here unless deleted since.
	worlds := make(map[string]fsm.WorldInfo)
	for _, w := range g.Worlds() {
		worlds[w.ID] = w
	}
	hashed := make(map[string]string) // hex sha256 → world, for long names
	for w := range worlds {
		hashed[worldHash(w)] = w
	}
	for w := range following {
		hashed[worldHash(w)] = w
	}
	n := 0
	var errs []error
	for _, e := range ents {
		inc, world, ok := r.parseEntity(e.ID)
		if !ok {
			continue // another sink's
		}
		// A world held or followed by that very name is that world: a
		// short name that starts with "#" is kept as it is.
		_, held := worlds[world]
		_, followed := following[world]
		if h, isHash := strings.CutPrefix(world, "#"); isHash && !held && !followed {
			if world, ok = hashed[h]; !ok {
				world = "" // neither in the group nor followed: deleted
			}
		}
		if world != "" {
			if keeps(following, posKey{world, inc}) {
				continue
			}
			if info, held := worlds[world]; held {
				cur, known := incarnationOf(src, info)
				if !known || cur == inc {
					continue
				}
			}
		}
		removed, err := r.remove(ctx, g, e)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if removed {
			n++
		}
	}
	return n, errors.Join(errs...)
}

// parseEntity returns the incarnation and world (or "#" and its hash) an
// entity id of this sink names (entity's inverse); false for another
// sink's or a malformed one.
func (r *Replicated) parseEntity(id string) (int64, string, bool) {
	rest, ok := strings.CutPrefix(id, r.cfg.Sink+"|")
	if !ok {
		return 0, "", false
	}
	incs, world, ok := strings.Cut(rest, "|")
	if !ok || world == "" {
		return 0, "", false
	}
	inc, err := strconv.ParseInt(incs, 10, 64)
	if err != nil || inc == 0 {
		return 0, "", false
	}
	return inc, world, true
}

// worldHash is the hex sha256 of world, as entity names a long one.
func worldHash(world string) string {
	sum := sha256.Sum256([]byte(world))
	return hex.EncodeToString(sum[:])
}

// remove deletes entity e if it is still at the version read (a node
// that still writes it wins: the next Prune looks again).
func (r *Replicated) remove(ctx context.Context, g pruneGroup, e fsm.EntityView) (bool, error) {
	a := &fsm.Action{World: PositionsWorld, Player: "gsd.sinks." + r.cfg.Writer + "." + r.cfg.Sink, Seq: r.nextSeq(), Role: fsm.RoleServer,
		Ops: []fsm.Op{{Kind: fsm.OpDelete, Entity: e.ID, Expect: fsm.Expect{Mode: fsm.ExpectVersion, Version: e.Version}}}}
	ev, _, err := g.Act(ctx, a)
	if err != nil {
		return false, fmt.Errorf("prune replicated position %s: %w", e.ID, err)
	}
	switch ev.Status {
	case fsm.StatusApplied:
		return true, nil
	case fsm.StatusConflict:
		return false, nil
	}
	return false, fmt.Errorf("prune replicated position %s: rejected: %s", e.ID, ev.Reason)
}

// PruneHook returns the Hooks.Checked of a sink that keeps its positions
// in r (nil when r is nil): Prune after each check, logging what it
// removed and a failure (retried on the next Interval). r must be the
// positions of this one follower's sink: what the follower does not
// follow is pruned.
func PruneHook(r *Replicated, src Source, log *slog.Logger) func(context.Context, map[string]int64) {
	if r == nil {
		return nil
	}
	return func(ctx context.Context, following map[string]int64) {
		n, err := r.Prune(ctx, src, following)
		if n > 0 {
			log.Info("pruned the replicated positions of deleted world incarnations", "removed", n)
		}
		if err != nil && ctx.Err() == nil {
			log.Warn("pruning replicated positions failed; retried later", "err", err)
		}
	}
}
