package jepsen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
)

// Kinds of play actions (sent over a WebSocket play session). They are
// writes for CheckEvents and invisible to the register, counter and set
// checks of the HTTP workload.
const (
	OpPlayIncr = "play-incr" // critical incr of the play client's own counter
	OpPlaySet  = "play-set"  // set of the play client's own entity (critical or bulk)
)

// Entities and fields of the play clients: counter pc<i>.n, entity ps<i>.x.
const (
	playCounterPrefix = "pc"
	playSetPrefix     = "ps"
	fieldPlaySet      = "x"
)

// PlayEvent is one item Next returned: an event, or a delta (Delta true,
// Seq = the world seq it covers, Changes = the coalesced fields).
type PlayEvent struct {
	Seq       uint64        `json:"seq"`
	Player    string        `json:"player,omitempty"`
	ClientSeq uint64        `json:"client_seq,omitempty"`
	Priority  string        `json:"priority,omitempty"`
	Status    string        `json:"status,omitempty"`
	Delta     bool          `json:"delta,omitempty"`
	Changes   []wire.Change `json:"changes,omitempty"`
}

// PlaySession is one play session (hello, then any number of resumes) of a
// play client and what Next returned in it.
type PlaySession struct {
	ID      string      `json:"id"`
	Resumes int         `json:"resumes"`
	Events  []PlayEvent `json:"events"`
	End     string      `json:"end,omitempty"` // why it ended ("" = closed by the workload)
	// CaughtUp: after the workload stopped, Next reached the seq of the
	// session's last acknowledged action (false: it did not within
	// playDrain).
	CaughtUp bool `json:"caught_up"`
}

// PlayClient is one play client's record: its actions (as history ops)
// and its sessions.
type PlayClient struct {
	ID       int            `json:"id"`
	Player   string         `json:"player"`
	World    string         `json:"world"`
	Ops      []*Op          `json:"ops"`
	Sessions []*PlaySession `json:"sessions"`
	OpenErrs []string       `json:"open_errors,omitempty"` // failed Play opens (retried)
}

// Counter is the play client's counter entity.
func (pc *PlayClient) Counter() string { return playCounterPrefix + strconv.Itoa(pc.ID) }

// PlayConfig shapes the play workload.
type PlayConfig struct {
	Worlds    []string
	Clients   int
	OpTimeout time.Duration // bound on one action, resends included
	Think     time.Duration
}

// PlayWorkload runs play clients over client.Play against the proxied
// (client-facing) addresses, so network faults hit their connections.
type PlayWorkload struct {
	cfg     PlayConfig
	addrs   []string
	hist    *History
	seed    uint64
	Clients []*PlayClient
	mu      sync.Mutex // guards Clients' Sessions/Ops while running
}

// playDrain bounds the wait, after the workload stops, for a session to
// receive the event of its last acknowledged action.
const playDrain = 20 * time.Second

// NewPlayWorkload returns play clients q0..q<n-1>; client i plays in
// world i mod len(worlds) and prefers node i mod len(addrs) first.
func NewPlayWorkload(cfg PlayConfig, addrs []string, hist *History, seed uint64) *PlayWorkload {
	pw := &PlayWorkload{cfg: cfg, addrs: addrs, hist: hist, seed: seed}
	for i := range cfg.Clients {
		pw.Clients = append(pw.Clients, &PlayClient{ID: i, Player: "q" + strconv.Itoa(i), World: cfg.Worlds[i%len(cfg.Worlds)]})
	}
	return pw
}

// Run runs the play clients until ctx ends, then lets each session catch
// up with its own last acknowledged action (bounded) and closes it.
func (pw *PlayWorkload) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, pc := range pw.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pw.client(ctx, pc)
		}()
	}
	wg.Wait()
}

// Ops returns every play action of every client.
func (pw *PlayWorkload) Ops() []*Op {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	var out []*Op
	for _, pc := range pw.Clients {
		out = append(out, pc.Ops...)
	}
	return out
}

// session is a running play session and its reader.
type session struct {
	p    *client.Play
	rec  *PlaySession
	done chan struct{}
	mu   sync.Mutex
	seen uint64 // highest seq Next returned (event or delta)
}

func (s *session) ended() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *session) covered() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen
}

// read records everything Next returns until the Play ends.
func (pw *PlayWorkload) read(s *session) {
	defer close(s.done)
	for {
		ev, err := s.p.Next(context.Background())
		if err != nil {
			if !errors.Is(err, client.ErrPlayClosed) {
				pw.mu.Lock()
				s.rec.End = err.Error()
				pw.mu.Unlock()
			}
			return
		}
		pe := PlayEvent{Seq: ev.Seq, Player: ev.Player, ClientSeq: ev.ClientSeq, Priority: ev.Priority, Status: ev.Status}
		if ev.Status == client.DeltaStatus {
			pe = PlayEvent{Seq: ev.Seq, Delta: true, Changes: ev.Changes}
		}
		pw.mu.Lock()
		s.rec.Events = append(s.rec.Events, pe)
		pw.mu.Unlock()
		s.mu.Lock()
		s.seen = max(s.seen, ev.Seq)
		s.mu.Unlock()
	}
}

