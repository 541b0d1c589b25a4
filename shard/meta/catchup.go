package meta

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// A joiner of a shard is caught up when it has applied what the shard's
// leader held when the joiner last asked: its own log is no measure,
// since a joiner that first sees itself in the configuration may be far
// behind the leader still (it holds the entry that added it, not what
// was written after). The joiner asks the leader over the meta group's
// Layer: a connection that starts with lastMagic and a shard id (uint64,
// big endian) is answered, by the node that leads that shard, with a
// uint32 length and lastAnswer as JSON. A node on an older binary hands
// the connection to Raft, which closes it: no answer, so the joiner is
// not ready, as with a leader that is down.
const lastMagic byte = 0xFA

// lastAnswer is a shard leader's answer to a joiner's ask.
type lastAnswer struct {
	Last  uint64 `json:"last,omitempty"` // the leader's last log index
	Error string `json:"error,omitempty"`
	// Voters are the voters of the shard's Raft configuration as its
	// leader has it (replace_voter's check, admit); an older leader
	// sends none.
	Voters []string `json:"voters,omitempty"`
}

// joiner is what a joining node needs of its replica of the shard (a
// store.Store).
type joiner interface {
	Members() ([]raft.Server, error)
	Leader() (id, httpAddr string)
}

// joinerCaughtUp reports whether this node, joining shard id with
// replica st, which applied the log up to applied, has reached its
// mark: the shard leader's last index when it answered this node's
// latest ask. When it has not, it asks again, in the background
// (background.go: a leader that accepts the connection and never
// answers must not hold up the report loop), and a later tick takes the
// answer as the new mark, so the mark trails the leader by about one
// report interval's writes and a joiner far behind is never ready. An
// answer is the mark when it is at most answerKeep old, or however old
// it is when it answers the previous tick's ask: ticks slower than
// answerKeep (a shard-leader step, a proposal or a configuration change
// still on the loop) would otherwise drop every answer and never have
// a mark. An older mark is still an index the leader had reached, a
// lower bound of its log: a joiner at it trails by about one tick's
// writes. An answer older than answerKeep to an ask from before the
// previous tick (the loop went on while it was in flight) is dropped:
// the leader has gone on since. It asks only once the configuration
// lists this node: that entry is then in the leader's log, so the mark
// is at or after it.
func (g *Group) joinerCaughtUp(id uint64, st joiner, applied uint64) bool {
	config, err := st.Members()
	if err != nil || !listed(g.cfg.ID, config) {
		return false
	}
	if r, ok := g.leaderAsks.take(id); ok {
		switch {
		case r.v.err != nil:
			g.log.Debug("ask a shard's leader for its last index", "shard", id, "leader", r.v.leader, "err", r.v.err)
		case r.taken <= 1 || time.Since(r.at) <= g.answerKeep():
			g.joinMarks[id] = r.v.last
		}
	}
	if mark, ok := g.joinMarks[id]; ok && caughtUp(mark, applied) {
		return true
	}
	leader, _ := st.Leader()
	if leader == "" || leader == g.cfg.ID {
		return false
	}
	g.leaderAsks.start(&g.wg, id, func() askedLast {
		ctx, cancel := context.WithTimeout(g.stopCtx, probeTimeout)
		defer cancel()
		last, err := g.askLast(ctx, id, leader)
		return askedLast{leader: leader, last: last, err: err}
	})
	return false
}

// askedLast is a shard leader's answer to a joiner's ask, or why there
// was none.
type askedLast struct {
	leader string
	last   uint64
	err    error
}

// leaderLast asks node leader, by its address in the meta map, for its
// last log index of shard id (which it must lead).
func (g *Group) leaderLast(ctx context.Context, id uint64, leader string) (uint64, error) {
	a, err := g.askShardLeader(ctx, id, leader)
	return a.Last, err
}

// askShardLeader asks node leader, by its address in the meta map, for
// its answer about shard id (which it must lead): its last log index
// and its configuration's voters.
func (g *Group) askShardLeader(ctx context.Context, id uint64, leader string) (lastAnswer, error) {
	n, ok := g.fsm.View().Map.Nodes[leader]
	if !ok {
		return lastAnswer{}, fmt.Errorf("%w: shard %d's leader %s is not in the meta map", ErrNotFound, id, leader)
	}
	deadline := time.Now().Add(probeTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn, err := g.layer.Dial(raft.ServerAddress(n.Raft), time.Until(deadline))
	if err != nil {
		return lastAnswer{}, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return lastAnswer{}, err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	req := make([]byte, 9)
	req[0] = lastMagic
	binary.BigEndian.PutUint64(req[1:], id)
	if _, err := conn.Write(req); err != nil {
		return lastAnswer{}, err
	}
	b, err := readFrame(conn)
	if err != nil {
		return lastAnswer{}, err
	}
	var a lastAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		return lastAnswer{}, fmt.Errorf("bad answer from %s: %w", leader, err)
	}
	if a.Error != "" {
		return lastAnswer{}, fmt.Errorf("%s: %s", leader, a.Error)
	}
	return a, nil
}

// serveLast answers a joiner's ask (after lastMagic) with this node's
// last log index of the shard, when it leads it.
func (s *splitLayer) serveLast(c net.Conn) {
	if err := c.SetDeadline(time.Now().Add(peekTimeout)); err != nil {
		return
	}
	var b [8]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return
	}
	ab, _ := json.Marshal(s.g.lastOf(binary.BigEndian.Uint64(b[:]))) // a number and strings: cannot fail
	_ = writeFrame(c, ab)
}

// lastOf is this node's answer for shard id: its last log index when it
// leads the shard.
func (g *Group) lastOf(id uint64) lastAnswer {
	st, ok := g.mgr.Group(id)
	if !ok {
		return lastAnswer{Error: fmt.Sprintf("%s does not run shard %d", g.cfg.ID, id)}
	}
	if !st.IsLeader() {
		return lastAnswer{Error: fmt.Sprintf("%s does not lead shard %d", g.cfg.ID, id)}
	}
	a := lastAnswer{Last: st.LastIndex()}
	if config, err := st.Members(); err == nil {
		for _, srv := range config {
			if srv.Suffrage == raft.Voter {
				a.Voters = append(a.Voters, string(srv.ID))
			}
		}
	}
	return a
}
