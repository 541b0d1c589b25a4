package play

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/shard"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
)

// A play connection's session: the handshake, which authenticates the
// first message (hello or resume), opens or resumes the replicated session
// and subscribes to the world from its position; the watch that ends the
// connection once the session is resumed elsewhere, kicked or closed;
// closing it after a bye or a kick; and this node's registry of which
// connection holds which session. The loops that run after the handshake
// are in ws.go.

// handshake authenticates the first message, opens or resumes the session,
// queues the welcome and subscribes to the world from the session's
// position.
func (c *playConn) handshake(msg wire.ClientMsg) (*store.Subscription, error) {
	if msg.Type != wire.TypeHello && msg.Type != wire.TypeResume {
		return nil, fmt.Errorf("%w: the first message must be hello or resume, got %q", fsm.ErrMalformed, msg.Type)
	}
	player, err := c.identify(msg)
	if err != nil {
		return nil, err
	}
	c.player = player
	// A node that runs no replica of the world's shard (placed on other
	// nodes) cannot feed the connection: it says so at once, before a
	// session is opened, and the client goes on to a node that can.
	if _, err := c.s.Backend().World(c.world); errors.Is(err, shard.ErrUnknownGroup) {
		return nil, fmt.Errorf("%w: this node runs no replica of the shard of world %q: play through a node that does (%v)", store.ErrNotLeader, c.world, err)
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.s.Config().RequestTimeout)
	defer cancel()
	welcome := wire.Welcome{Type: wire.TypeWelcome, World: c.world, Player: player}
	var info fsm.SessionInfo
	node := c.s.NodeID()
	if msg.Type == wire.TypeHello {
		id, token := randomID(), randomToken()
		info, err = c.s.Session(ctx, fsm.CmdSessionOpen, &fsm.SessionCmd{
			World: c.world, ID: id, Player: player, TokenHash: sha256.Sum256([]byte(token)), Node: node}, c.token)
		welcome.ResumeToken = token
	} else {
		if err := edge.CheckName("session", msg.Session); err != nil {
			return nil, err
		}
		if msg.Ticket != "" {
			if err := c.s.CheckTicket(msg.Ticket, c.world, msg.Session, time.Now()); err != nil {
				return nil, err
			}
		}
		info, err = c.s.Session(ctx, fsm.CmdSessionResume, &fsm.SessionCmd{
			World: c.world, ID: msg.Session, Player: player,
			TokenHash: sha256.Sum256([]byte(msg.ResumeToken)), Seq: msg.LastSeq, Node: node}, c.token)
	}
	if err != nil {
		return nil, err
	}
	c.session, c.epoch = info.ID, info.Epoch
	c.s.registerPlay(c, info.Replaced)
	// The events come from this node's feed: wait until it has applied the
	// session (and so the world), which the leader has at once.
	if err := c.awaitLocal(ctx); err != nil {
		return nil, err
	}
	// A world deleted meanwhile reads as incarnation 0; the subscription
	// then ends the connection with unknown_world.
	wi, _ := c.s.Backend().World(c.world)
	pos := info.Acked
	var kf *wire.Keyframe
	if msg.Keyframe {
		// The state at the node's seq, which the session's position
		// cannot be past (this node has applied the session): the stream
		// starts after it.
		if kf, err = c.keyframe(); err != nil {
			return nil, err
		}
		if kf.Seq < pos {
			return nil, fmt.Errorf("%w: the keyframe's seq %d is behind the session's position %d", edge.ErrInternal, kf.Seq, pos)
		}
		pos = kf.Seq
	}
	welcome.Session, welcome.Seq, welcome.Epoch, welcome.Data = info.ID, pos, info.Epoch, info.Data
	welcome.Incarnation = wi.Incarnation
	welcome.Nodes = c.s.OtherNodes()
	c.sent.Store(pos)
	c.ob.start(pos)
	c.flushed.Store(pos) // first: the acker must not see acked move
	c.acked.Store(pos)
	sub, err := c.s.b.Subscribe(c.world, pos+1)
	if err != nil {
		return nil, err
	}
	if kf != nil {
		// Deleted and created again between the keyframe and the
		// subscription: the keyframe is the old world's.
		if now, _ := c.s.Backend().World(c.world); now.Incarnation != wi.Incarnation {
			return nil, fmt.Errorf("%w: %s was deleted while the player joined", fsm.ErrUnknownWorld, c.world)
		}
	}
	welcome.UDP = c.s.udpOpen(c)
	if !c.send(welcome) {
		return nil, c.ctx.Err()
	}
	if kf != nil && !c.send(kf) {
		return nil, c.ctx.Err()
	}
	return sub, nil
}

