package detect

import (
	"slices"
	"sync"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/prometheus/client_golang/prometheus"
)

// The detectors' names, as in Flag.Detector and the metrics' label.
const (
	DetSpeed    = "speed"
	DetJump     = "jump"
	DetStraight = "straight"
	DetReaction = "reaction"
	DetAccuracy = "accuracy"
	DetSwitch   = "switch"
	DetEconomy  = "economy"
	DetLockstep = "lockstep"
	DetWinTrade = "wintrade"
	DetFunnel   = "funnel"
)

// Detectors lists every detector's name.
var Detectors = []string{DetSpeed, DetJump, DetStraight, DetReaction, DetAccuracy, DetSwitch, DetEconomy, DetLockstep, DetWinTrade, DetFunnel}

// Ref names one committed event.
type Ref struct {
	World string
	Seq   uint64
}

// Flag is one detector's suspicion: the player (or the pair, sorted), a
// score (the detector's statistic: a share, a z-score or a count) and the
// latest events that counted towards it, oldest first.
type Flag struct {
	Detector string
	Players  []string
	Score    float64
	Evidence []Ref
	// Incarnation is the incarnation of the last evidence's world as its
	// Runner followed it (0: not known, as with Observe and Follow), so a
	// flag handed out again after a restart names the world it was found
	// in even when that world was deleted since.
	Incarnation uint64
	// Restored marks a flag a Runner hands out again at its start, from
	// its checkpoint: raised (and logged and counted) before the restart.
	// Log and Metrics skip it; a Recorder records it again (the record
	// id, hence the record, is the same).
	Restored bool
}

// evidenceLen bounds the evidence a flag carries.
const evidenceLen = 8

// refs keeps the last evidenceLen refs.
type refs struct {
	ring [evidenceLen]Ref
	n    int
}

func (r *refs) add(ref Ref) {
	r.ring[r.n%evidenceLen] = ref
	r.n++
}

func (r *refs) list() []Ref {
	if r.n <= evidenceLen {
		return slices.Clone(r.ring[:r.n])
	}
	i := r.n % evidenceLen
	return append(slices.Clone(r.ring[i:]), r.ring[:i]...)
}

// player is one account's counts.
type player struct {
	id string
	// movement
	moved               bool
	world               string // of the last move
	x, y, at            int64
	moves, near, jumps  int
	winX, winY          int64
	winPath             float64
	winN                int
	straight            int
	windows             int
	speedEv, jumpEv     refs
	straightEv          refs
	shots, hits         int
	reactions           int
	logReact            float64 // sum of ln(reaction / Reaction.Median)
	reactedTo           string
	hit                 entityRef          // the target of p's last hit
	hitAt               int64              // and its leader time
	shotAt              [shotMemory]int64  // leader times of the last shots
	shotIn              [shotMemory]string // and their worlds
	shotN               int
	reactedAt           int64
	reactEv, accuracyEv refs
	matches             int
	shot                bool   // shot at least once
	lastShot            int64  // leader time of the last shot
	earning             bool   // currency seen in goldWorld
	goldWorld           string // where gold was seen
	gold                int64  // the currency's last value seen
	incomes, unearned   int    // increments of it, and those after no shot
	incomeEv            refs
	dirty               bool           // counted since the last evaluation
	sessions            []sessionStats // by start: what Switch compares
	cur                 int            // the session last counted in
	switchEv            refs
}

type pairKey struct{ a, b string } // a < b

// entityRef names an entity of a world (entities are per world; players,
// by their ids, are not).
type entityRef struct{ world, entity string }

// Detector counts what the committed events show of each player and
// flags outliers. Its methods are safe for concurrent use.
type Detector struct {
	cfg Config

	mu      sync.Mutex
	players map[string]*player
	appear  map[entityRef]int64 // leader time an entity last appeared
	pairs   map[pairKey]*pair
	edges   map[pairKey]*edge  // a → b, not sorted
	into    map[string][]*edge // by receiver, in the order first seen
	steps   map[string]*steps  // per world: its events' ticks are in order
	flagged map[string]Flag    // by detector + players: the flags returned
	marks   map[string]mark    // per world: where its Runner's follower is (checkpoint.go)

	// What changed since the last evaluation: Evaluate judges only these,
	// so its cost follows the events, not the players ever seen.
	dirtyPlayers []*player
	dirtyPairs   []*pair
	dirtyEdges   []*edge

	// The population's hit ratio ceiling: recomputed from every player
	// at most every popEvery events (a walk of all players).
	events, popAt uint64
	accCount      int // players with at least MinShots shots
	acc           ceiling

	discard sessionStats // a session older than every one kept is counted here

	observed prometheus.Counter // the events observed, when its Runner has Metrics
	ckptLen  int                // the last checkpoint's length

	// What a sample keeps of its weight per sample after it:
	// Reaction.HalfLifeReactions and Accuracy.HalfLifeShots.
	reactKeep, aimKeep float64
}

