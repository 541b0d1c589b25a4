package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gsd-dev/gsd/api"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/shard"
	"github.com/gsd-dev/gsd/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// runNode runs one node until ctx ends (a clean shutdown, nil) or it fails.
// exitDiskStall is gsd's exit code when a raft log write stalled past
// --disk-stall-timeout.
const exitDiskStall = 3

func runNode(ctx context.Context, o *options, base *slog.Logger) error {
	log := base.With("node", o.id) // the store adds the node id itself
	// A checkpoint heal order ends the run like a signal (heal.go).
	ctx, heal := newHealer(ctx, o.id, log)
	if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	stopProfile, err := startCPUProfile(o.cpuProfile, o.dataDir)
	if err != nil {
		return err
	}
	defer stopProfile()
	groupDir, err := stateDir(o.dataDir, o.shards.m) // group 0's; moved under groups/ with a shard map
	if err != nil {
		return err
	}
	hasDB, hasState, err := raftState(groupDir)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", o.httpAddr)
	if err != nil {
		return fmt.Errorf("http listener: %w", err)
	}
	defer ln.Close() // after a clean shutdown it is already closed
	httpAdvertise := o.httpAdvertise
	if httpAdvertise == "" {
		httpAdvertise = o.httpAddr
		if portOf(o.httpAddr) == "0" {
			httpAdvertise = ln.Addr().String()
		}
	}
	httpAdvertise = o.tls.advertise(httpAdvertise) // https:// with TLS (tls.go)

	scfg := store.DefaultConfig()
	scfg.ID = o.id
	scfg.Dir = groupDir
	scfg.RaftAddr = o.raftAddr
	scfg.Advertise = o.raftAdvertise
	scfg.HTTPAddr = httpAdvertise
	scfg.Region = o.region
	scfg.Logger = base
	scfg.NoSync = o.noSync
	// A node whose data dir has a raft.db never bootstraps, even when it holds
	// no state yet: it may have been added to a cluster already, and a second
	// one-node cluster under the same id would split the group.
	scfg.Bootstrap = !hasDB && len(o.join) == 0
	if o.heartbeatTimeout > 0 {
		scfg.HeartbeatTimeout = o.heartbeatTimeout
	}
	if o.electionTimeout > 0 {
		scfg.ElectionTimeout = o.electionTimeout
	}
	if o.commitTimeout > 0 {
		scfg.CommitTimeout = o.commitTimeout
	}
	scfg.Batch.PipelineMin = o.pipelineMin
	scfg.Batch.BulkPipelineMin = o.bulkPipelineMin
	// Raft requires the leader lease to fit in the heartbeat timeout.
	scfg.LeaderLeaseTimeout = min(scfg.LeaderLeaseTimeout, scfg.HeartbeatTimeout)
	if o.snapshotThreshold > 0 {
		scfg.SnapshotThreshold = o.snapshotThreshold
	}
	if o.snapshotInterval > 0 {
		scfg.SnapshotInterval = o.snapshotInterval
	}
	if o.trailingLogs > 0 {
		scfg.TrailingLogs = o.trailingLogs
	}
	if o.applyTimeout > 0 {
		scfg.ApplyTimeout = o.applyTimeout
	}
	scfg.Retention.MaxAge, scfg.Retention.MaxEventsPerWorld = o.archiveMaxAge, o.archiveMaxEvents
	scfg.DiskStallTimeout = o.diskStallTimeout
	o.checks.apply(&scfg)
	heal.apply(&scfg, o.checks.heal)
	scfg.OnDiskStall = func(d time.Duration) {
		// Crash-only: a leader stuck in a disk write keeps its followers
		// from electing anyone else; exiting lets them. A supervisor
		// restarts the process once the disk answers again.
		log.Error("raft log write stalled; exiting so that a node with a working disk leads", "stalled", d)
		os.Exit(exitDiskStall)
	}
	if o.peerAddrFile != "" {
		peers, err := newPeerFile(o.peerAddrFile, log)
		if err != nil {
			return err
		}
		scfg.ResolvePeer = peers.lookup
		stop := reloadOnSIGHUP(peers)
		defer stop()
	}

	reg := prometheus.NewRegistry()
	// The Go runtime's figures (heap, goroutines), e.g. for gsdctl bench's
	// memory per play connection.
	reg.MustRegister(collectors.NewGoCollector())
	mismatches, err := newMismatchForwarder(&scfg, reg, log) // mismatch.go
	if err != nil {
		return err
	}
	// Raft listens through the mux: today's one group is group 0, whose
	// connections carry no group header, so peers running an older gsd
	// (a plain raft TCP transport on the same address) interoperate.
	mcfg := shard.DefaultMuxConfig()
	mcfg.Addr, mcfg.Advertise, mcfg.Logger = o.raftAddr, o.raftAdvertise, log
	o.tls.setMux(&mcfg)
	mux, err := shard.NewMux(mcfg, reg)
	if err != nil {
		return fmt.Errorf("start store: raft transport on %s: %w", o.raftAddr, err)
	}
	defer mux.Close() // after the store, which closes its group's layer
	var st *store.Store
	var backend edge.Backend
	var router edge.Router
	var sinkSrc *shard.FeedSource // under a shard map: the sinks follow every group (pgsink.go)
	expirers := func() []worldExpirer { return []worldExpirer{st} }
	detectGroups := func() []*store.Store { return []*store.Store{st} }
	var refillGroups func(groupArchives) func() []refillGroup // under a shard map: every group refills (archive.go)
	if o.shards.m == nil {
		if scfg.StreamLayer, err = mux.Listen(0); err != nil {
			return fmt.Errorf("start store: %w", err)
		}
		if st, err = store.New(scfg, reg); err != nil {
			return fmt.Errorf("start store: %w", err)
		}
		backend, router = st, api.NewSingleGroupRouter(st)
	} else {
		groups, err := o.shards.start(o.dataDir, scfg, mux, reg)
		if err != nil {
			return fmt.Errorf("start store: %w", err)
		}
		defer groups.close(o.shutdownTimeout, log) // the groups other than 0, before the mux
		st, backend, router = groups.zero, groups.backend, groups.router
		sinkSrc = groups.feedSource()
		expirers = groups.worldExpirers
		detectGroups = managedGroups(groups.mgr)
		refillGroups = groups.refillGroups
	}
	stopSink, err := o.pgSink.start(st, sinkSrc, scfg.Retention, reg, log)
	if err != nil {
		closeStore(st, o.shutdownTimeout, log)
		return err
	}
	defer stopSink() // on the failure paths below; idempotent
	stopAnalytics, err := o.analytics.start(o.dataDir, st, sinkSrc, reg, log)
	if err != nil {
		closeStore(st, o.shutdownTimeout, log)
		return err
	}
	defer stopAnalytics() // on the failure paths below; idempotent
	aud, stopAudit, err := o.audit.start(o.dataDir, st, sinkSrc, detectGroups, reg, log)
	if err != nil {
		closeStore(st, o.shutdownTimeout, log)
		return err
	}
	defer stopAudit() // on the failure paths below; idempotent
	stopExpiry := o.expiry.start(st, log)
	defer stopExpiry() // on the failure paths below; idempotent
	stopWorldExpiry := o.worlds.start(expirers, log)
	defer stopWorldExpiry()
	stopFlagsHook, err := o.flagsHook.start(o.dataDir, st, sinkSrc, o.analytics.webhookURL != "", reg, log)
	if err != nil {
		closeStore(st, o.shutdownTimeout, log)
		return err
	}
	defer stopFlagsHook() // on the failure paths below; idempotent
	acfg := api.DefaultConfig()
	acfg.Logger = log
	if acfg.Auth, err = o.auth.config(ctx, true, log); err != nil {
		closeStore(st, o.shutdownTimeout, log)
		return err
	}
	o.play.set(&acfg.Play)
	o.limit.set(&acfg)
	o.watch.set(&acfg)
	stopTracing, err := o.otel.start(ctx, o.id, &acfg, o.shutdownTimeout, log)
	if err != nil {
		closeStore(st, o.shutdownTimeout, log)
		return err
	}
	defer stopTracing() // on the failure paths below; idempotent
	if err := o.tls.setEdge(&acfg, st, reg); err != nil {
		closeStore(st, o.shutdownTimeout, log)
		return err
	}
	acfg.Audit = aud
	acfg.Play.SessionKeepalive = o.expiry.keepalive()
	if acfg.ClusterSecret, err = o.cluster.secret(); err != nil {
		closeStore(st, o.shutdownTimeout, log)
		return err
	}
	if o.cluster.ticketTTL > 0 {
		acfg.TransferTicketTTL = o.cluster.ticketTTL
	}
	switch {
	case acfg.ClusterSecret == nil && acfg.Auth != nil:
		// Auth on closes every route: nodes join and report with the secret.
		log.Warn("auth on without a cluster secret: admin routes need an admin token, and other nodes can neither join this one nor report their versions")
	case acfg.ClusterSecret == nil:
		log.Warn("no cluster secret: the admin and internal endpoints are open to whoever reaches the HTTP port")
	}
	if o.applyTimeout > 0 {
		// A request must outlast the proposal it waits for.
		acfg.RequestTimeout = max(acfg.RequestTimeout, o.applyTimeout+time.Second)
		acfg.ForwardTimeout = max(acfg.ForwardTimeout, acfg.RequestTimeout+5*time.Second)
	}
	edge, err := api.New(acfg, backend, router, reg)
	if err != nil {
		closeStore(st, o.shutdownTimeout, log)
		return fmt.Errorf("start api: %w", err)
	}
	// The detectors record their flags through the edge (on the
	// moderation world's leader), so they start after it.
	stopDetect, err := o.detect.start(o.dataDir, detectGroups, edge.Moderation(), o.id, reg, log)
	if err != nil {
		edge.Close()
		closeStore(st, o.shutdownTimeout, log)
		return err
	}
	defer stopDetect() // on the failure paths below; idempotent
	stopMismatches := startMismatchForwarder(mismatches, edge)
	defer stopMismatches() // on the failure paths below; idempotent
	refills := func() []refillGroup { return []refillGroup{{st: st, peers: edge}} }
	if refillGroups != nil {
		refills = refillGroups(edge)
	}
	stopRefill := o.archive.start(refills, aud, log)
	defer stopRefill() // on the failure paths below; idempotent
	// A moved world's events before its move, to its new home (archivemove.go).
	stopMoved := startMovedArchives(backend, edge)
	defer stopMoved() // on the failure paths below; idempotent
	lane, err := o.udp.start(edge, reg, log)
	if err != nil {
		edge.Close()
		closeStore(st, o.shutdownTimeout, log)
		return err
	}
	hs := &http.Server{
		Handler:           heal.handler(edge, st),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(o.tls.listen(ln)) }()
	stopReport := startReporter(ctx, o, st, o.tls.reportAddr(ln.Addr().String(), httpAdvertise), log)
	log.Info("gsd node started", "http", ln.Addr().String(), "raft", o.raftAddr, "raft_advertise", o.raftAdvertise,
		"data_dir", o.dataDir, "region", o.region, "bootstrap", scfg.Bootstrap, "existing_state", hasState)

	var runErr error
	switch {
	case len(o.join) > 0 && hasState:
		log.Info("data dir has raft state: not joining", "join", o.join)
	case len(o.join) > 0:
		runErr = join(ctx, o, httpAdvertise, st.Versions(), log)
	case hasDB && !hasState:
		log.Warn("raft.db exists but holds no state and no --join was given: waiting to be added by a leader")
	}
	if runErr == nil {
		select {
		case <-ctx.Done():
			log.Info("shutting down")
		case err := <-served:
			runErr = fmt.Errorf("http server: %w", err)
		}
	}
	stopReport()
	stopRefill()
	stopMoved()
	stopSink() // before the store hands leadership on and closes
	stopAnalytics()
	stopFlagsHook()
	stopExpiry()
	stopWorldExpiry()
	stopDetect()
	stopMismatches()
	closeUDP(lane, log)
	shutdown(hs, edge, st, o.shutdownTimeout, log, stopAudit)
	stopTracing() // after the last action's spans
	if runErr != nil && ctx.Err() == nil {
		return runErr
	}
	if err := heal.finish(groupDir); err != nil {
		return err
	}
	log.Info("gsd node stopped")
	return nil
}

