package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func incr(player string, seq uint64, entity string, by int64) client.ActionRequest {
	return client.ActionRequest{Player: player, Seq: seq, Ops: []wire.Op{client.Incr(entity, "n", by)}}
}

func TestRunBootstrapsASingleNodeStore(t *testing.T) {
	t.Parallel()
	n := startNode(t, "solo", t.TempDir())
	st := n.waitLeader(t)
	require.Equal(t, "solo", st.Leader)
	require.Equal(t, n.http, st.LeaderHTTP)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := n.client(t)
	require.NoError(t, c.CreateWorld(ctx, "arena", wire.Rules{}))
	ev, err := c.Act(ctx, "arena", incr("p1", 1, "e1", 2))
	require.NoError(t, err)
	require.Equal(t, "applied", ev.Status)

	// The client against the real edge: a batch with a repeat and a bad
	// action, then the event stream.
	res, err := c.ActBatch(ctx, "arena", []client.ActionRequest{
		incr("p1", 1, "e1", 2), incr("p1", 2, "e1", 3), incr("p1", 1, "e1", 9),
		{Player: "p1", Seq: 3, Ops: []wire.Op{client.Set("e1", "n", wire.Int(1))}},
	})
	require.NoError(t, err)
	require.NoError(t, res[0].Err)
	require.True(t, res[0].Event.Duplicate)
	require.NoError(t, res[1].Err)
	require.Equal(t, uint64(2), res[1].Event.Seq)
	require.Equal(t, client.CodeSeqReused, client.Code(res[2].Err))
	require.Equal(t, 409, client.StatusCode(res[2].Err))
	require.Equal(t, 400, client.StatusCode(res[3].Err))
	var seqs []uint64
	stop := errors.New("stop")
	require.ErrorIs(t, c.Follow(ctx, "arena", 1, func(ev wire.Event) error {
		seqs = append(seqs, ev.Seq)
		if ev.Seq == 2 {
			return stop
		}
		return nil
	}), stop)
	require.Equal(t, []uint64{1, 2}, seqs)
	e, err := c.Entity(ctx, "arena", "e1", client.Linearizable)
	require.NoError(t, err)
	total, _ := e.Int("n")
	require.Equal(t, int64(5), total)

	require.Equal(t, 0, n.stop(t))
	requireContains(t, n.stderr.String(), "bootstrapping a new cluster", "bootstrap=true", "gsd node stopped")
}

func TestRunRestartKeepsDataAndDoesNotBootstrapAgain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	n := startNode(t, "r1", dir)
	n.waitLeader(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := n.client(t)
	require.NoError(t, c.CreateWorld(ctx, "arena", wire.Rules{}))
	for seq := uint64(1); seq <= 5; seq++ {
		_, err := c.Act(ctx, "arena", incr("p1", seq, "e1", 1))
		require.NoError(t, err)
	}
	require.Equal(t, 0, n.stop(t))

	// Same dir and addresses; a --join to nowhere is ignored because the
	// node has state.
	again := startNodeAt(t, "r1", dir, n.http, n.raft, "--join", freeAddr(t))
	again.waitLeader(t)
	c2 := again.client(t)
	e, err := c2.Entity(ctx, "arena", "e1", client.Stale)
	require.NoError(t, err)
	total, ok := e.Int("n")
	require.True(t, ok)
	require.Equal(t, int64(5), total)
	require.Equal(t, uint64(5), e.Seq)

	// A retry of an action applied before the restart is still a duplicate.
	ev, err := c2.Act(ctx, "arena", incr("p1", 5, "e1", 1))
	require.NoError(t, err)
	require.True(t, ev.Duplicate)
	e, err = c2.Entity(ctx, "arena", "e1", client.Linearizable)
	require.NoError(t, err)
	total, _ = e.Int("n")
	require.Equal(t, int64(5), total)

	require.Equal(t, 0, again.stop(t))
	log := again.stderr.String()
	requireContains(t, log, "bootstrap=false", "existing_state=true", "not joining")
	require.NotContains(t, log, "bootstrapping a new cluster")
}

// tcpProxy forwards connections to target and counts them.
type tcpProxy struct {
	ln    net.Listener
	conns atomic.Int64
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &tcpProxy{ln: ln}
	done := make(chan struct{})
	var open []net.Conn
	var mu = make(chan struct{}, 1)
	go func() {
		defer close(done)
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			p.conns.Add(1)
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			mu <- struct{}{}
			open = append(open, in, out)
			<-mu
			go func() { io.Copy(out, in); out.Close() }()
			go func() { io.Copy(in, out); in.Close() }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu <- struct{}{}
		for _, c := range open {
			c.Close()
		}
		<-mu
	})
	return p
}

