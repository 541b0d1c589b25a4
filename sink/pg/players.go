package pg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/gsd-dev/gsd/store"
)

// The player-data mirror. Player data does not advance a world's seq, so
// it is not in the event feed: every Config.CheckInterval the sink reads
// the players' data of each world it mirrors (the worlds whose group this
// node leads, as for events, once the world's events mirror resumed its
// incarnation: a world refused with ErrIncarnation gets no player rows
// either) from the node's applied state, with each player's data version
// (fsm/playerdata.go), and upserts the rows whose version is newer than
// the database's. The position is each row's own
// version in PostgreSQL: an upsert replaces a row only with a higher
// version (the WHERE of upsertPlayers), so two nodes that both believe
// they lead, a sink restarted mid-way or a transaction repeated after a
// lost commit never put a row back to older data.

// PlayerSource reads a world's players' data with their versions on this
// node (in production *store.Store, through NewStoreSource). A Source that
// does not implement it mirrors events only.
type PlayerSource interface {
	PlayerRecords(world string) ([]fsm.PlayerRecord, error)
	// PlayerDataStamp changes with every change of a player's data in
	// world (fsm.FSM.PlayerDataStamp).
	PlayerDataStamp(world string) (uint64, error)
}

// NewStoreSource returns the source of a node's one Raft group: its
// committed feed (feed.NewStoreSource) and its players' data.
func NewStoreSource(st *store.Store) Source {
	return WithPlayers(feed.NewStoreSource(st), st)
}

// WithPlayers returns src whose worlds' player data the sink reads from
// players: under a shard map, feed.NewGroupsSource and *shard.FeedSource
// of the node's groups.
func WithPlayers(src Source, players PlayerSource) Source {
	return playerSource{Source: src, players: players}
}

type playerSource struct {
	Source
	players PlayerSource
}

func (s playerSource) PlayerRecords(world string) ([]fsm.PlayerRecord, error) {
	return s.players.PlayerRecords(world)
}

func (s playerSource) PlayerDataStamp(world string) (uint64, error) {
	return s.players.PlayerDataStamp(world)
}

// playerWorld is the player mirror's state of one world this node mirrors.
type playerWorld struct {
	inc int64
	// stored is each player's version in the database as last read or
	// written; nil until read (after a failure it is read again).
	stored map[string]uint64
	// stamp is the world's PlayerDataStamp when everything up to it was
	// written, and idle the checks since: a check with the same stamp
	// reads nothing but every fullEvery-th (a node restored from a
	// snapshot without versions may hold other data at the same stamp).
	stamp   uint64
	stampOK bool
	idle    int
}

// fullEvery bounds the checks that skip reading an unchanged world.
const fullEvery = 20

// players mirrors player data; its state is owned by run's goroutine.
type players struct {
	s      *Sink
	src    PlayerSource
	worlds map[string]*playerWorld
}

// run passes over the worlds every check interval until ctx ends.
func (p *players) run(ctx context.Context) {
	p.worlds = make(map[string]*playerWorld)
	t := time.NewTicker(p.s.cfg.CheckInterval)
	defer t.Stop()
	for {
		p.pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pass mirrors every world this node mirrors now and forgets the others.
func (p *players) pass(ctx context.Context) {
	seen := make(map[string]bool)
	for _, w := range p.s.src.Worlds() {
		if !p.s.follows(w.ID) {
			continue
		}
		inc, ok := feed.Incarnation(p.s.src, w.ID)
		if !ok {
			continue // a world from before incarnations without its event 1
		}
		seen[w.ID] = true
		pw := p.worlds[w.ID]
		if pw == nil || pw.inc != inc {
			pw = &playerWorld{inc: inc}
			p.worlds[w.ID] = pw
		}
		if err := p.world(ctx, w.ID, pw); err != nil {
			if ctx.Err() != nil {
				return
			}
			pw.stored, pw.stampOK = nil, false // read both sides again next time
			p.s.m.errors.WithLabelValues(errDatabase).Inc()
			p.s.log.Warn("player data write failed; retrying at the next check", "world", w.ID, "err", err)
		}
	}
	for id := range p.worlds {
		if !seen[id] {
			delete(p.worlds, id)
			p.s.m.playersPending.DeleteLabelValues(id)
		}
	}
}

// world writes a world's players whose data is newer here than in the
// database, in transactions of at most BatchSize rows.
func (p *players) world(ctx context.Context, world string, pw *playerWorld) error {
	if m, ok := p.s.mirrors.Load(world); !ok || !m.(*mirror).resumed(pw.inc) {
		// The events mirror has not checked this incarnation against the
		// database yet, or refused it (ErrIncarnation): wait for it.
		return nil
	}
	if pw.stored == nil {
		stored, err := p.s.db.playerVersions(ctx, world, pw.inc)
		if err != nil {
			return err
		}
		pw.stored = stored
	}
	stamp, serr := p.src.PlayerDataStamp(world)
	if serr == nil && pw.stampOK && stamp == pw.stamp && pw.idle < fullEvery {
		pw.idle++
		return nil // nothing changed since everything was written
	}
	recs, err := p.src.PlayerRecords(world)
	if errors.Is(err, fsm.ErrUnknownWorld) {
		return nil // deleted since Worlds: the next pass forgets it
	}
	if err != nil {
		return err
	}
	var pending []fsm.PlayerRecord
	for _, r := range recs {
		if v, ok := pw.stored[r.Player]; !ok || r.Version > v {
			pending = append(pending, r)
		}
	}
	p.s.m.playersPending.WithLabelValues(world).Set(float64(len(pending)))
	for len(pending) > 0 {
		n := min(len(pending), p.s.cfg.BatchSize)
		var rows playerRows
		for _, r := range pending[:n] {
			if err := rows.add(r); err != nil {
				p.s.m.errors.WithLabelValues(errFeed).Inc()
				p.s.log.Error("player data not mirrored", "world", world, "player", r.Player, "err", err)
			}
		}
		if !p.s.src.Leads(world) {
			pw.stampOK = false
			return nil // the new leader's sink goes on
		}
		if len(rows.player) > 0 {
			written, err := p.s.db.writePlayers(ctx, world, pw.inc, &rows)
			if err != nil {
				return fmt.Errorf("write world %s player data: %w", world, err)
			}
			p.s.m.playerRows.Add(float64(written))
		}
		for _, r := range pending[:n] {
			pw.stored[r.Player] = max(pw.stored[r.Player], r.Version)
		}
		pending = pending[n:]
		p.s.m.playersPending.WithLabelValues(world).Set(float64(len(pending)))
	}
	// The records are as of stamp or later: a change after it changes it.
	pw.stamp, pw.stampOK, pw.idle = stamp, serr == nil, 0
	return nil
}

// playerRows holds players' rows column by column, as the upsert's unnest
// takes them.
type playerRows struct {
	player  []string
	version []int64
	data    []string
}

// add appends one player's row; NULs are rewritten as in rows.add.
func (r *playerRows) add(rec fsm.PlayerRecord) error {
	if rec.Version > math.MaxInt64 {
		return fmt.Errorf("data version %d does not fit PostgreSQL's bigint", rec.Version)
	}
	data := []byte("{}")
	if len(rec.Data) > 0 {
		var err error
		if data, err = json.Marshal(rec.Data); err != nil {
			return fmt.Errorf("encode data: %w", err)
		}
	}
	r.player = append(r.player, noNUL(rec.Player))
	r.version = append(r.version, int64(rec.Version))
	r.data = append(r.data, string(jsonNoNUL(data)))
	return nil
}
