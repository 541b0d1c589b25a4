package edge

import (
	"crypto/hmac"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/spectator"
)

// What a caller may see of a world (issue 13): the read paths (event
// streams, HTTP reads, play streams, watch) resolve their caller to a
// Sight, and a Sight under a world's visibility rules (spectator.Access)
// to a view whose events and entities they cut before any byte leaves.

// Sight is what a caller may see of worlds: everything (All: admins, game
// servers, the cluster secret's holders), or what Viewer may.
type Sight struct {
	All    bool
	Viewer spectator.Viewer
}

// Query parameters of the read routes that name a viewer.
const (
	// QueryView names a viewer class of the world's rules ("": public).
	QueryView = "view"
	// QueryPlayer names the viewing player with auth off (with auth on
	// the token does).
	QueryPlayer = "player"
	// querySight is "all" on a call another node forwards for a caller
	// that sees everything.
	querySight = "sight"
)

// Sight returns what r's caller may see:
//   - with a token (auth on): everything for the admin and server roles,
//     else the token's player, in the class of the view query parameter
//     when the token's role names it (ErrForbidden otherwise);
//   - with the cluster secret: everything, or, on a call another node
//     forwards, the sight that node resolved for its caller (Query);
//   - with neither (auth off): the player and class the query names, as
//     actions take their player from the body with auth off.
func (s *Core) Sight(r *http.Request) (Sight, error) {
	q := r.URL.Query()
	v := spectator.Viewer{Class: q.Get(QueryView)}
	if s.auth != nil && Bearer(r) != "" {
		id, _, err := s.auth.VerifyIdentity(Bearer(r))
		if err != nil {
			return Sight{}, err
		}
		if id.Role == fsm.RoleAdmin || id.Role == fsm.RoleServer {
			return Sight{All: true}, nil
		}
		if v.Class != "" && v.Class != id.Role {
			return Sight{}, fmt.Errorf("%w: viewer class %q needs a token of role %q (this one has %q)", ErrForbidden, v.Class, v.Class, id.Role)
		}
		v.Player = id.Player
		return Sight{Viewer: v}, nil
	}
	keyed := len(s.cfg.ClusterSecret) > 0 && hmac.Equal([]byte(r.Header.Get(HeaderClusterKey)), s.cfg.ClusterSecret)
	if keyed && !IsForwarded(r) {
		return Sight{All: true}, nil
	}
	if s.auth != nil && !keyed {
		return Sight{}, fmt.Errorf("%w: auth is on: send a token (Authorization: Bearer)", ErrUnauthorized)
	}
	if q.Get(querySight) == "all" && (keyed || len(s.cfg.ClusterSecret) == 0) {
		return Sight{All: true}, nil
	}
	v.Player = q.Get(QueryPlayer)
	return Sight{Viewer: v}, nil
}

// Query returns the query parameters that carry g to the node a call is
// forwarded to; that node trusts them on a call with the cluster secret
// (or with no secret and auth off, where nothing is closed).
func (g Sight) Query() url.Values {
	q := url.Values{}
	switch {
	case g.All:
		q.Set(querySight, "all")
	default:
		if g.Viewer.Class != "" {
			q.Set(QueryView, g.Viewer.Class)
		}
		if g.Viewer.Player != "" {
			q.Set(QueryPlayer, g.Viewer.Player)
		}
	}
	return q
}

// ViewOf resolves g under a world's compiled rules: filter is false when
// the caller sees everything of the world (All, or rules without any
// restricted field), and then view means nothing. An unknown class or a
// bad delay is ErrMalformed.
func ViewOf(a *spectator.Access, g Sight) (view spectator.View, delay time.Duration, filter bool, err error) {
	if g.All {
		return spectator.View{}, 0, false, nil
	}
	view, delay, err = a.Resolve(g.Viewer)
	if err != nil {
		if errors.Is(err, spectator.ErrUnknownClass) || errors.Is(err, spectator.ErrBadDelay) {
			err = fmt.Errorf("%w: %v", fsm.ErrMalformed, err)
		}
		return view, 0, false, err
	}
	return view, delay, a.Restricted() || delay > 0, nil
}

