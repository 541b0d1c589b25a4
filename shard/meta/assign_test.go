package meta

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

func ptr(v uint64) *uint64 { return &v }

// An unconditional assign_world encodes exactly as before Expect
// existed, so a meta replica on an older binary still reads it.
func TestAnUnconditionalAssignKeepsItsBytes(t *testing.T) {
	b, err := Command{Op: OpAssignWorld, World: "w", Shard: 3}.Encode()
	require.NoError(t, err)
	require.Equal(t, append([]byte{commandVersion}, `{"op":"assign_world","shard":3,"world":"w"}`...), b)
	require.Equal(t, 1, needsLevel(Command{Op: OpAssignWorld, World: "w", Shard: 3}))
	require.Equal(t, 2, needsLevel(Command{Op: OpAssignWorld, World: "w", Shard: 3, Expect: ptr(0)}))

	b, err = Command{Op: OpAssignWorld, World: "w", Shard: 3, Expect: ptr(0)}.Encode()
	require.NoError(t, err)
	require.Equal(t, append([]byte{commandVersion}, `{"op":"assign_world","shard":3,"world":"w","expect":0}`...), b,
		"expect 0 is a shard id, not an absent field")
}

func TestExpectDecodesOnlyOnAssign(t *testing.T) {
	for name, raw := range map[string]string{
		"on place":        `{"op":"place_world","world":"w","expect":1}`,
		"on remove shard": `{"op":"remove_shard","shard":1,"expect":1}`,
		"negative":        `{"op":"assign_world","world":"w","shard":1,"expect":-1}`,
		"a string":        `{"op":"assign_world","world":"w","shard":1,"expect":"1"}`,
	} {
		_, err := DecodeCommand(append([]byte{commandVersion}, raw...))
		require.ErrorIs(t, err, ErrBadCommand, name)
	}
	c, err := DecodeCommand(append([]byte{commandVersion}, `{"op":"assign_world","world":"w","shard":1,"expect":0}`...))
	require.NoError(t, err)
	require.Equal(t, ptr(0), c.Expect)
	c, err = DecodeCommand(append([]byte{commandVersion}, `{"op":"assign_world","world":"w","shard":1,"expect":null}`...))
	require.NoError(t, err)
	require.Nil(t, c.Expect, "null is absent: an unconditional assign")
	_, err = Command{Op: OpPlaceWorld, World: "w", Expect: ptr(1)}.Encode()
	require.ErrorIs(t, err, ErrBadCommand)
	require.ErrorContains(t, err, "place_world does not take expect")
}

// A conditional assign applies only while the world is on the expected
// shard, listed or hashed; refused, it changes nothing.
func TestAConditionalAssignIsRefusedWhenTheWorldIsElsewhere(t *testing.T) {
	f := withNodes(t, 2)
	mustApply(t, f, Command{Op: OpCreateShard, Shard: 1, Voters: []string{"n1"}})
	mustApply(t, f, Command{Op: OpCreateShard, Shard: 2, Voters: []string{"n2"}})

	// An unlisted world: its hashed shard is where it is.
	hashed := f.View().Map.ShardOf("quiet")
	other := 3 - hashed
	before, err := EncodeSnapshot(f.state)
	require.NoError(t, err)
	_, err = applyTo(t, f, Command{Op: OpAssignWorld, World: "quiet", Shard: hashed, Expect: ptr(other)})
	require.ErrorIs(t, err, ErrRefused)
	require.ErrorIs(t, err, ErrElsewhere)
	require.ErrorContains(t, err, fmt.Sprintf(`world "quiet" is on shard %d, not %d`, hashed, other))
	after, err := EncodeSnapshot(f.state)
	require.NoError(t, err)
	require.Equal(t, before, after, "a refused assign changes nothing")
	_, listed := f.View().Map.Worlds["quiet"]
	require.False(t, listed)

	// Pinned where it hashes (a drain's pin).
	require.Equal(t, hashed, mustApply(t, f, Command{Op: OpAssignWorld, World: "quiet", Shard: hashed, Expect: ptr(hashed)}).Shard)
	require.Equal(t, hashed, f.View().Map.Worlds["quiet"])

	// A move published meanwhile: the pin that expected the old shard is
	// refused, the move stays.
	mustApply(t, f, Command{Op: OpAssignWorld, World: "quiet", Shard: other})
	_, err = applyTo(t, f, Command{Op: OpAssignWorld, World: "quiet", Shard: hashed, Expect: ptr(hashed)})
	require.ErrorIs(t, err, ErrElsewhere)
	require.Equal(t, other, f.View().Map.Worlds["quiet"])

	// The target shard must exist, expected or not.
	_, err = applyTo(t, f, Command{Op: OpAssignWorld, World: "quiet", Shard: 9, Expect: ptr(other)})
	require.ErrorIs(t, err, ErrNotFound)
}

