// Command bot is an example gsd player: one avatar in one world, played
// over the WebSocket play protocol with the Go client (client.Play). It is
// meant to be read and copied: everything a game client does with gsd is
// here, in one file, with no dependency beyond the gsd module itself.
//
//   - create the world if it does not exist yet (its rules declare fields);
//   - open a play session: client.Play resumes it by itself after network
//     drops, leader changes and node drains, without losing an event;
//   - act: move (bulk actions, cheap, coalesced by the server), attack
//     another player (a critical counter increment), pick items up and drop
//     them (critical actions with an optimistic-concurrency expectation);
//   - read the world's events: critical events one by one, bulk changes as
//     per-tick deltas (client.DeltaStatus), kept in a local view by version;
//   - print a summary line every few seconds, with the round trip time;
//   - say bye on SIGINT (the server then forgets the session at once).
//
// Run `go run ./examples/bot -h` for the flags, and see README.md.
package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
)

// config is what the flags set.
type config struct {
	addrs       []string      // HTTP addresses of the shard's nodes
	world       string        // the world to play in
	player      string        // the player (the token's subject with auth on)
	token       string        // a ready JWT (servers with auth on)
	tokenSecret string        // or: a file with the HS256 secret, to mint dev tokens
	tokenTTL    time.Duration // how long a minted token lives
	audience    string        // aud claim of minted tokens
	issuer      string        // iss claim of minted tokens
	rate        float64       // actions per second
	items       int           // items item0..itemN-1 to race for
	report      time.Duration // how often to print a summary line
}

func parseFlags(args []string, errOut io.Writer) (config, error) {
	var cfg config
	var addrs string
	fs := flag.NewFlagSet("bot", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.StringVar(&addrs, "addr", "127.0.0.1:7070", "comma-separated HTTP addresses of the nodes (host:port or URLs)")
	fs.StringVar(&cfg.world, "world", "arena", "world to play in (created if missing)")
	fs.StringVar(&cfg.player, "player", "", "player name (required; with auth on, the token's subject)")
	fs.StringVar(&cfg.token, "token", "", "player JWT, for servers with auth on")
	fs.StringVar(&cfg.tokenSecret, "token-secret", "", "file with the HS256 secret the server was given (--jwt-hs256-key-file): mint development tokens, a fresh one for each connect and resume")
	fs.DurationVar(&cfg.tokenTTL, "token-ttl", time.Hour, "lifetime of minted tokens")
	fs.StringVar(&cfg.audience, "audience", "", "aud claim of minted tokens (the server's --jwt-audience)")
	fs.StringVar(&cfg.issuer, "issuer", "", "iss claim of minted tokens (the server's --jwt-issuer)")
	fs.Float64Var(&cfg.rate, "rate", 10, "actions per second")
	fs.IntVar(&cfg.items, "items", 6, "items item0..itemN-1 the players race for")
	fs.DurationVar(&cfg.report, "report", 5*time.Second, "interval between summary lines")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	for _, a := range strings.Split(addrs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			cfg.addrs = append(cfg.addrs, a)
		}
	}
	switch {
	case fs.NArg() > 0:
		return cfg, fmt.Errorf("unexpected arguments: %q", fs.Args())
	case len(cfg.addrs) == 0:
		return cfg, errors.New("--addr is required")
	case cfg.player == "":
		return cfg, errors.New("--player is required")
	case cfg.world == "":
		return cfg, errors.New("--world is required")
	case cfg.token != "" && cfg.tokenSecret != "":
		return cfg, errors.New("--token and --token-secret exclude each other")
	case cfg.tokenTTL <= 0:
		return cfg, errors.New("--token-ttl must be positive")
	case cfg.rate <= 0:
		return cfg, errors.New("--rate must be positive")
	case cfg.items < 1:
		return cfg, errors.New("--items must be at least 1")
	case cfg.report <= 0:
		return cfg, errors.New("--report must be positive")
	}
	return cfg, nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bot:", err)
		os.Exit(2)
	}
	// SIGINT (Ctrl-C) or SIGTERM ends ctx; run then says bye and returns.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bot:", err)
		os.Exit(1)
	}
}

// rules declares the world's fields. They match the worlds `gsdctl demo`
// and `gsdctl bench` create, so the bot can join those battles too.
func rules() wire.Rules {
	return wire.Rules{Fields: map[string]wire.FieldRule{
		"x":         {Type: "int", Policy: wire.PolicyAuthoritative}, // position: last writer wins
		"y":         {Type: "int", Policy: wire.PolicyAuthoritative},
		"hp":        {Type: "int", Policy: wire.PolicyCounter},          // every hit adds up
		"kills":     {Type: "int", Policy: wire.PolicyCounter},          // (unused here)
		"owner":     {Type: "string", Policy: wire.PolicyAuthoritative}, // an item's holder
		"inventory": {Type: "string", Policy: wire.PolicySet},           // (unused here)
		"best":      {Type: "int", Policy: wire.PolicyMax},              // (unused here)
	}}
}