// Visibility is what one service's read paths share to cut worlds'
// events to views: each world's compiled rules (by rules version), its
// prepared events (spectator.Events, one per world and rules version,
// kept while some reader holds it), and the worlds' rules versions, at
// most RulesTTL old. Safe for concurrent use.
//
// A rules update is the world's event once every voter reads log 12
// (fsm.CmdUpdateRulesEvent): the compiled rules know their version
// (spectator.NewAccessAt), so prepared events end exactly at a later
// update's event and the read paths switch rules there (spectator's
// rulesevent.go). RulesVersion's poll stays for updates without the
// event (a cluster still at log 11).
type Visibility struct {
	b   Backend
	ttl time.Duration // RulesTTL unless set (SetRulesTTL)

	mu       sync.Mutex
	access   map[string]compiledAccess
	prepared map[preparedKey]*sharedPrepared
	rules    map[string]RulesRef // world → its rules, as of rulesAt
	rulesAt  time.Time
	teams    map[string]*teamData // world → its data teams (TeamOf)
}

// RulesTTL bounds how old the rules versions RulesVersion answers may
// be: a rules update a log 11 cluster writes is not in the feed, so a
// reader that checks before each write ends within this long after it.
const RulesTTL = 50 * time.Millisecond

// PreparedKeep is how many prepared events a world's shared Events holds
// for readers at different positions.
const PreparedKeep = 4096

// dataReader is what a backend offers to read players' session data
// (store.Store has it): the teams of worlds whose teams come from it.
type dataReader interface {
	PlayerData(world string) (map[string]map[string]fsm.Value, error)
}

// teamData is a world's players' teams from their session data, as of at.
type teamData struct {
	key   string
	at    time.Time
	teams map[string]string
}

// RulesRef names a world's rules: its incarnation (a world deleted and
// created again under the same id is another) and its rules version.
type RulesRef struct {
	Incarnation, Version uint64
}

// RulesOf returns the reference of the rules info has.
func RulesOf(info fsm.WorldInfo) RulesRef {
	return RulesRef{Incarnation: info.Incarnation, Version: info.RulesVersion}
}

type compiledAccess struct {
	version RulesRef
	access  *spectator.Access
}

type preparedKey struct {
	world   string
	version RulesRef
}

type sharedPrepared struct {
	events *spectator.Events
	refs   int
}

// NewVisibility returns the shared visibility state of the read paths
// over b.
func NewVisibility(b Backend) *Visibility { return &Visibility{b: b, ttl: RulesTTL} }

// SetRulesTTL sets how old RulesVersion's answers may be (RulesTTL by
// default); tests set a long one to show that the read paths switch
// rules at the update's event, not at the poll.
func (v *Visibility) SetRulesTTL(d time.Duration) {
	v.mu.Lock()
	v.ttl = d
	v.mu.Unlock()
}