// Through the meta group: a member that does not lead forwards a
// conditional assign, every member reads it (the gate opens), and a
// refusal comes back as ErrElsewhere.
func TestAConditionalAssignThroughTheMetaGroup(t *testing.T) {
	c := newMetaCluster(t, 3)
	c.addNodes()
	leader := c.metaLeader()
	from := c.ids[0]
	if from == leader {
		from = c.ids[1]
	}
	c.propose(from, Command{Op: OpCreateShard, Shard: 1, Voters: []string{"n1"}})
	c.propose(from, Command{Op: OpCreateShard, Shard: 2, Voters: []string{"n2"}})
	at := c.group(from).View().Map.ShardOf("w")
	res := c.propose(from, Command{Op: OpAssignWorld, World: "w", Shard: at, Expect: ptr(at)})
	require.Equal(t, at, res.Shard)
	require.Equal(t, at, c.group(from).View().Map.Worlds["w"])

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	require.Eventually(t, func() bool {
		_, err = c.group(from).Propose(ctx, Command{Op: OpAssignWorld, World: "w", Shard: 3 - at, Expect: ptr(3 - at)})
		return !errors.Is(err, ErrNotLeader)
	}, 10*time.Second, 10*time.Millisecond)
	require.ErrorIs(t, err, ErrElsewhere)
	require.ErrorIs(t, err, ErrRefused)
	require.Equal(t, at, c.group(from).View().Map.Worlds["w"])
}

// oldMember accepts connections as a member on a binary before the probe
// would: it reads what comes and closes the connection (raft closes one
// that starts with an unknown RPC type).
func oldMember(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_ = conn.SetReadDeadline(time.Now().Add(time.Second))
				var b [11]byte // the group header and one byte
				_, _ = conn.Read(b[:])
			}()
		}
	}()
	return l.Addr().String()
}

// A member that does not answer the probe (an older binary, or a down
// node) closes the gate: the conditional assign is refused with ErrGate
// before it enters the log, while unconditional commands go on.
func TestTheGateRefusesAConditionalAssignWhileAMemberCannotReadIt(t *testing.T) {
	old := oldMember(t)
	c := newMetaClusterWith(t, 3, func(cfg *Config) {
		cfg.Servers = append(cfg.Servers, raft.Server{Suffrage: raft.Nonvoter, ID: "old", Address: raft.ServerAddress(old)})
	})
	c.addNodes()
	c.propose("n1", Command{Op: OpCreateShard, Shard: 1, Voters: []string{"n1"}})
	leader := c.metaLeader()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	for _, from := range []string{leader, c.ids[(indexOf(c.ids, leader)+1)%3]} {
		require.Eventually(t, func() bool {
			_, err = c.group(from).Propose(ctx, Command{Op: OpAssignWorld, World: "w", Shard: 1, Expect: ptr(1)})
			return !errors.Is(err, ErrNotLeader)
		}, 10*time.Second, 10*time.Millisecond)
		require.ErrorIs(t, err, ErrGate, "from %s", from)
		require.ErrorContains(t, err, `member old did not answer`)
		_, listed := c.group(leader).View().Map.Worlds["w"]
		require.False(t, listed, "nothing applied")
	}
	c.propose("n2", Command{Op: OpAssignWorld, World: "w", Shard: 1})
}

