package meta

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/shard"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

// stalledMember is the address of a member that accepts connections and
// never answers (a stalled process, a blackholing proxy), and how many
// connections it accepted. Its connections close when the test ends.
func stalledMember(t *testing.T) (addr string, accepted func() int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String(), func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(conns)
	}
}

// A node of the map that accepts the probe's connection and never
// answers (its probe outlasts the test) does not hold up the meta
// leader's report loop: another node's member step and the leader's
// report still commit on later ticks, on this leader and the next.
func TestABlackholedNodeDoesNotStallTheMetaLeadersReportLoop(t *testing.T) {
	hole, accepted := stalledMember(t)
	c := newMetaClusterWith(t, 3, func(cfg *Config) { cfg.probeTimeout = time.Hour })
	c.addNodes()
	c.waitMetaMembers([]string{"n1", "n2", "n3"}, nil)
	c.propose("n1", Command{Op: OpAddNode, Node: "hole", Raft: hole, HTTP: "h:hole"})
	require.Eventually(t, func() bool { return accepted() > 0 }, 10*time.Second, 5*time.Millisecond, "the leader probes the node to add")

	x, _ := fakeMember(t, readsLevel)
	c.propose("n1", Command{Op: OpAddNode, Node: "x", Raft: x, HTTP: "h:x"})
	c.waitMetaMembers([]string{"n1", "n2", "n3"}, []string{"x"})

	// The next leader probes the blackholed node too, and reports that
	// it leads.
	old := c.metaLeader()
	next := c.ids[(indexOf(c.ids, old)+1)%3]
	require.NoError(t, c.group(old).raft.LeadershipTransferToServer(raft.ServerID(next), c.servers[indexOf(c.ids, next)].Address).Error())
	require.Eventually(t, func() bool { return c.group(next).View().Leaders[shard.MetaGroup] == next }, 10*time.Second, 5*time.Millisecond,
		"the new meta leader's report commits")
	require.Eventually(t, func() bool { return accepted() > 1 }, 10*time.Second, 5*time.Millisecond, "the new leader probes the node to add")
	c.propose(next, Command{Op: OpRemoveNode, Node: "x"})
	c.waitMetaMembers([]string{"n1", "n2", "n3"}, nil)
}

// idle reports whether no probe of p is in flight.
func (p *prober) idle() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, st := range p.nodes {
		if st.inflight {
			return false
		}
	}
	return true
}

// withAnswers takes step (one of the report loop's member steps:
// followMap, addNonvoters) as two ticks of the loop would: once, which
// starts the probes it needs, and again once they answered.
func withAnswers(t *testing.T, g *Group, step func()) {
	t.Helper()
	step()
	require.Eventually(t, g.prober.idle, 10*time.Second, time.Millisecond, "the prober's probes end")
	step()
}
