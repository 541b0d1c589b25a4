package shard

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
)

// A moved world's events up to its fence N were committed on its old
// group; the new home's archive starts at N+1. Every node of the new
// group copies them into its archive (CopyMovedArchives; store.FillMoved
// checks each page): from its own replica of the old group when it runs
// it, else from another node of the new group that has them. A
// subscription from a seq up to N then reads them at the new home; until
// then it gets store.ErrArchiveGap. See DESIGN.md (Migration).

// ArchivePages fetches up to max consecutive archived events of one world
// from seq from on (ArchiveOf: a replica of the old group).
type ArchivePages func(ctx context.Context, from uint64, max int) ([]*fsm.Event, error)

// MovedArchive is the new home of a moved world; *store.Store has these
// methods.
type MovedArchive interface {
	FillMoved(world string, fence uint64, events []*fsm.Event) (int, error)
	ArchiveHoles(world string, to uint64) ([]store.Range, error)
}

// ArchiveRecordsReader serves archived events as their encodings;
// *store.Store and Backend have it.
type ArchiveRecordsReader interface {
	ArchiveRecords(world string, from uint64, limit, maxBytes int) (uint64, [][]byte, error)
}

// MovedArchivePage is how many events a moved world's copy fetches per
// page.
const MovedArchivePage = 256

// archivePageBytes bounds one local page's records (api/peer's route
// bounds a remote one by edge.ArchivePageBytes).
const archivePageBytes = 1 << 20

// ArchiveOf reads world's archived events from r, page by page.
func ArchiveOf(r ArchiveRecordsReader, world string) ArchivePages {
	return func(_ context.Context, from uint64, max int) ([]*fsm.Event, error) {
		first, recs, err := r.ArchiveRecords(world, from, max, archivePageBytes)
		if err != nil {
			return nil, err
		}
		out := make([]*fsm.Event, 0, len(recs))
		for i, rec := range recs {
			ev, err := fsm.DecodeEvent(rec)
			if err != nil {
				return nil, fmt.Errorf("archive of %s, seq %d: %w", world, first+uint64(i), err)
			}
			out = append(out, ev)
		}
		return out, nil
	}
}

// ErrOldHomeLacks: the old home no longer holds a moved world's event
// that its new home lacks (retention deleted it there, or the world was
// dropped): subscriptions from before it keep getting archive_gap.
var ErrOldHomeLacks = errors.New("gsd/shard: the moved world's old home does not hold the events")

// CopyMovedArchive copies world's events up to fence that dst lacks from
// the old home (pages), page events at a time, and returns how many it
// stored. Each page must start at the seq asked for; dst checks and
// stores it (store.FillMoved), and a page it refuses stops the copy with
// nothing of it stored. Safe to call again: what dst holds is not fetched.
func CopyMovedArchive(ctx context.Context, dst MovedArchive, pages ArchivePages, world string, fence uint64, page int) (int, error) {
	if page < 1 {
		return 0, fmt.Errorf("copy moved archive of %s: page %d must be >= 1", world, page)
	}
	holes, err := dst.ArchiveHoles(world, fence)
	if err != nil {
		return 0, fmt.Errorf("copy moved archive of %s: %w", world, err)
	}
	stored := 0
	for _, h := range holes {
		for from := h.From; from <= h.To; {
			if err := ctx.Err(); err != nil {
				return stored, err
			}
			evs, err := pages(ctx, from, int(min(uint64(page), h.To-from+1)))
			if err != nil {
				return stored, fmt.Errorf("copy moved archive of %s from seq %d: %w", world, from, err)
			}
			if len(evs) == 0 || evs[0] == nil || evs[0].Seq != from {
				return stored, fmt.Errorf("copy moved archive of %s: seq %d: %w", world, from, ErrOldHomeLacks)
			}
			n, err := dst.FillMoved(world, fence, evs)
			stored += n
			if err != nil {
				return stored, fmt.Errorf("copy moved archive of %s from seq %d: %w", world, from, err)
			}
			from += uint64(len(evs))
		}
	}
	return stored, nil
}