// shutdown stops the node: no new HTTP connections, open event streams
// ended, in-flight requests drained, then the store closed (which hands
// leadership to a peer first). beforeStore runs between the last request
// and the store's close (the audit log: served until then, fed until then).
func shutdown(hs *http.Server, edge *api.Server, st *store.Store, timeout time.Duration, log *slog.Logger, beforeStore ...func()) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	drained := make(chan error, 1)
	go func() { drained <- hs.Shutdown(ctx) }()
	edge.Close()
	if err := <-drained; err != nil {
		log.Warn("http shutdown incomplete; closing connections", "err", err)
		hs.Close()
	}
	for _, f := range beforeStore {
		f()
	}
	closeStore(st, timeout, log)
}

func closeStore(st *store.Store, timeout time.Duration, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := st.Close(ctx); err != nil {
		log.Error("store close", "err", err)
	}
}

// join asks the cluster to add this node, retrying until it is accepted,
// refused for good, ctx ends or --join-timeout passes. The request carries
// the versions the node reads, so the node table lists them from the join
// on: without them the version gate takes the new voter for the oldest
// binary until its reporter (versions.go) corrects it, and refuses newer
// commands meanwhile (e.g. the sinks' replicated positions).
func join(ctx context.Context, o *options, httpAdvertise string, versions fsm.Versions, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, o.joinTimeout)
	defer cancel()
	opts := []client.Option{client.WithAttemptTimeout(30 * time.Second), client.WithBackoff(100*time.Millisecond, 2*time.Second)}
	opts = append(opts, o.tls.clientOptions()...)
	if secret, _ := o.cluster.secret(); secret != nil { // complete has checked it
		opts = append(opts, client.WithClusterSecret(string(secret)))
	}
	c := client.New(o.join, opts...)
	defer c.Close()
	n := fsm.NodeInfo{ID: o.id, RaftAddr: o.raftAdvertise, HTTPAddr: httpAdvertise, Region: o.region, Versions: versions}
	backoff := 250 * time.Millisecond
	// telling is the last failure that says why (a refused certificate, a
	// reset), which the one the deadline cut short would hide.
	var telling error
	failed := func(err error) error {
		if telling != nil && errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("join via %v: %w (the last attempt that ended by itself: %v)", o.join, err, telling)
		}
		return fmt.Errorf("join via %v: %w", o.join, err)
	}
	for {
		err := c.Join(ctx, n)
		if err == nil {
			log.Info("joined the cluster", "via", o.join)
			return nil
		}
		if ctx.Err() != nil {
			return failed(err)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			telling = err
		}
		// 4xx answers (other than overload) will not change by retrying.
		if s := client.StatusCode(err); s >= 400 && s < 500 && s != http.StatusTooManyRequests {
			return fmt.Errorf("join via %v refused: %w", o.join, err)
		}
		log.Warn("join failed; retrying", "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return failed(err)
		case <-t.C:
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// raftState reports whether dir holds a raft.db and whether Raft has state
// in it (a term, log entries or a snapshot), as raft.HasExistingState would.
// It opens the log read-only with a timeout, so a data dir that another
// process holds fails fast instead of blocking on the file lock.
func raftState(dir string) (hasDB, hasState bool, err error) {
	path := filepath.Join(dir, "raft.db")
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, false, nil
	} else if err != nil {
		return false, false, fmt.Errorf("inspect data dir: %w", err)
	}
	if snaps, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*", "meta.json")); len(snaps) > 0 {
		return true, true, nil
	}
	if fi.Size() == 0 {
		return true, false, nil
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if errors.Is(err, berrors.ErrTimeout) {
		return true, false, fmt.Errorf("data dir %s is in use by another process", dir)
	} else if err != nil {
		return true, false, fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	// raft-boltdb keeps the log in bucket "logs" and the stable store
	// (CurrentTerm, big-endian) in bucket "conf".
	err = db.View(func(tx *bbolt.Tx) error {
		if b := tx.Bucket([]byte("conf")); b != nil {
			if v := b.Get([]byte("CurrentTerm")); len(v) == 8 && binary.BigEndian.Uint64(v) > 0 {
				hasState = true
			}
		}
		if b := tx.Bucket([]byte("logs")); b != nil {
			if k, _ := b.Cursor().First(); k != nil {
				hasState = true
			}
		}
		return nil
	})
	if err != nil {
		return true, false, fmt.Errorf("read %s: %w", path, err)
	}
	return true, hasState, nil
}

// reloadOnSIGHUP re-reads the peer file on every SIGHUP until stop is called.
func reloadOnSIGHUP(p *peerFile) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		for {
			select {
			case <-ch:
				p.reload(true)
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
		<-exited
	}
}