// New returns a Detector.
func New(cfg Config) (*Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return newDetector(cfg), nil
}

// newDetector returns a Detector of a valid cfg.
func newDetector(cfg Config) *Detector {
	return &Detector{
		cfg: cfg, players: map[string]*player{}, appear: map[entityRef]int64{},
		pairs: map[pairKey]*pair{}, edges: map[pairKey]*edge{}, into: map[string][]*edge{},
		steps: map[string]*steps{}, flagged: map[string]Flag{}, marks: map[string]mark{},
		reactKeep: keepOf(cfg.Reaction.HalfLifeReactions), aimKeep: keepOf(cfg.Accuracy.HalfLifeShots),
	}
}

func (d *Detector) player(id string) *player {
	p := d.players[id]
	if p == nil {
		p = &player{id: id}
		d.players[id] = p
	}
	return p
}

func (d *Detector) touch(p *player) {
	if !p.dirty {
		p.dirty = true
		d.dirtyPlayers = append(d.dirtyPlayers, p)
	}
}

// seen is what one event shows, read from its changes.
type seen struct {
	x, y           int64
	hasX, hasY     bool
	shot           bool
	hit            string
	gold           int64
	hasGold        bool
	from, to, item string
	winner, loser  string
}

// Observe counts one committed event. Only applied events count.
func (d *Detector) Observe(ev *fsm.Event) {
	if ev.Status != fsm.StatusApplied {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.observe(ev)
}

// observe is Observe under d.mu, of an applied event.
func (d *Detector) observe(ev *fsm.Event) {
	f := &d.cfg.Fields
	var s seen
	for i := range ev.Changes {
		c := &ev.Changes[i]
		own := c.Entity == ev.Player
		switch {
		case c.Field == "":
		case own && c.Field == f.X:
			s.x, s.hasX = c.Value.Int, true
		case own && c.Field == f.Y:
			s.y, s.hasY = c.Value.Int, true
		case !own && (c.Field == f.X || c.Field == f.Y):
			d.place(ev.World, c.Entity, f, c)
		case own && c.Field == f.Shot:
			s.shot = true
		case !own && c.Field == f.Hit && c.Op == fsm.OpIncr:
			s.hit = c.Entity
		case c.Field == f.Appear:
			d.appear[entityRef{ev.World, c.Entity}] = ev.Time
		case c.Field == f.Items && c.Op == fsm.OpRemove:
			s.from, s.item = c.Entity, c.Value.Str
		case c.Field == f.Items && c.Op == fsm.OpAdd && c.Value.Str == s.item:
			s.to = c.Entity
		case own && c.Field == f.Currency && c.Op == fsm.OpIncr:
			s.gold, s.hasGold = c.Value.Int, true
		case c.Field == f.Wins && c.Op == fsm.OpIncr:
			s.winner = c.Entity
		case c.Field == f.Losses && c.Op == fsm.OpIncr:
			s.loser = c.Entity
		}
	}
	d.events++
	ref := Ref{ev.World, ev.Seq}
	if s.hasX || s.hasY {
		d.move(d.player(ev.Player), ev.Time, s, ref)
	}
	if s.shot {
		d.shoot(d.player(ev.Player), ev.Time, s.hit, ref)
	}
	if s.hasGold {
		d.earn(d.player(ev.Player), ev.Time, s.gold, ref)
	}
	if s.to != "" && s.to != s.from {
		d.transfer(s.from, s.to, ref)
	}
	if s.winner != "" && s.loser != "" && s.winner != s.loser {
		d.match(s.winner, s.loser, ref)
	}
}