// Removing the member that does not answer (down) passes the gate: it
// leaves, so whether it reads the removal does not matter; removing
// another node still waits for it.
func TestRemovingTheMemberThatDoesNotAnswerPassesTheGate(t *testing.T) {
	old := oldMember(t)
	c := newMetaClusterWith(t, 3, func(cfg *Config) {
		cfg.Servers = append(cfg.Servers, raft.Server{Suffrage: raft.Nonvoter, ID: "old", Address: raft.ServerAddress(old)})
	})
	c.addNodes()
	c.propose("n1", Command{Op: OpAddNode, Node: "old", Raft: old, HTTP: "h:2"})
	leader := c.metaLeader()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	require.Eventually(t, func() bool {
		_, err = c.group(leader).Propose(ctx, Command{Op: OpRemoveNode, Node: "n3"})
		return !errors.Is(err, ErrNotLeader)
	}, 10*time.Second, 10*time.Millisecond)
	require.ErrorIs(t, err, ErrGate)
	require.ErrorContains(t, err, `member old did not answer`)

	c.propose("n2", Command{Op: OpRemoveNode, Node: "old"})
	require.True(t, c.group("n2").fsm.members().removed["old"])
}

// A member remove_node took out of the map that is still in the meta
// configuration (the leader has not removed it yet) and does not answer
// does not close the gate: a second dead member can be removed.
func TestARemovedMemberThatDoesNotAnswerDoesNotCloseTheGate(t *testing.T) {
	old, old2 := oldMember(t), oldMember(t)
	c := newMetaClusterWith(t, 3, func(cfg *Config) {
		cfg.ReportInterval = 0 // the leader keeps the removed member in its configuration
		cfg.Servers = append(cfg.Servers, raft.Server{Suffrage: raft.Nonvoter, ID: "old", Address: raft.ServerAddress(old)})
	})
	c.addNodes()
	c.propose("n1", Command{Op: OpAddNode, Node: "old", Raft: old, HTTP: "h:2"})
	c.propose("n1", Command{Op: OpAddNode, Node: "old2", Raft: old2, HTTP: "h:3"})
	c.propose("n1", Command{Op: OpRemoveNode, Node: "old"})
	leader := c.metaLeader()
	require.NoError(t, c.group(leader).raft.AddNonvoter("old2", raft.ServerAddress(old2), 0, 5*time.Second).Error())
	require.True(t, listed("old", c.metaConfig()), "the removed member is still in the configuration")
	c.propose(leader, Command{Op: OpRemoveNode, Node: "old2"})
	require.True(t, c.group(leader).fsm.members().removed["old2"])
}

func indexOf(ids []string, id string) int {
	for i, x := range ids {
		if x == id {
			return i
		}
	}
	return -1
}

// The gate asks every member at once: two members that do not answer
// are both asked before either probe ends (one after the other, the
// first would wait for the second until its deadline), and the refusal
// names the first of them in id order, whatever the timing.
func TestTheGateAsksEveryMemberAtOnce(t *testing.T) {
	old1, old2 := oldMember(t), oldMember(t)
	var mu sync.Mutex
	entered := map[raft.ServerAddress]bool{}
	both, closed := make(chan struct{}), false
	met := atomic.Bool{}
	wrap := func(p probeFunc) probeFunc {
		return func(ctx context.Context, addr raft.ServerAddress) (probeAnswer, error) {
			if addr == raft.ServerAddress(old1) || addr == raft.ServerAddress(old2) {
				mu.Lock()
				entered[addr] = true
				closer := len(entered) == 2 && !closed
				if closer {
					closed = true
					close(both)
				}
				mu.Unlock()
				if !closer {
					select {
					case <-both: // the other member was asked while this one waited
						met.Store(true)
					case <-ctx.Done():
					}
				}
			}
			return p(ctx, addr)
		}
	}
	c := newMetaClusterWith(t, 3, func(cfg *Config) {
		cfg.probeTimeout, cfg.wrapProbe = 2*time.Second, wrap
		cfg.Servers = append(cfg.Servers,
			raft.Server{Suffrage: raft.Nonvoter, ID: "old2", Address: raft.ServerAddress(old2)},
			raft.Server{Suffrage: raft.Nonvoter, ID: "old1", Address: raft.ServerAddress(old1)})
	})
	c.addNodes()
	c.propose("n1", Command{Op: OpCreateShard, Shard: 1, Voters: []string{"n1"}})
	leader := c.metaLeader()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var err error
	require.Eventually(t, func() bool {
		_, err = c.group(leader).Propose(ctx, Command{Op: OpAssignWorld, World: "w", Shard: 1, Expect: ptr(1)})
		return !errors.Is(err, ErrNotLeader)
	}, 20*time.Second, 10*time.Millisecond)
	require.ErrorIs(t, err, ErrGate)
	require.ErrorContains(t, err, `member old1 did not answer`)
	require.True(t, met.Load(), "both silent members were asked at once")
}
