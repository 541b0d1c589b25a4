package client

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/gsd-dev/gsd/wire"
)

// A draining server moves a play connection: it sends
// {"type":"transfer","to":URL,"ticket":...} after the results of the
// actions it took, and closes with 4307. The Play then resumes at once on
// URL, with the ticket, re-sending the actions still unanswered (same seq).
// When the node holding the connection dies instead, the Play resumes on
// another address: the Client's, then those the welcomes named.

// CloseMoved is the close code of a connection moved to another node.
const CloseMoved = 4307

// Codes of a transfer.
const (
	CodeDraining      = wire.CodeDraining
	CodeTicketInvalid = wire.CodeTicketInvalid
)

// errMoved ends a connection the server moved; the Play resumes where it said.
var errMoved = errors.New("gsd/client: moved to another node")

// moved records a transfer message.
func (p *Play) moved(m *wire.ServerMsg) error {
	if m.To == "" {
		return nil // nowhere to go: the close that follows rotates
	}
	to := strings.TrimRight(m.To, "/")
	if !strings.Contains(to, "://") {
		to = "http://" + to
	}
	p.mu.Lock()
	p.moveTo, p.ticket = to, m.Ticket
	p.mu.Unlock()
	return errMoved
}

// takeMove returns where a transfer said to resume, once; when there is
// none the ticket (meant for that node only) is dropped.
func (p *Play) takeMove() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	to := p.moveTo
	p.moveTo = ""
	if to == "" {
		p.ticket = ""
	}
	return to
}

// ticketRefused reports when the target at base refused the ticket, and
// then forgets the ticket and makes base the next address: an expired
// ticket is no reason to stop, the resume token suffices.
func (p *Play) ticketRefused(err error, base string) bool {
	var ce *CloseError
	if !errors.As(err, &ce) || !strings.HasPrefix(ce.Reason, CodeTicketInvalid) {
		return false
	}
	p.mu.Lock()
	p.ticket, p.moveTo = "", base
	p.mu.Unlock()
	return true
}

// learn adds the nodes a welcome named to the addresses to resume on, in
// a random order, so that the players of a node that dies spread over the
// others.
func (p *Play) learn(nodes []string) {
	var added []string
	for _, n := range nodes {
		n = strings.TrimRight(n, "/")
		if n != "" && !slices.Contains(p.c.addrs, n) && !slices.Contains(p.learned, n) && !slices.Contains(added, n) {
			added = append(added, n)
		}
	}
	rand.Shuffle(len(added), func(i, j int) { added[i], added[j] = added[j], added[i] })
	p.learned = append(p.learned, added...)
}

// addrs returns the addresses to rotate over: the Client's, then the
// learned ones.
func (p *Play) addrs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append(slices.Clip(p.c.addrs), p.learned...)
}
