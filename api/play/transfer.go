package play

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// Drain and transfer (docs/PROTOCOL.md, "Transfer"; docs/API.md, "Drain").
// POST /v1/node/drain makes this node refuse new play connections and move
// each of its play connections to another node: the connection stops
// taking actions (it drops those that arrive; the client re-sends them
// after its resume, with the same seq), lets the ones in flight finish and
// queues their results, replicates the client's latest ack, then sends
// {"type":"transfer","to":...,"ticket":...} after everything queued and
// closes with 4307 moved. The client resumes on the target with the
// ticket.
//
// The ticket is signed with a key derived from the cluster secret (no
// secret: no ticket, the resume token alone proves the client). It binds
// the world, the session, the epoch the source held, the target node and
// an expiry, and the target refuses a resume whose ticket is forged,
// expired, for another node or session, or older than the session's
// current epoch. It is an extra proof, not the credential: the resume
// token still is. It keeps a ticket from being replayed on another node,
// after it expires, or after the session moved on.

// ticketPurpose separates the ticket key from other uses of the secret.
const ticketPurpose = "gsd transfer ticket v1"

// drainState is a node's drain switch and its cached view of the others.
type drainState struct {
	on    atomic.Bool
	mu    sync.Mutex
	nodes []string  // other nodes' HTTP base URLs, for welcomes
	at    time.Time // when nodes was read
}

// signTicket encodes and signs t; "" when there is no cluster secret.
func (s *Service) SignTicket(t wire.Ticket) string {
	if len(s.Config().ClusterSecret) == 0 {
		return ""
	}
	return wire.SignTicket(s.HMACKey(ticketPurpose), t)
}

// checkTicket verifies a resume's ticket for session of world on this node.
func (s *Service) CheckTicket(raw, world, session string, now time.Time) error {
	if len(s.Config().ClusterSecret) == 0 {
		return fmt.Errorf("%w: this node has no cluster secret to verify it; resume without it", edge.ErrTicket)
	}
	t, err := wire.OpenTicket(s.HMACKey(ticketPurpose), raw)
	if err != nil {
		return fmt.Errorf("%w: %v", edge.ErrTicket, err)
	}
	switch self := s.NodeID(); {
	case now.UnixMilli() > t.Expires:
		return fmt.Errorf("%w: expired at %s", edge.ErrTicket, time.UnixMilli(t.Expires).UTC().Format(time.RFC3339Nano))
	case t.World != world || t.Session != session:
		return fmt.Errorf("%w: issued for session %s of world %s", edge.ErrTicket, t.Session, t.World)
	case t.To != self:
		return fmt.Errorf("%w: issued for node %s, this is %s", edge.ErrTicket, t.To, self)
	}
	if info, err := s.b.SessionInfo(world, session); err == nil && info.Epoch > t.Epoch {
		return fmt.Errorf("%w: the session moved on since (epoch %d, ticket %d)", edge.ErrTicket, info.Epoch, t.Epoch)
	}
	return nil
}

// otherNodes returns the HTTP base URLs of the group's other nodes, read
// at most once a second.
func (s *Service) OtherNodes() []string {
	d := &s.drain
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.nodes == nil || time.Since(d.at) > time.Second {
		st := s.b.Status()
		d.nodes = []string{}
		for _, n := range st.Nodes {
			if n.ID != st.ID && n.HTTPAddr != "" {
				d.nodes = append(d.nodes, edge.LeaderURL(n.HTTPAddr))
			}
		}
		d.at = time.Now()
	}
	return d.nodes
}

// drainingError refuses a new play connection, naming where to go.
func (s *Service) drainingError() error {
	return fmt.Errorf("%w: this node takes no new play connections; connect to another: %s", edge.ErrDraining, strings.Join(s.OtherNodes(), ", "))
}

