package edge

import (
	"crypto/hmac"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

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

// Accesses compiles and keeps each world's visibility rules
// (spectator.Access) by rules version, for the read paths of one service.
// Safe for concurrent use.
type Accesses struct {
	mu sync.Mutex
	m  map[string]compiledAccess
}

type compiledAccess struct {
	version uint64
	access  *spectator.Access
}

// Of returns the compiled rules of the world as info has them.
func (c *Accesses) Of(info fsm.WorldInfo) (*spectator.Access, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ca, ok := c.m[info.ID]; ok && ca.version == info.RulesVersion {
		return ca.access, nil
	}
	a, err := spectator.NewAccess(info.Rules)
	if err != nil {
		return nil, fmt.Errorf("%w: world %s: %v", ErrInternal, info.ID, err)
	}
	if c.m == nil {
		c.m = make(map[string]compiledAccess)
	}
	c.m[info.ID] = compiledAccess{version: info.RulesVersion, access: a}
	return a, nil
}

// Forget drops world's compiled rules.
func (c *Accesses) Forget(world string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, world)
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