// CopyMovedArchives copies, for every world moved to a group this node
// runs, the events up to the fence that the new home's archive here
// lacks (copyMoved, oldhome.go): from this node's replicas of the
// world's old groups (still fenced there towards it, same incarnation),
// each for the seqs up to its fence, and, unless the one whose fence the
// import continues is among them and served every hole, when peers is
// not nil, from another node of the new group that holds them (its own
// copy), through peers (api/edge's client: api/peer's archive route). It returns how
// many events it stored; a world it could not complete is in the error,
// and the others are copied anyway. A world copied completely is not
// looked at again (until the node restarts).
func (b *Backend) CopyMovedArchives(ctx context.Context, peers store.RefillPeers, page int) (int, error) {
	stored := 0
	var errs []error
	for _, g := range b.r.mgr.Groups() {
		home, ok := b.r.mgr.Group(g)
		if !ok {
			continue
		}
		for _, w := range home.Worlds() {
			if w.Imported == 0 || b.copied.isDone(g, w) {
				continue
			}
			n, done, err := b.copyMoved(ctx, peers, g, home, w, page)
			stored += n
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if done {
				b.copied.mark(g, w)
			}
		}
	}
	return stored, errors.Join(errs...)
}

// copyFromPeers copies an imported world's events before its import from
// the first other node of group g that holds them. The fence is where
// the last hole in this node's archive of the world ends, and the copy
// fills every hole up to it: after a first move here the hole from seq 1
// to the fence (the feed archives from the fence's N+1; with nothing
// after the import, N is the world's seq); after a move back the other
// homes' events after those of the world's earlier stay here (C->B->A->B:
// B holds 1..M, A's M+1..N are the hole), and any hole of that earlier
// stay's own copy not filled yet. A last hole that is the feed's lag
// behind the world's seq is this group's own events, which a peer serves
// alike or not yet (then the next sweep). FillMoved checks the event at
// the fence against the imported hash history.
func (b *Backend) copyFromPeers(ctx context.Context, peers store.RefillPeers, g uint64, home *store.Store, w fsm.WorldInfo, page int) (int, error) {
	holes, err := home.ArchiveHoles(w.ID, w.Seq)
	if err != nil || len(holes) == 0 {
		return 0, err // held
	}
	fence := holes[len(holes)-1].To
	m := b.r.Map()
	sh, ok := m.Shard(g)
	if !ok {
		return 0, fmt.Errorf("copy moved archive of %s: group %d: %w", w.ID, g, ErrUnknownGroup)
	}
	var errs []error
	for _, id := range sh.Voters {
		node, ok := m.Nodes[id]
		if id == b.r.mgr.cfg.Store.ID || !ok || node.HTTP == "" {
			continue
		}
		info := fsm.NodeInfo{ID: id, HTTPAddr: node.HTTP}
		pages := func(ctx context.Context, from uint64, max int) ([]*fsm.Event, error) {
			return peers.FetchArchive(ctx, info, w.ID, from, max)
		}
		n, err := CopyMovedArchive(ctx, home, pages, w.ID, fence, page)
		if err == nil {
			return n, nil
		}
		errs = append(errs, fmt.Errorf("node %s: %w", id, err))
		if n > 0 { // what it stored is held: the next node goes on from there
			return n, errors.Join(errs...)
		}
	}
	if len(errs) == 0 {
		return 0, fmt.Errorf("copy moved archive of %s: no other node of group %d to copy from: %w", w.ID, g, ErrOldHomeLacks)
	}
	return 0, errors.Join(errs...)
}

// RunMovedArchives runs CopyMovedArchives every interval until ctx ends,
// logging what it copied and what it could not: a warning when that
// changes, so a copy that cannot complete (its old home dropped first)
// does not warn every interval.
func (b *Backend) RunMovedArchives(ctx context.Context, peers store.RefillPeers, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var last string
	for {
		n, err := b.CopyMovedArchives(ctx, peers, MovedArchivePage)
		if n > 0 {
			b.r.mgr.log.Info("copied moved worlds' events from before their moves", "events", n)
		}
		switch {
		case err == nil:
			last = ""
		case ctx.Err() != nil:
		case err.Error() != last || n > 0:
			last = err.Error()
			b.r.mgr.log.Warn("moved worlds' events from before their moves not all copied; retrying", "err", err, "every", interval)
		default:
			b.r.mgr.log.Debug("moved worlds' events from before their moves still not all copied", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// movedCopies are the imports (group, world, import index) whose events
// before the fence this node copied completely.
type movedCopies struct {
	mu   sync.Mutex
	done map[movedKey]bool
}

type movedKey struct {
	group    uint64
	world    string
	imported uint64
}

func (c *movedCopies) isDone(g uint64, w fsm.WorldInfo) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.done[movedKey{g, w.ID, w.Imported}]
}

func (c *movedCopies) mark(g uint64, w fsm.WorldInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(map[movedKey]bool)
	}
	c.done[movedKey{g, w.ID, w.Imported}] = true
}