// drainNode handles POST /v1/node/drain: this node (never forwarded) stops
// taking play connections and moves the ones it has to other nodes; it
// answers once each has moved or ended.
func (s *Service) drainNode(w http.ResponseWriter, r *http.Request) {
	var req wire.DrainRequest
	if _, ok := s.AdminBody(w, r, &req); !ok {
		return
	}
	st := s.b.Status()
	var targets []fsm.NodeInfo
	for _, n := range st.Nodes {
		if n.ID != st.ID && n.HTTPAddr != "" && (req.To == "" || req.To == n.ID) {
			targets = append(targets, n)
		}
	}
	if len(targets) == 0 {
		err := fmt.Errorf("%w: this group has no other node with an HTTP address", edge.ErrNoTarget)
		if req.To != "" {
			err = fmt.Errorf("%w: node %q is not another node of this group", fsm.ErrNotFound, req.To)
		}
		s.WriteError(w, err, true)
		return
	}
	s.drain.on.Store(true)
	s.log.Info("draining play connections", "targets", len(targets))
	out := wire.DrainResult{Node: st.ID, Draining: true}
	var mu sync.Mutex
	seen := map[*playConn]bool{}
	// Two passes: a connection mid-handshake when the first began
	// registers after it.
	for range 2 {
		s.mu.Lock()
		conns := make([]*playConn, 0, len(s.plays))
		for _, c := range s.plays {
			if !seen[c] {
				seen[c] = true
				conns = append(conns, c)
			}
		}
		s.mu.Unlock()
		slices.SortFunc(conns, func(a, b *playConn) int { return strings.Compare(a.session, b.session) })
		var wg sync.WaitGroup
		for i, c := range conns {
			wg.Go(func() {
				moved := c.transfer(targets[i%len(targets)])
				mu.Lock()
				defer mu.Unlock()
				if moved {
					out.Moved++
				} else {
					out.Failed = append(out.Failed, c.session)
				}
			})
		}
		wg.Wait()
	}
	slices.Sort(out.Failed)
	s.WriteJSON(w, http.StatusOK, out)
}

// undrainNode handles DELETE /v1/node/drain: take play connections again.
func (s *Service) undrainNode(w http.ResponseWriter, r *http.Request) {
	s.drain.on.Store(false)
	s.WriteJSON(w, http.StatusOK, wire.DrainResult{Node: s.NodeID()})
}

// admitAct reserves a slot for one action; false while the connection is
// moving (the action is dropped unanswered: the client re-sends it).
func (c *playConn) admitAct() bool {
	c.actMu.Lock()
	defer c.actMu.Unlock()
	if c.moving {
		return false
	}
	c.acts.Add(1)
	return true
}

// transfer moves the connection to node to and reports whether the
// transfer message went out before the connection ended.
func (c *playConn) transfer(to fsm.NodeInfo) bool {
	select {
	case <-c.ready: // the handshake has set what the ticket binds
	case <-c.ctx.Done():
		return false
	}
	c.actMu.Lock()
	c.moving = true
	c.actMu.Unlock()
	c.acts.Wait() // their results are queued before the transfer
	c.flushAck(false)
	t := wire.Ticket{World: c.world, Session: c.session, Epoch: c.epoch, Sent: c.sent.Load(),
		From: c.s.NodeID(), To: to.ID, Expires: time.Now().Add(c.s.Config().TransferTicketTTL).UnixMilli()}
	b, err := c.codec.marshal(wire.Transfer{Type: wire.TypeTransfer, To: edge.LeaderURL(to.HTTPAddr), Node: to.ID, Ticket: c.s.SignTicket(t)})
	if err != nil {
		c.fail(fmt.Errorf("%w: encode the transfer message: %v", edge.ErrInternal, err))
		return false
	}
	select {
	case c.final <- b:
		c.wakeWriter()
	default: // a transfer is already on its way
	}
	timer := time.NewTimer(c.cfg.WriteTimeout + c.s.Config().RequestTimeout)
	defer timer.Stop()
	select {
	case <-c.ctx.Done():
	case <-timer.C:
		c.fail(fmt.Errorf("%w: the transfer message was not written in time", edge.ErrSlowConsumer))
		<-c.ctx.Done()
	}
	return errors.Is(c.err, edge.ErrMoved)
}

// writeFinal writes what was queued (results and events), then the
// transfer message, and ends the connection as moved.
func (c *playConn) writeFinal(final []byte) {
	for n := len(c.out); n > 0; n-- {
		if !c.write(<-c.out) {
			return
		}
	}
	if c.write(final) {
		c.fail(fmt.Errorf("%w: resume on the node the transfer message names", edge.ErrMoved))
	}
}