// open opens a new play session, retrying until ctx ends.
func (pw *PlayWorkload) open(ctx context.Context, cl *client.Client, pc *PlayClient) *session {
	for ctx.Err() == nil {
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		p, err := cl.Play(octx, pc.World, client.PlayOptions{Player: pc.Player})
		cancel()
		if err != nil {
			pw.mu.Lock()
			pc.OpenErrs = append(pc.OpenErrs, err.Error())
			pw.mu.Unlock()
			pause(ctx, 200*time.Millisecond)
			continue
		}
		id, _ := p.Session()
		s := &session{p: p, rec: &PlaySession{ID: id}, done: make(chan struct{})}
		pw.mu.Lock()
		pc.Sessions = append(pc.Sessions, s.rec)
		pw.mu.Unlock()
		go pw.read(s)
		return s
	}
	return nil
}

func (pw *PlayWorkload) client(ctx context.Context, pc *PlayClient) {
	k := pc.ID % len(pw.addrs)
	addrs := append(append([]string(nil), pw.addrs[k:]...), pw.addrs[:k]...)
	cl := client.New(addrs, client.WithAttemptTimeout(time.Second), client.WithBackoff(20*time.Millisecond, 250*time.Millisecond))
	defer cl.Close()
	rng := rand.New(rand.NewPCG(pw.seed, 0x706c6179+uint64(pc.ID)))
	var seq uint64
	for ctx.Err() == nil {
		s := pw.open(ctx, cl, pc)
		if s == nil {
			return
		}
		var lastAcked uint64
		for ctx.Err() == nil && !s.ended() {
			seq++
			o := &Op{Client: 100 + pc.ID, Player: pc.Player, Seq: seq, World: pc.World}
			switch r := rng.IntN(100); {
			case r < 75:
				o.Kind, o.Key = OpPlayIncr, pc.Counter()
			case r < 85:
				o.Kind, o.Key = OpPlaySet, playSetPrefix+strconv.Itoa(pc.ID)
			default:
				o.Kind, o.Key, o.Priority = OpPlaySet, playSetPrefix+strconv.Itoa(pc.ID), client.PriorityBulk
			}
			o.Value = int64(pc.ID+1)*1_000_000_000 + int64(seq)
			pw.act(ctx, s.p, o)
			if o.Outcome == Ok {
				lastAcked = max(lastAcked, o.WorldSeq)
			}
			if pw.cfg.Think > 0 {
				pause(ctx, time.Duration(rng.Int64N(int64(pw.cfg.Think))))
			}
		}
		if ctx.Err() != nil {
			// Let the session receive its own last acknowledged action.
			deadline := time.Now().Add(playDrain)
			for !s.ended() && s.covered() < lastAcked && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			pw.mu.Lock()
			s.rec.CaughtUp = s.covered() >= lastAcked
			pw.mu.Unlock()
		}
		_, resumes := s.p.Session()
		_ = s.p.Close()
		<-s.done
		pw.mu.Lock()
		s.rec.Resumes = resumes
		pw.mu.Unlock()
	}
}

// act sends o over the play session and records its outcome: ok (a
// result), fail (4xx: definitely not applied) or unknown. Retryable
// errors are retried with the same seq within the op's bound; the Play
// itself re-sends actions in flight after a resume.
func (pw *PlayWorkload) act(runCtx context.Context, p *client.Play, o *Op) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(runCtx), pw.cfg.OpTimeout)
	defer cancel()
	if o.Priority == "" {
		o.Priority = client.PriorityCritical
	}
	op := client.Set(o.Key, fieldPlaySet, wire.Int(o.Value))
	if o.Kind == OpPlayIncr {
		op = client.Incr(o.Key, fieldCounter, 1)
	}
	o.Invoke = pw.hist.Now()
	defer func() { o.Complete = pw.hist.Now() }()
	defer func() {
		pw.mu.Lock()
		for _, pc := range pw.Clients {
			if pc.Player == o.Player {
				pc.Ops = append(pc.Ops, o)
			}
		}
		pw.mu.Unlock()
	}()
	attempts := 0
	for {
		attempts++
		ev, err := p.Act(ctx, client.ActionRequest{Seq: o.Seq, Priority: o.Priority, Ops: []wire.Op{op}})
		if err == nil {
			o.Outcome, o.Status, o.WorldSeq, o.Err = Ok, ev.Status, ev.Seq, ""
			if len(ev.Changes) > 0 {
				o.RVersion = ev.Changes[0].Version
			}
			return
		}
		o.Err = err.Error()
		var ce *client.Error
		if errors.As(err, &ce) && ce.Status >= 400 && ce.Status < 500 {
			// Definitely not applied, unless an earlier attempt may have been.
			o.Outcome = Fail
			if attempts > 1 {
				o.Outcome = Unknown
			}
			return
		}
		if ctx.Err() != nil || !errors.As(err, &ce) {
			// The bound passed, or the Play ended with the action in
			// flight: it may have been applied.
			o.Outcome = Unknown
			return
		}
		pause(ctx, 50*time.Millisecond) // retryable (outcome_unknown, not_leader, ...): same seq
	}
}