// run plays until ctx ends (then it says bye and returns nil) or the
// session ends for good (then it returns why).
func run(ctx context.Context, cfg config, out io.Writer) error {
	c := client.New(cfg.addrs)
	defer c.Close()

	// The identity. With auth off the player is just a name; with auth on
	// it is a token's subject. A TokenSource is asked before every connect
	// and resume, so a long session outlives its tokens.
	opts := client.PlayOptions{Player: cfg.player, Token: cfg.token}
	creator := c
	if cfg.token != "" {
		creator = client.New(cfg.addrs, client.WithHeader("Authorization", "Bearer "+cfg.token))
		defer creator.Close()
	}
	if cfg.tokenSecret != "" {
		key, err := loadSecret(cfg.tokenSecret)
		if err != nil {
			return err
		}
		opts.TokenSource = func(context.Context) (string, error) {
			return mintHS256(key, cfg.player, "", cfg.audience, cfg.issuer, time.Now(), cfg.tokenTTL)
		}
		// With auth on only game servers and admins create worlds: with
		// the key, the bot mints itself a server's token for that.
		tok, err := mintHS256(key, cfg.player+"-server", "server", cfg.audience, cfg.issuer, time.Now(), time.Minute)
		if err != nil {
			return err
		}
		creator = client.New(cfg.addrs, client.WithHeader("Authorization", "Bearer "+tok))
		defer creator.Close()
	}

	// Create the world; one that exists already is fine.
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := creator.CreateWorld(cctx, cfg.world, rules())
	cancel()
	// A player's own token may not create worlds (auth on: servers and
	// admins do); the world then has to exist, which play will tell.
	if err != nil && client.Code(err) != client.CodeWorldExists && client.Code(err) != wire.CodeForbidden {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("create world %s: %w", cfg.world, err)
	}

	// Open the session. Play returns once the server welcomed us; from then
	// on it reconnects and resumes by itself.
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	p, err := c.Play(pctx, cfg.world, opts)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("play %s: %w", cfg.world, err)
	}
	id, _ := p.Session()
	fmt.Fprintf(out, "bot %s: playing in %s, session %s\n", cfg.player, cfg.world, id)

	b := &bot{cfg: cfg, p: p, view: newView(), held: make(map[string]uint64),
		rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0)),
		// The seq is the action's idempotency key: it must grow across
		// runs of the same player, so it starts from the clock.
		seq: uint64(time.Now().UnixMicro()), started: time.Now()}

	// Read events in their own goroutine: Next must keep up, or the server
	// cuts a slow reader off (the Play would resume, but late).
	var readErr error
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		readErr = b.read()
	}()

	b.play(ctx, out, readDone)
	// Bye: the server forgets the session (a dropped connection would keep
	// it for a resume). Close also ends the reader.
	_ = p.Close()
	<-readDone
	b.summary(out, "final")
	if ctx.Err() == nil && !errors.Is(readErr, client.ErrPlayClosed) {
		// The session ended for good: kicked, replaced by another
		// connection of the same player, or the token refused.
		return fmt.Errorf("session ended: %w", readErr)
	}
	return nil
}

// bot is one player's state.
type bot struct {
	cfg     config
	p       *client.Play
	view    *view
	rng     *rand.Rand
	seq     uint64            // the last action's seq
	held    map[string]uint64 // items we hold -> the version we took them at
	started time.Time
	rtt     time.Duration // the last Ping's
	x, y    int64         // our position: we are its only writer

	// Counters, updated by the reader and the actor, read by summary.
	events, critical, bulk, deltas        atomic.Int64
	actions, applied, conflicts, rejected atomic.Int64
	failed, hits, respawns                atomic.Int64
}

// play acts at cfg.rate and prints summaries until ctx ends or the reader
// stops (the session ended).
func (b *bot) play(ctx context.Context, out io.Writer, readDone <-chan struct{}) {
	b.spawn(ctx)
	act := time.NewTicker(time.Duration(float64(time.Second) / b.cfg.rate))
	defer act.Stop()
	report := time.NewTicker(b.cfg.report)
	defer report.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-readDone:
			return
		case <-report.C:
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			if rtt, err := b.p.Ping(pctx); err == nil {
				b.rtt = rtt
			}
			cancel()
			b.summary(out, time.Since(b.started).Round(time.Second).String())
		case <-act.C:
			b.act(ctx, b.next())
		}
	}
}