// identify returns the player: the token's subject with auth on (from the
// message, else the upgrade request's header), else the message's player.
func (c *playConn) identify(msg wire.ClientMsg) (string, error) {
	if c.s.Auth() == nil {
		return msg.Player, edge.CheckName("player", msg.Player)
	}
	tok := msg.Token
	if tok == "" {
		tok = c.header
	}
	id, valid, err := c.s.Auth().VerifyIdentity(tok)
	if err != nil {
		return "", err
	}
	player := id.Player
	if msg.Player != "" && msg.Player != player {
		return "", fmt.Errorf("%w: the token is for player %q, the message names %q", edge.ErrForbidden, player, msg.Player)
	}
	if c.headerPlayer != "" && c.headerPlayer != player {
		return "", fmt.Errorf("%w: the header token is for player %q, the %s token for %q", edge.ErrForbidden, c.headerPlayer, msg.Type, player)
	}
	c.token, c.role = tok, id.Role
	// The connection lives as long as the token: at its exp it closes
	// with 4401, and the client reconnects with a fresh one.
	c.expiry = time.AfterFunc(valid, func() {
		c.fail(fmt.Errorf("%w: the token expired during the connection", edge.ErrUnauthorized))
	})
	return player, nil
}

// closeSession closes the connection's session (after a bye, or once it
// was kicked), best effort. Its context is not the connection's: a bye
// that was read must not be lost because the connection fails meanwhile
// (a slow consumer cut off, a ping timeout), nor a kick because it ended.
func (c *playConn) closeSession(reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), c.s.Config().RequestTimeout)
	defer cancel()
	_, err := c.s.Session(ctx, fsm.CmdSessionClose, &fsm.SessionCmd{World: c.world, ID: c.session, Reason: reason}, c.token)
	c.s.log.Debug("play: close session", "session", c.session, "reason", reason, "err", err)
}

// awaitLocal waits until this node's applied state holds the session at
// this connection's epoch or later, polling until ctx ends.
func (c *playConn) awaitLocal(ctx context.Context) error {
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		if err := c.watch(); err != nil || c.current {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: this node has not applied the session yet: %v", store.ErrNotLeader, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// watch checks the connection's session on this node's applied state, so
// that a resume or a new session on any node, a kick or a ban ends this
// connection: the session at a later epoch, or gone after it was seen at
// this one, means another connection holds it. A world that moved to
// another shard ends it too (world_moved, 4421), unless this node runs
// the new home (follow.go): the client resumes, and the session, which
// moved with the world, goes on at its new home.
func (c *playConn) watch() error {
	if c.bye.Load() {
		return nil
	}
	if fenced := c.s.fenced.Load(); fenced != nil {
		if f, ok := (*fenced)[c.world]; ok && !c.s.follows(f) {
			// Nothing more comes here: resume where the world lives now
			// (a node that runs the new home goes on there: follow.go).
			return &fsm.MovedError{Fence: f}
		}
	}
	info, err := c.s.b.SessionInfo(c.world, c.session)
	switch {
	case err != nil:
		if f, ok := c.s.fenceOf(c.world); ok {
			// Only a fenced copy is here: the world is on its way to a
			// group this node runs (its replica imports it next) or
			// moved to one it does not (the map here names it already).
			if c.s.follows(f) {
				return nil
			}
			return &fsm.MovedError{Fence: f}
		}
		if c.current {
			return fmt.Errorf("%w: the session was closed or replaced", edge.ErrSessionReplaced)
		}
		return nil // not applied here yet
	case info.Epoch > c.epoch:
		return fmt.Errorf("%w: resumed elsewhere (epoch %d)", edge.ErrSessionReplaced, info.Epoch)
	case info.Epoch == c.epoch:
		c.current = true
		if info.Kicked != "" {
			return fmt.Errorf("%w: %s", fsm.ErrSessionKicked, info.Kicked)
		}
	}
	return nil
}

// registerPlay records c as its session's connection on this node and
// cuts off the connection it supersedes: an older one of the same session
// (resumed here) or of the session the open replaced.
func (s *Service) registerPlay(c *playConn, replaced string) {
	s.mu.Lock()
	if s.plays == nil {
		s.plays = make(map[string]*playConn)
	}
	var old []*playConn
	for _, id := range []string{c.session, replaced} {
		if o := s.plays[id]; o != nil && o != c {
			old = append(old, o)
			delete(s.plays, id)
		}
	}
	s.plays[c.session] = c
	s.mu.Unlock()
	s.acks.start()
	s.watch.start()
	for _, o := range old {
		o.fail(edge.ErrSessionReplaced)
	}
}

func (s *Service) unregisterPlay(c *playConn) {
	s.mu.Lock()
	if s.plays[c.session] == c {
		delete(s.plays, c.session)
	}
	s.mu.Unlock()
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