func TestRunJoinsAClusterAndRoutesPeersThroughTheAddressFile(t *testing.T) {
	t.Parallel()
	// n1 dials n2 through a proxy named in its peer address file.
	n2HTTP, n2Raft := freeAddr(t), freeAddr(t)
	proxy := newTCPProxy(t, n2Raft)
	peerFile := filepath.Join(t.TempDir(), "peers.json")
	b, _ := json.Marshal(map[string]string{"n2": proxy.ln.Addr().String()})
	require.NoError(t, os.WriteFile(peerFile, b, 0o600))

	n1 := startNode(t, "n1", t.TempDir(), "--peer-addr-file", peerFile)
	n1.waitLeader(t)
	// The first join address is dead: the node moves on to the next.
	n2 := startNodeAt(t, "n2", t.TempDir(), n2HTTP, n2Raft, "--join", freeAddr(t)+","+n1.http, "--region", "eu")
	n1.waitStatus(t, "has two voters", func(s client.Status) bool { return len(s.Servers) == 2 })
	n2.waitLeader(t)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := client.New([]string{n2.http}) // a follower forwards to the leader
	defer c.Close()
	require.NoError(t, c.CreateWorld(ctx, "arena", wire.Rules{}))
	ev, err := c.Act(ctx, "arena", incr("p1", 1, "e1", 7))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		e, err := c.Entity(ctx, "arena", "e1", client.Stale)
		v, _ := e.Int("n")
		return err == nil && e.Seq >= ev.Seq && v == 7
	}, 30*time.Second, 20*time.Millisecond)
	require.Positive(t, proxy.conns.Load(), "n1 must dial n2 through the proxy")

	st := n2.waitStatus(t, "knows n2's region", func(s client.Status) bool {
		for _, n := range s.Nodes {
			if n.ID == "n2" {
				return n.Region == "eu" && n.HTTPAddr == n2HTTP
			}
		}
		return false
	})
	require.Equal(t, "eu", st.Region)
	requireContains(t, n2.stderr.String(), "joined the cluster")

	require.Equal(t, 0, n2.stop(t))
	require.Equal(t, 0, n1.stop(t))
}

func TestRunJoinFailsWhenNoClusterAnswers(t *testing.T) {
	t.Parallel()
	n := startNode(t, "lonely", t.TempDir(), "--join", freeAddr(t), "--join-timeout", "300ms")
	require.Equal(t, 1, n.exited(t))
	requireContains(t, n.stderr.String(), "gsd: join via")
}