// spawn places the avatar and gives it 100 hp the first time: the hp op
// expects the field to be absent, so on a rejoin it conflicts and nothing
// of that action applies (all ops of an action apply, or none).
func (b *bot) spawn(ctx context.Context) {
	me := b.cfg.player
	b.x, b.y = b.rng.Int64N(1000), b.rng.Int64N(1000)
	b.act(ctx, b.action(client.PriorityBulk, client.Set(me, "x", wire.Int(b.x)), client.Set(me, "y", wire.Int(b.y))))
	b.act(ctx, b.action(client.PriorityCritical, client.ExpectVersion(client.Incr(me, "hp", 100), 0)))
}

// action numbers a new action.
func (b *bot) action(priority string, ops ...wire.Op) client.ActionRequest {
	b.seq++
	// Player stays empty: over a play connection the player is the
	// session's.
	return client.ActionRequest{Seq: b.seq, Priority: priority, Ops: ops}
}

// next picks the next action: mostly moves, some attacks and item races.
func (b *bot) next() client.ActionRequest {
	me := b.cfg.player
	// Dead? Respawn: bring hp back to 100, expecting the hp field's
	// version we saw (optimistic concurrency). If someone hit us since,
	// the action conflicts and changes nothing; we try again next turn,
	// with the newer value our view will have by then.
	if hp, version := b.view.field(me, "hp"); version > 0 && hp.Int <= 0 {
		return b.action(client.PriorityCritical, client.ExpectVersion(client.Incr(me, "hp", 100-hp.Int), version))
	}
	switch r := b.rng.IntN(100); {
	case r < 70:
		return b.move()
	case r < 85:
		// Attack: a counter increment. Concurrent hits all add up; no
		// expectation needed.
		others := b.view.players(me)
		if len(others) == 0 {
			return b.move()
		}
		target := others[b.rng.IntN(len(others))]
		return b.action(client.PriorityCritical, client.Incr(target, "hp", -(1+b.rng.Int64N(10))))
	default:
		// Drop an item we hold: delete it, expecting the version at which
		// we took it (nobody changed it since).
		for item, v := range b.held {
			if b.rng.IntN(2) == 0 {
				return b.action(client.PriorityCritical, client.ExpectVersion(client.Delete(item), v))
			}
		}
		// Pick an item up: set its owner, expecting it to have none. Of
		// several players racing for it, exactly one wins; the others get
		// a conflict with the winner's value.
		item := "item" + strconv.Itoa(b.rng.IntN(b.cfg.items))
		if free := b.view.freeItems(b.cfg.items); len(free) > 0 {
			item = free[b.rng.IntN(len(free))]
		}
		return b.action(client.PriorityCritical, client.ExpectVersion(client.Set(item, "owner", wire.String(me)), 0))
	}
}

// move steps the avatar. Moves are bulk: the server may coalesce them, and
// others see the latest position in the next tick's delta.
func (b *bot) move() client.ActionRequest {
	step := func(v int64) int64 { return min(999, max(0, v+b.rng.Int64N(21)-10)) }
	b.x, b.y = step(b.x), step(b.y)
	me := b.cfg.player
	return b.action(client.PriorityBulk, client.Set(me, "x", wire.Int(b.x)), client.Set(me, "y", wire.Int(b.y)))
}

// act sends one action and records its outcome. Over a resume the Play
// re-sends it with the same seq: it applies at most once.
func (b *bot) act(ctx context.Context, a client.ActionRequest) {
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	b.actions.Add(1)
	ev, err := b.p.Act(actx, a)
	if err != nil {
		// Refused before commit (a 4xx code, e.g. rate limited), or no
		// answer in time, or the session ended: the action may or may not
		// have applied. The reader sees the session's end.
		b.failed.Add(1)
		return
	}
	op := a.Ops[0]
	switch ev.Status {
	case wire.StatusApplied:
		b.applied.Add(1)
		switch {
		case op.Kind == wire.OpSet && op.Field == "owner":
			b.held[op.Entity] = ev.Versions[op.Entity]["owner"]
		case op.Kind == wire.OpDelete:
			delete(b.held, op.Entity)
		case op.Kind == wire.OpIncr && op.Expect.Mode == wire.ExpectVersion:
			b.respawns.Add(1)
		}
	case wire.StatusConflict:
		b.conflicts.Add(1)
		if op.Kind == wire.OpDelete {
			delete(b.held, op.Entity) // it changed under us: not ours any more
		}
	default:
		b.rejected.Add(1)
	}
}