// PlayStats sums up the play clients of a run.
type PlayStats struct {
	Clients  int `json:"clients"`
	Acts     int `json:"acts"`
	Acked    int `json:"acked"`
	Unknown  int `json:"unknown"`
	Failed   int `json:"failed"`
	Events   int `json:"events"` // individual events Next returned
	Deltas   int `json:"deltas"` // delta frames Next returned
	Sessions int `json:"sessions"`
	Resumes  int `json:"resumes"`
}

func (s *PlayStats) String() string {
	return fmt.Sprintf("clients=%d acts=%d acked=%d unknown=%d failed=%d events=%d deltas=%d sessions=%d resumes=%d",
		s.Clients, s.Acts, s.Acked, s.Unknown, s.Failed, s.Events, s.Deltas, s.Sessions, s.Resumes)
}

// checkPlay runs the play checks after healing: each client's counter
// (read linearizably over HTTP) against its acked and unknown increments,
// and each session's events against a complete feed of its world (feeds:
// what finalChecks read). Acked play actions exactly once in every feed is
// CheckEvents' job (finalChecks gets the play ops too).
func checkPlay(ctx context.Context, cl *client.Client, pw *PlayWorkload, feeds map[string]map[string][]wire.Event, r *Result) {
	st := &PlayStats{Clients: len(pw.Clients)}
	r.Play = st
	for _, pc := range pw.Clients {
		for _, o := range pc.Ops {
			st.Acts++
			switch o.Outcome {
			case Ok:
				st.Acked++
			case Unknown:
				st.Unknown++
			default:
				st.Failed++
			}
		}
		if len(pc.OpenErrs) > 0 {
			r.Notes = append(r.Notes, fmt.Sprintf("play %s: %d failed session opens (retried), last: %s", pc.Player, len(pc.OpenErrs), pc.OpenErrs[len(pc.OpenErrs)-1]))
		}
		var final int64
		err := poll(ctx, 30*time.Second, func() error {
			rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			e, err := cl.Entity(rctx, pc.World, pc.Counter(), client.Linearizable)
			if client.Code(err) == client.CodeNotFound {
				final = 0
				return nil
			}
			if err != nil {
				return err
			}
			final, _ = e.Int(fieldCounter)
			return nil
		})
		if err != nil {
			r.Problems = append(r.Problems, fmt.Sprintf("play %s: final read of %s failed: %v", pc.Player, pc.Counter(), err))
		} else if err := CheckPlayCounter(pc, final); err != nil {
			r.Problems = append(r.Problems, err.Error())
			r.Lost++
		}
		nodes := make([]string, 0, len(feeds[pc.World]))
		for n := range feeds[pc.World] {
			nodes = append(nodes, n)
		}
		sort.Strings(nodes)
		for i, s := range pc.Sessions {
			st.Sessions++
			st.Resumes += s.Resumes
			for _, pe := range s.Events {
				if pe.Delta {
					st.Deltas++
				} else {
					st.Events++
				}
			}
			if s.End != "" {
				r.Notes = append(r.Notes, fmt.Sprintf("play %s session %s ended: %s (a new session was opened)", pc.Player, s.ID, s.End))
			} else if i == len(pc.Sessions)-1 && !s.CaughtUp {
				r.Problems = append(r.Problems, fmt.Sprintf("play %s session %s: the event of its last acked action never came (waited %s after the workload stopped)", pc.Player, s.ID, playDrain))
			}
			if len(nodes) == 0 {
				continue
			}
			r.Problems = append(r.Problems, CheckPlaySession(pc.Player, s, feeds[pc.World][nodes[0]])...)
		}
		if len(nodes) == 0 {
			r.Notes = append(r.Notes, fmt.Sprintf("play %s: no complete feed of %s, events not checked", pc.Player, pc.World))
		}
	}
}
