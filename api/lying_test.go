//go:build gsd_lying_leader

package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/api/peer"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// The lying leader, end to end (issue 12): run with
//
//	go test -tags gsd_lying_leader -run Lying ./api/
//
// Three nodes, each a store behind its api Server with the daemon's
// mismatch forwarder (cmd/gsd/mismatch.go): followers' mismatches travel
// over the node-to-node route to the leader, which steps down by itself.

// hpCap is a world rule every honest replica runs in Apply: hp at most 100.
type hpCap struct{}

func (hpCap) Validate(_ fsm.View, a *fsm.Action, _ int64) error {
	for _, o := range a.Ops {
		if o.Field == "hp" && o.Value.Compare(fsm.Int(100)) > 0 {
			return errors.New("hp above 100")
		}
	}
	return nil
}

// lyingNode is a node of the lying-leader cluster.
type lyingNode struct {
	*node
	reg *prometheus.Registry
}

// startLyingNode starts a node with checkpoints on, the hp rule and a
// mismatch forwarder running over its edge until the test ends.
func startLyingNode(t *testing.T, id string, bootstrap bool) *lyingNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	fc := peer.DefaultForwarderConfig()
	fc.MinBackoff, fc.MaxBackoff, fc.Logger = 10*time.Millisecond, 100*time.Millisecond, quietLogger()
	fwd, err := peer.NewForwarder(fc, reg)
	require.NoError(t, err)

	cfg := store.DefaultConfig()
	cfg.ID, cfg.Dir, cfg.RaftAddr, cfg.HTTPAddr = id, t.TempDir(), apitest.FreeAddr(t), ln.Addr().String()
	cfg.Bootstrap, cfg.NoSync, cfg.Logger = bootstrap, true, quietLogger()
	// Who leads is what the test asserts: no elections from a loaded
	// machine's slow heartbeats.
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 2*time.Second, 2*time.Second, time.Second
	cfg.CheckpointInterval = 50 * time.Millisecond
	cfg.NodeVersions = func(string) (fsm.Versions, bool) { return fsm.Supported(), true } // joins here report none
	cfg.FSM.Validators = []fsm.Validator{hpCap{}}
	cfg.OnCheckpointMismatch = fwd.Report
	st, err := store.New(cfg, reg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, st.Close(ctx))
	})
	env := newEnvReg(t, st, reg, ln)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		fwd.Run(ctx, peer.New(env.srv.Core).SendMismatch)
	}()
	t.Cleanup(func() { // before the server and the store close
		cancel()
		<-done
	})
	return &lyingNode{node: &node{st: st, env: env, raftAddr: cfg.RaftAddr}, reg: reg}
}

// TestLyingLeaderStepsDownByItselfAndAnHonestNodeLeads: a leader built to
// skip validation commits a cheat (its client is told "applied"); its
// followers reject it, find its next checkpoint differs from their state
// and report it over the node-to-node route; their reports are a majority
// of the voters, so the liar hands leadership to an honest node by itself.
// The new leader's state is the honest one, and the liar's status names
// the checkpoint and its reporters.
func TestLyingLeaderStepsDownByItselfAndAnHonestNodeLeads(t *testing.T) {
	nodes := []*lyingNode{startLyingNode(t, "n1", true)}
	require.Eventually(t, nodes[0].st.LeaderReady, 10*time.Second, 10*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, id := range []string{"n2", "n3"} {
		n := startLyingNode(t, id, false)
		require.NoError(t, nodes[0].st.Join(ctx, fsm.NodeInfo{ID: id, RaftAddr: n.raftAddr, HTTPAddr: n.env.TS.Listener.Addr().String(), Versions: n.st.Versions()}))
		nodes = append(nodes, n)
	}
	liar := nodes[0]
	require.NoError(t, liar.st.CreateWorld(ctx, "w", fsm.Rules{}))
	hp := func(seq int, v int64) string {
		return fmt.Sprintf(`{"player":"mallory","seq":%d,"ops":[{"op":"set","entity":"mallory","field":"hp","value":%d}]}`, seq, v)
	}
	code, m := liar.env.DoJSON("POST", "/v1/worlds/w/actions", hp(1, 50))
	require.Equal(t, http.StatusOK, code, "%v", m)
	require.Equal(t, "applied", m["status"])

	liar.st.Lie(true)
	code, m = liar.env.DoJSON("POST", "/v1/worlds/w/actions", hp(2, 999_999))
	require.Equal(t, http.StatusOK, code, "%v", m)
	require.Equal(t, "applied", m["status"], "what the lying leader's client is told")

	// Nobody calls ReportMismatch here: the followers' forwarders do.
	var honest *lyingNode
	require.Eventually(t, func() bool {
		if liar.st.IsLeader() {
			return false
		}
		for _, n := range nodes[1:] {
			if !n.st.IsLeader() {
				continue
			}
			// Served once the new leader's barrier has applied.
			code, m = n.env.DoJSON("GET", "/v1/worlds/w/entities/mallory?consistency=linearizable", "")
			honest = n
			return code == http.StatusOK
		}
		return false
	}, 30*time.Second, 10*time.Millisecond, "the liar did not step down: %v", m)
	require.Equal(t, map[string]any{"hp": float64(50)}, m["fields"], "the new leader's state is the honest one")

	require.Equal(t, 1.0, counter(t, liar.reg, "gsd_checkpoint_mismatch_reports_total", "majority"))
	code, m = liar.env.DoJSON("GET", "/v1/status", "")
	require.Equal(t, http.StatusOK, code)
	last, ok := m["last_mismatch"].(map[string]any)
	require.True(t, ok, "%v", m)
	require.Equal(t, true, last["majority"])
	require.Equal(t, "w", last["world"])
	require.ElementsMatch(t, []any{"n2", "n3"}, reporters(last))
	// The new leader's checkpoints name the old leader, now an odd
	// follower, by its own report: one voter of three, a minority.
	require.Eventually(t, func() bool {
		code, m = honest.env.DoJSON("GET", "/v1/status", "")
		last, ok := m["last_mismatch"].(map[string]any)
		return code == http.StatusOK && ok && last["majority"] == false && slices.Equal(reporters(last), []any{"n1"})
	}, 30*time.Second, 10*time.Millisecond, "the new leader did not hear of the odd node: %v", m)
	for _, n := range nodes[1:] {
		require.Positive(t, counter(t, n.reg, "gsd_checkpoint_mismatch_forwards_total", "sent"), n.st.Status().ID)
	}
}

// reporters lists the nodes of a last_mismatch's reporters.
func reporters(last map[string]any) []any {
	rs, _ := last["reporters"].([]any)
	var out []any
	for _, r := range rs {
		if r, ok := r.(map[string]any); ok {
			out = append(out, r["node"])
		}
	}
	return out
}

// counter is the value of the counter name{outcome} (its group label
// aside) in reg.
func counter(t *testing.T, reg *prometheus.Registry, name, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{outcome=%q}", name, outcome)
	return 0
}