// read applies the world's events to the view until the Play ends.
func (b *bot) read() error {
	for {
		ev, err := b.p.Next(context.Background()) // ends when the Play does
		if err != nil {
			return err
		}
		b.events.Add(1)
		switch {
		case ev.Status == client.DeltaStatus:
			// Bulk changes coalesced by the server: each field's latest
			// value and version. After a resume they may repeat what we
			// have: the view keeps the newer version.
			b.deltas.Add(1)
		case ev.Priority == client.PriorityBulk:
			b.bulk.Add(1) // a server that does not coalesce
		default:
			b.critical.Add(1)
		}
		if ev.Status != client.DeltaStatus && ev.Status != wire.StatusApplied {
			continue // a conflict or rejection changed nothing
		}
		for _, ch := range ev.Changes {
			if ch.Entity == b.cfg.player && ch.Field == "hp" && ch.Op == "incr" && ev.Player != b.cfg.player {
				b.hits.Add(1)
			}
			b.view.apply(ch)
		}
	}
}

// summary prints one line of counters.
func (b *bot) summary(out io.Writer, label string) {
	_, resumes := b.p.Session()
	rtt := "n/a"
	if b.rtt > 0 {
		rtt = b.rtt.Round(10 * time.Microsecond).String()
	}
	fmt.Fprintf(out, "bot %s [%s] events=%d (critical=%d bulk=%d deltas=%d) actions=%d applied=%d conflicts=%d rejected=%d failed=%d hp=%d hits=%d respawns=%d items=%d rtt=%s resumes=%d\n",
		b.cfg.player, label, b.events.Load(), b.critical.Load(), b.bulk.Load(), b.deltas.Load(),
		b.actions.Load(), b.applied.Load(), b.conflicts.Load(), b.rejected.Load(), b.failed.Load(),
		b.view.intField(b.cfg.player, "hp"), b.hits.Load(), b.respawns.Load(), len(b.held), rtt, resumes)
}

// view is the bot's copy of the world, built from events: entity -> field
// -> value at a version. A change applies only when newer than what it
// holds, so repeats (a delta after a resume) do no harm.
type view struct {
	mu       sync.Mutex
	entities map[string]map[string]versioned
}

type versioned struct {
	value   wire.Value
	version uint64
}

func newView() *view { return &view{entities: make(map[string]map[string]versioned)} }

func (v *view) apply(ch wire.Change) {
	v.mu.Lock()
	defer v.mu.Unlock()
	e := v.entities[ch.Entity]
	switch {
	case ch.Op == "delete" && ch.Field == "":
		// The entity is gone as of ch.Version: drop what is not newer.
		for f, fv := range e {
			if fv.version <= ch.Version {
				delete(e, f)
			}
		}
		if len(e) == 0 {
			delete(v.entities, ch.Entity)
		}
	case ch.Value != nil && (ch.Op == "set" || ch.Op == "incr"):
		// set and incr carry the field's resulting value (add/remove on
		// set fields carry the element: this bot does not track them).
		if e == nil {
			e = make(map[string]versioned)
			v.entities[ch.Entity] = e
		}
		if ch.Version > e[ch.Field].version {
			e[ch.Field] = versioned{*ch.Value, ch.Version}
		}
	}
}

// intField returns an int field (0 when unknown).
func (v *view) intField(entity, field string) int64 {
	value, _ := v.field(entity, field)
	return value.Int
}

// field returns a field's value and version (0: unknown).
func (v *view) field(entity, field string) (wire.Value, uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	f := v.entities[entity][field]
	return f.value, f.version
}

// players returns the other avatars: entities with a position.
func (v *view) players(me string) []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []string
	for id, e := range v.entities {
		if _, ok := e["x"]; ok && id != me {
			out = append(out, id)
		}
	}
	sort.Strings(out) // map order is random; the rng picks
	return out
}

// freeItems returns the items nobody holds, as far as the view knows.
func (v *view) freeItems(n int) []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []string
	for i := range n {
		id := "item" + strconv.Itoa(i)
		if _, held := v.entities[id]["owner"]; !held {
			out = append(out, id)
		}
	}
	return out
}

// loadSecret reads an HS256 secret file as gsd does: surrounding
// whitespace trimmed, at least 32 bytes.
func loadSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("token secret: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) < 32 {
		return nil, fmt.Errorf("token secret %s: %d bytes, need at least 32", path, len(b))
	}
	return b, nil
}

// mintHS256 signs a development JWT for player with role (claim
// gsd_role; "" for a player), as `gsdctl token` does. A
// real game gets its tokens from its own identity service; gsd only
// verifies them. Written with the standard library to keep the example
// free of dependencies: base64url(header) "." base64url(claims) "."
// base64url(HMAC-SHA256 of the two).
func mintHS256(key []byte, player, role, audience, issuer string, now time.Time, ttl time.Duration) (string, error) {
	claims := map[string]any{
		"sub": player,
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(ttl).Unix(),
	}
	if role != "" {
		claims["gsd_role"] = role
	}
	if audience != "" {
		claims["aud"] = audience
	}
	if issuer != "" {
		claims["iss"] = issuer
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	msg := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(payload)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msg))
	return msg + "." + enc.EncodeToString(mac.Sum(nil)), nil
}