// Access returns world's compiled rules and its summary on this node.
func (v *Visibility) Access(world string) (*spectator.Access, fsm.WorldInfo, error) {
	info, err := WorldInfo(v.b, world)
	if err != nil {
		return nil, info, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if ca, ok := v.access[world]; ok && ca.version == RulesOf(info) {
		return ca.access, info, nil
	}
	a, err := spectator.NewAccessAt(info.Rules, info.RulesVersion)
	if err != nil {
		return nil, info, fmt.Errorf("%w: world %s: %v", ErrInternal, world, err)
	}
	if v.access == nil {
		v.access = make(map[string]compiledAccess)
	}
	v.access[world] = compiledAccess{version: RulesOf(info), access: a}
	return a, info, nil
}

// TeamOf returns the players' teams of world under a when they come from
// session data (teams.from "data"), read from this node's state at most
// RulesTTL old; nil when they do not, or the backend cannot read session
// data (then no player has a team: team fields show only to owners).
// A change of a player's team is not in the feed: later events follow the
// new team at once (spectator.TeamFunc).
func (v *Visibility) TeamOf(world string, a *spectator.Access) spectator.TeamFunc {
	key := a.DataTeam()
	dr, ok := v.b.(dataReader)
	if key == "" || !ok {
		return nil
	}
	return func(player string) string {
		v.mu.Lock()
		defer v.mu.Unlock()
		td := v.teams[world]
		if now := time.Now(); td == nil || td.key != key || now.Sub(td.at) >= RulesTTL {
			td = &teamData{key: key, at: now, teams: map[string]string{}}
			if all, err := dr.PlayerData(world); err == nil {
				for p, data := range all {
					if t := data[key]; t.Kind == fsm.KindString {
						td.teams[p] = t.Str
					}
				}
			}
			if v.teams == nil {
				v.teams = make(map[string]*teamData)
			}
			v.teams[world] = td
		}
		return td.teams[player]
	}
}

// Events returns the prepared events of world under rules version
// version (compiled as a), shared by every reader that holds it; each
// call is paired with a ReleaseEvents.
func (v *Visibility) Events(world string, version RulesRef, a *spectator.Access) *spectator.Events {
	v.mu.Lock()
	defer v.mu.Unlock()
	k := preparedKey{world: world, version: version}
	sp := v.prepared[k]
	if sp == nil {
		sp = &sharedPrepared{events: v.NewEvents(a, world, true)}
		if v.prepared == nil {
			v.prepared = make(map[preparedKey]*sharedPrepared)
		}
		v.prepared[k] = sp
	}
	sp.refs++
	return sp.events
}

// ReleaseEvents gives back what Events gave; the last reader drops them.
func (v *Visibility) ReleaseEvents(world string, version RulesRef) {
	v.mu.Lock()
	defer v.mu.Unlock()
	k := preparedKey{world: world, version: version}
	if sp := v.prepared[k]; sp != nil {
		if sp.refs--; sp.refs == 0 {
			delete(v.prepared, k)
		}
	}
}

// seeder is what a backend offers to seed prepared events with a world's
// state (store.Store has it).
type seeder interface {
	Entities(world string) ([]fsm.EntityView, uint64, error)
}

// NewEvents returns prepared events of world under a of a reader's own:
// seeded with the world's state on this node when seed is set and the
// backend can read it (most readers start near the head), else from the
// world's start (a reader behind the shared ones: spectator.ErrTooOld).
// A state read after a rules update later than a's is no seed: the
// events would start past the update's event, where they end.
func (v *Visibility) NewEvents(a *spectator.Access, world string, seed bool) *spectator.Events {
	state := spectator.NewState(world)
	if sd, ok := v.b.(seeder); ok && seed {
		if ents, seq, err := sd.Entities(world); err == nil && seq > 0 && v.still(world, a) {
			state = spectator.SeedState(world, seq, 0, ents) // time: only delays read it, and they read events'
		}
	}
	subscribe := func(world string, from uint64) (fanout.Subscription, error) {
		sub, err := v.b.Subscribe(world, from)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return sub, nil
	}
	return spectator.NewEvents(a, state, v.TeamOf(world, a), subscribe, PreparedKeep)
}

// still reports whether world's rules on this node are still a's (or a's
// version is unknown): read after a state, it says that the state holds
// no later rules update.
func (v *Visibility) still(world string, a *spectator.Access) bool {
	info, err := WorldInfo(v.b, world)
	return a.Version() == 0 || err == nil && info.RulesVersion == a.Version()
}

// RulesVersion returns world's rules on this node, at most RulesTTL old
// and never older than known (the rules a reader started under, read
// since: rules the cache lacks read the node's state again); false when
// the world is gone.
func (v *Visibility) RulesVersion(world string, known RulesRef) (RulesRef, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	ver, ok := v.rules[world]
	older := ver.Incarnation < known.Incarnation || ver.Incarnation == known.Incarnation && ver.Version < known.Version
	if now := time.Now(); v.rules == nil || !ok || older || now.Sub(v.rulesAt) >= v.ttl {
		infos := v.b.Worlds()
		v.rules = make(map[string]RulesRef, len(infos))
		for _, w := range infos {
			v.rules[w.ID] = RulesOf(w)
		}
		v.rulesAt = now
		ver, ok = v.rules[world]
	}
	return ver, ok
}

// Cut returns ev as view may see it (nil: nothing), prepared in events,
// or, when ev is older than what events holds, in *own (a reader's own
// prepared events, made from the world's start at the first need).
func (v *Visibility) Cut(events *spectator.Events, own **spectator.Events, a *spectator.Access, view spectator.View, ev *fsm.Event) (*fsm.Event, error) {
	if *own != nil {
		events = *own
	}
	p, err := events.Prepare(ev)
	if errors.Is(err, spectator.ErrTooOld) && *own == nil {
		*own = v.NewEvents(a, ev.World, false)
		events = *own
		p, err = events.Prepare(ev)
	}
	if err != nil {
		return nil, err
	}
	return events.Event(p, view), nil
}

// WorldInfo returns world's summary in this node's applied state.
func WorldInfo(b Backend, world string) (fsm.WorldInfo, error) {
	for _, w := range b.Worlds() {
		if w.ID == world {
			return w, nil
		}
	}
	return fsm.WorldInfo{}, fmt.Errorf("%w: world %s", fsm.ErrUnknownWorld, world)
}

// GuardHashes refuses r's caller a world's hashes (what names them in the
// error) when the world's rules restrict fields and the caller may not
// see everything (issue 13): a hash covers hidden values too, so a hidden
// value from a small domain (a door, a card) could be found by hashing
// each guess with the rest of the state, which the caller sees. Game
// servers, admins and the cluster secret's holders (Sight.All) read them
// as before, as does anyone in a world that restricts nothing. A world
// that moved away is guarded by the rules of the copy a group of this
// node still holds (HeldWorlds). A world this node does not hold is left
// to the route, which answers for it.
func (s *Core) GuardHashes(r *http.Request, world, what string) error {
	info, err := WorldInfo(s.Backend(), world)
	if err != nil {
		h, ok := s.Backend().(HeldWorlds)
		if !ok {
			return nil
		}
		if info, ok = h.HeldWorld(world); !ok {
			return nil
		}
	}
	return s.guardRules(r, world, info.Rules, what)
}

// GuardIncarnationHashes is GuardHashes for the hashes of world's
// incarnation inc (?incarnation=N), by the rules of that incarnation
// where this node knows them: the world it holds now, or the copy a group
// of it holds after a move (HeldWorlds), when that is incarnation inc. An
// incarnation whose rules it does not know (deleted, moved away and
// dropped here, never created) may have restricted fields: only a caller
// who sees everything (Sight.All: admins, game servers, the cluster
// secret) passes, or any caller where nothing is closed (auth off and no
// cluster secret: anyone may ask to see everything); the others get
// unknown, the error the route answers for an incarnation that never
// was, so that the answer does not tell whether it existed.
func (s *Core) GuardIncarnationHashes(r *http.Request, world string, inc uint64, what string, unknown error) error {
	info, err := WorldInfo(s.Backend(), world)
	if err != nil || info.Incarnation != inc {
		h, ok := s.Backend().(HeldWorlds)
		if ok {
			info, ok = h.HeldWorld(world)
		}
		if !ok || info.Incarnation != inc {
			return s.guardUnknown(r, unknown)
		}
	}
	return s.guardRules(r, world, info.Rules, what)
}

// guardUnknown lets r through to hashes of unknown rules only when its
// caller sees everything, or nothing is closed; else it returns unknown.
func (s *Core) guardUnknown(r *http.Request, unknown error) error {
	if s.auth == nil && len(s.cfg.ClusterSecret) == 0 {
		return nil
	}
	sight, err := s.Sight(r)
	switch {
	case err != nil:
		return err
	case !sight.All:
		return unknown
	}
	return nil
}

// guardRules refuses r's caller hashes of a world of rules that restrict
// fields unless it sees everything.
func (s *Core) guardRules(r *http.Request, world string, rules fsm.Rules, what string) error {
	acc, err := spectator.NewAccess(rules)
	if err != nil || !acc.Restricted() {
		return err
	}
	sight, err := s.Sight(r)
	if err == nil && !sight.All {
		err = fmt.Errorf("%w: world %s restricts who sees its fields: %s are for game servers, admins and the cluster secret", ErrForbidden, world, what)
	}
	return err
}