func TestRunJoinFailsWhenTheClusterRefuses(t *testing.T) {
	t.Parallel()
	var got atomic.Value
	refuser := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(string(b))
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"code":"malformed","error":"no"}`))
	}))
	defer refuser.Close()
	n := startNode(t, "refused", t.TempDir(), "--join", refuser.URL, "--region", "eu")
	require.Equal(t, 1, n.exited(t))
	requireContains(t, n.stderr.String(), "refused", "malformed")
	var sent wire.NodeInfo
	require.NoError(t, json.Unmarshal([]byte(got.Load().(string)), &sent))
	v := fsm.Supported() // the join names what the node reads (the version gate knows it from the join on)
	require.Equal(t, wire.NodeInfo{ID: "refused", RaftAddr: n.raft, HTTPAddr: n.http, Region: "eu", Versions: wire.Versions(v)}, sent)
}

func TestRunRejectsBadFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"--bogus"}, "unknown flag: --bogus"},
		{"positional argument", []string{"extra"}, `unknown command "extra"`},
		{"bad duration", []string{"--election-timeout", "soon"}, "invalid argument"},
		{"bad log level", []string{"--log-level", "loud"}, "--log-level"},
		{"bad log format", []string{"--log-format", "xml"}, "--log-format"},
		{"http address without port", []string{"--http-addr", "localhost"}, "--http-addr"},
		{"raft address without port", []string{"--raft-addr", "localhost"}, "--raft-addr"},
		{"bad raft advertise", []string{"--raft-advertise", "x"}, "--raft-advertise"},
		{"bad http advertise", []string{"--http-advertise", "x"}, "--http-advertise"},
		{"negative timeout", []string{"--heartbeat-timeout", "-1s"}, "must not be negative"},
		{"commit timeout under raft's floor", []string{"--commit-timeout", "500us"}, "--commit-timeout must be at least 1ms"},
		{"negative commit timeout", []string{"--commit-timeout", "-1ms"}, "--commit-timeout must be at least 1ms"},
		{"negative pipeline minimum", []string{"--batch-pipeline-min", "-1"}, "--batch-pipeline-min must not be negative"},
		{"negative bulk pipeline minimum", []string{"--batch-bulk-pipeline-min", "-1"}, "--batch-bulk-pipeline-min must not be negative"},
		{"negative archive age", []string{"--archive-max-age", "-1h"}, "--archive-max-age must not be negative"},
		{"negative disk stall timeout", []string{"--disk-stall-timeout", "-1s"}, "--disk-stall-timeout must not be negative"},
		{"zero join timeout", []string{"--join-timeout", "0s"}, "--join-timeout must be positive"},
		{"zero shutdown timeout", []string{"--shutdown-timeout", "0s"}, "--shutdown-timeout must be positive"},
		{"zero play tick", []string{"--play-tick", "0s"}, "--play-* flags: play timeouts"},
		{"negative interest radius", []string{"--play-interest-radius", "-1"}, "interest radius"},
		{"interest grid without x", []string{"--play-interest-cell", "10", "--play-interest-x", ""}, "X and Y"},
		{"empty data dir", []string{"--data-dir", ""}, "--data-dir"},
		{"empty region", []string{"--region", ""}, "--region"},
		{"short cluster secret", []string{"--cluster-secret-file", writeFile(t, "short")}, "at least 32 bytes"},
		{"missing cluster secret", []string{"--cluster-secret-file", filepath.Join(dir, "none")}, "cluster secret"},
		{"negative ticket ttl", []string{"--transfer-ticket-ttl", "-1s"}, "--transfer-ticket-ttl must not be negative"},
		{"unwritable cpu profile", []string{"--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0", "--cpuprofile", filepath.Join(dir, "none", "cpu.pprof")}, "--cpuprofile"},
		{"unreadable peer file", []string{"--data-dir", dir, "--peer-addr-file", writeFile(t, "{"), "--http-addr", "127.0.0.1:0"}, "peer address file"},
		{"raft timeouts raft refuses", []string{"--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0", "--raft-addr", freeAddr(t),
			"--heartbeat-timeout", "2s", "--election-timeout", "1s"}, "start store"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(context.Background(), tc.args, io.Discard, &stderr)
			require.Equal(t, 1, code, stderr.String())
			requireContains(t, stderr.String(), tc.want)
		})
	}
}

func writeFile(t *testing.T, content string) string {
	p := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

func TestRunHelpExitsZero(t *testing.T) {
	t.Parallel()
	var stdout bytes.Buffer
	require.Equal(t, 0, run(context.Background(), []string{"--help"}, &stdout, io.Discard))
	requireContains(t, stdout.String(), "--peer-addr-file", "--join", "--raft-advertise", "bootstraps")
}

func TestRunFailsWhenAPortIsInUse(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	for _, tc := range []struct{ name, flag string }{{"http", "--http-addr"}, {"raft", "--raft-addr"}} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"--data-dir", t.TempDir(), "--http-addr", freeAddr(t), "--raft-addr", freeAddr(t), tc.flag, busy.Addr().String()}
			var stderr bytes.Buffer
			require.Equal(t, 1, run(context.Background(), args, io.Discard, &stderr))
			requireContains(t, stderr.String(), "address already in use")
		})
	}
}

func TestRunDefaultsTheIDToHostnameAndRaftPort(t *testing.T) {
	t.Parallel()
	o := &options{httpAddr: "127.0.0.1:1", raftAddr: "127.0.0.1:7071", dataDir: "d", region: "r", joinTimeout: time.Second, shutdownTimeout: time.Second,
		join: []string{" a ", "", "b"}}
	require.NoError(t, o.complete())
	host, _ := os.Hostname()
	require.Equal(t, host+"-7071", o.id)
	require.Equal(t, "127.0.0.1:7071", o.raftAdvertise)
	require.Equal(t, []string{"a", "b"}, o.join)
	require.Equal(t, "", portOf("nope"))
	require.Equal(t, "", portOf("h:x"))
}

func TestRunServesOnAnOSChosenHTTPPortAndLogsJSON(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &syncBuffer{}
	done := make(chan int, 1)
	args := append([]string{"--id", "j1", "--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0", "--raft-addr", freeAddr(t),
		"--log-format", "json", "--log-level", "debug", "--snapshot-threshold", "16", "--snapshot-interval", "1s", "--apply-timeout", "12s"}, fastFlags...)
	go func() { done <- run(ctx, args, io.Discard, stderr) }()
	var httpAddr string
	require.Eventually(t, func() bool {
		for _, line := range bytes.Split([]byte(stderr.String()), []byte("\n")) {
			var rec map[string]any
			if json.Unmarshal(line, &rec) == nil && rec["msg"] == "gsd node started" {
				httpAddr, _ = rec["http"].(string)
				return true
			}
		}
		return false
	}, 30*time.Second, 10*time.Millisecond)
	n := &testNode{id: "j1", http: httpAddr, stderr: stderr, done: done, cancel: cancel}
	t.Cleanup(func() { n.stop(t) })
	st := n.waitLeader(t)
	require.Equal(t, httpAddr, st.LeaderHTTP, "the advertised HTTP address is the one the OS chose")
	require.Equal(t, 0, n.stop(t))
}
