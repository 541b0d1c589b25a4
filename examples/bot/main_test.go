package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/api"
	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/internal/syncbuf"
	"github.com/gsd-dev/gsd/internal/testnode"
	"github.com/stretchr/testify/require"
)

// syncBuffer is a buffer safe for a writer and a reader goroutine.
type syncBuffer = syncbuf.Buffer

func testConfig(addr, player string) config {
	return config{addrs: []string{addr}, world: "arena", player: player, tokenTTL: time.Hour,
		rate: 200, items: 3, report: 100 * time.Millisecond}
}

// counters parses the key=value counters of the bot's "final" line.
func counters(t *testing.T, out, player string) map[string]int64 {
	t.Helper()
	var line string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "bot "+player+" [final]") {
			line = l
		}
	}
	require.NotEmpty(t, line, "no final summary in:\n%s", out)
	m := make(map[string]int64)
	for _, kv := range regexp.MustCompile(`(\w+)=(-?\d+)\b`).FindAllStringSubmatch(line, -1) {
		n, err := strconv.ParseInt(kv[2], 10, 64)
		require.NoError(t, err)
		m[kv[1]] = n
	}
	return m
}

// runBots runs bots for about a second and on until stopWhen, then
// cancels their context as SIGINT does, and returns their errors.
func runBots(t *testing.T, cfgs []config, outs []io.Writer, stopWhen func() bool) []error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errs := make([]error, len(cfgs))
	var wg sync.WaitGroup
	for i := range cfgs {
		wg.Go(func() { errs[i] = run(ctx, cfgs[i], outs[i]) })
	}
	// The bots run for about a second, and on until they did what the test
	// looks for (a loaded machine may need longer).
	deadline := time.Now().Add(60 * time.Second)
	time.Sleep(time.Second)
	for !stopWhen() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel() // as SIGINT does
	wg.Wait()
	return errs
}

func TestBotsPlayAgainstEachOtherAndSayBye(t *testing.T) {
	addr := testnode.Start(t)
	var ann, bob syncBuffer
	// The summary lines say what each bot did; stop once both attacked,
	// raced for items and saw deltas and critical events.
	busy := func(b *syncBuffer) bool {
		s := b.String()
		return regexp.MustCompile(`critical=[1-9]\d* bulk=\d+ deltas=[1-9]\d*.*conflicts=[1-9].*hits=[1-9].*rtt=\d`).MatchString(s)
	}
	// One item: when one holds it, the other still tries (a conflict).
	annCfg, bobCfg := testConfig(addr, "ann"), testConfig(addr, "bob")
	annCfg.items, bobCfg.items = 1, 1
	errs := runBots(t, []config{annCfg, bobCfg}, []io.Writer{&ann, &bob},
		func() bool { return busy(&ann) && busy(&bob) })
	for i, out := range []*syncBuffer{&ann, &bob} {
		require.NoError(t, errs[i], out.String())
	}
	for _, b := range []struct {
		name string
		out  *syncBuffer
	}{{"ann", &ann}, {"bob", &bob}} {
		out := b.out.String()
		require.Contains(t, out, "bot "+b.name+": playing in arena, session ")
		m := counters(t, out, b.name)
		require.Positive(t, m["actions"], out)
		require.Positive(t, m["applied"], out)
		require.Positive(t, m["conflicts"], "the two bots race for one item:\n%s", out)
		require.Positive(t, m["events"], out)
		require.Positive(t, m["critical"], out)
		require.Positive(t, m["deltas"], "moves are bulk, coalesced into deltas:\n%s", out)
		require.Positive(t, m["hits"], "the other bot attacked:\n%s", out)
		require.Equal(t, m["actions"], m["applied"]+m["conflicts"]+m["rejected"]+m["failed"], out)
		require.Zero(t, m["rejected"], out)
	}

	// The world holds what the bots did, and both said bye: no session
	// is left.
	c := client.New([]string{addr})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := c.Entity(ctx, "arena", "ann", client.Linearizable)
	require.NoError(t, err)
	require.Contains(t, e.Fields, "x")
	require.Contains(t, e.Fields, "y")
	_, ok := e.Int("hp")
	require.True(t, ok, "spawned with hp: %v", e.Fields)
	require.Eventually(t, func() bool {
		s, err := c.Sessions(ctx, "arena")
		return err == nil && len(s) == 0
	}, 10*time.Second, 20*time.Millisecond)

	// A rejoin keeps the hp (the spawn's expectation conflicts) and the
	// position moves on.
	var again syncBuffer
	errs = runBots(t, []config{testConfig(addr, "ann")}, []io.Writer{&again}, func() bool { return true })
	require.NoError(t, errs[0])
	m := counters(t, again.String(), "ann")
	require.Positive(t, m["conflicts"], again.String())
}

func TestBotWithMintedTokensOnAnAuthServer(t *testing.T) {
	secret := []byte(fmt.Sprintf("%040d", 3))
	addr := testnode.StartWith(t, func(c *api.Config) {
		c.Auth = &api.AuthConfig{HS256Key: secret, Audience: "game", Issuer: "studio"}
	})
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "hs256.key")
	require.NoError(t, os.WriteFile(keyFile, append(secret, '\n'), 0o600))

	cfg := testConfig(addr, "ann")
	cfg.tokenSecret, cfg.audience, cfg.issuer = keyFile, "game", "studio"
	var out syncBuffer
	errs := runBots(t, []config{cfg}, []io.Writer{&out}, func() bool {
		return regexp.MustCompile(`applied=[1-9]`).MatchString(out.String())
	})
	require.NoError(t, errs[0], out.String())
	m := counters(t, out.String(), "ann")
	require.Positive(t, m["applied"], out.String())
	require.Positive(t, m["events"], out.String())

	// A secret the server does not know: the session is refused, run says so.
	other := filepath.Join(dir, "other.key")
	require.NoError(t, os.WriteFile(other, []byte(strings.Repeat("x", 32)), 0o600))
	cfg.tokenSecret = other
	err := run(context.Background(), cfg, io.Discard)
	require.Error(t, err)
	require.Equal(t, 401, client.StatusCode(err), "%v", err)

	// A ready token from elsewhere (here the jwt library) works too.
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject: "bob", Audience: jwt.ClaimStrings{"game"}, Issuer: "studio",
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour)),
	}).SignedString(secret)
	require.NoError(t, err)
	cfg = testConfig(addr, "bob")
	cfg.token = tok
	var bob syncBuffer
	errs = runBots(t, []config{cfg}, []io.Writer{&bob}, func() bool {
		return regexp.MustCompile(`applied=[1-9]`).MatchString(bob.String())
	})
	require.NoError(t, errs[0], bob.String())
	require.Positive(t, counters(t, bob.String(), "bob")["applied"], bob.String())
}

func TestMintedTokenVerifiesWithTheJWTLibrary(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	now := time.Now()
	tok, err := mintHS256(key, "ann", "", "game", "studio", now, time.Minute)
	require.NoError(t, err)
	var claims jwt.RegisteredClaims
	_, err = jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithAudience("game"),
		jwt.WithIssuer("studio"), jwt.WithExpirationRequired()).
		ParseWithClaims(tok, &claims, func(*jwt.Token) (any, error) { return key, nil })
	require.NoError(t, err)
	require.Equal(t, "ann", claims.Subject)
	require.Equal(t, now.Add(time.Minute).Unix(), claims.ExpiresAt.Unix())

	// Without audience and issuer the claims are absent, not empty.
	tok, err = mintHS256(key, "ann", "", "", "", now, time.Minute)
	require.NoError(t, err)
	claims = jwt.RegisteredClaims{}
	_, err = jwt.NewParser().ParseWithClaims(tok, &claims, func(*jwt.Token) (any, error) { return key, nil })
	require.NoError(t, err)
	require.Empty(t, claims.Audience)
	require.Empty(t, claims.Issuer)
}

func TestLoadSecret(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	require.NoError(t, os.WriteFile(good, []byte("  "+strings.Repeat("s", 32)+"\n"), 0o600))
	k, err := loadSecret(good)
	require.NoError(t, err)
	require.Equal(t, strings.Repeat("s", 32), string(k))
	short := filepath.Join(dir, "short")
	require.NoError(t, os.WriteFile(short, []byte("abc"), 0o600))
	_, err = loadSecret(short)
	require.ErrorContains(t, err, "need at least 32")
	_, err = loadSecret(filepath.Join(dir, "absent"))
	require.Error(t, err)

	// run refuses a bad secret before connecting anywhere.
	cfg := testConfig("127.0.0.1:1", "ann")
	cfg.tokenSecret = short
	require.ErrorContains(t, run(context.Background(), cfg, io.Discard), "need at least 32")
}

func TestParseFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"--addr", "a:1, b:2 ,", "--player", "ann", "--world", "w", "--rate", "5",
		"--items", "2", "--report", "1s", "--token-secret", "k", "--token-ttl", "1m", "--audience", "g", "--issuer", "i"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, config{addrs: []string{"a:1", "b:2"}, world: "w", player: "ann", tokenSecret: "k", tokenTTL: time.Minute,
		audience: "g", issuer: "i", rate: 5, items: 2, report: time.Second}, cfg)

	cfg, err = parseFlags([]string{"--player", "ann"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, []string{"127.0.0.1:7070"}, cfg.addrs)
	require.Equal(t, "arena", cfg.world)

	for want, args := range map[string][]string{
		"--player is required":      {},
		"--addr is required":        {"--player", "a", "--addr", " , "},
		"--world is required":       {"--player", "a", "--world", ""},
		"exclude each other":        {"--player", "a", "--token", "t", "--token-secret", "k"},
		"--token-ttl must be":       {"--player", "a", "--token-ttl", "0s"},
		"--rate must be positive":   {"--player", "a", "--rate", "0"},
		"--items must be":           {"--player", "a", "--items", "0"},
		"--report must be positive": {"--player", "a", "--report", "-1s"},
		"unexpected arguments":      {"--player", "a", "extra"},
		"flag provided but not":     {"--nope"},
	} {
		_, err := parseFlags(args, io.Discard)
		require.ErrorContains(t, err, want, "%v", args)
	}
}

func TestRunInterruptedDuringSetupExitsCleanly(t *testing.T) {
	// Nothing listens: the client retries creating the world until the
	// context ends, and an interrupted run is a clean exit.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	require.NoError(t, run(ctx, testConfig("127.0.0.1:1", "ann"), io.Discard))
}

func TestRunReturnsWhyTheSessionEnded(t *testing.T) {
	addr := testnode.Start(t)
	// A world the server refuses to create.
	cfg := testConfig(addr, "ann")
	cfg.world = strings.Repeat("w", 1000)
	err := run(context.Background(), cfg, io.Discard)
	require.ErrorContains(t, err, "create world")
	require.Equal(t, 400, client.StatusCode(err), "%v", err)

	// Another connection of the same player replaces the bot's session:
	// the bot stops and says why.
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(context.Background(), testConfig(addr, "ann"), &out) }()
	c := client.New([]string{addr})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "playing in arena") }, 30*time.Second, 10*time.Millisecond)
	p, err := c.Play(ctx, "arena", client.PlayOptions{Player: "ann"})
	require.NoError(t, err)
	defer p.Close()
	select {
	case err = <-done:
	case <-ctx.Done():
		t.Fatal("the bot did not stop")
	}
	var ce *client.CloseError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, 4409, ce.Code)
	require.ErrorContains(t, err, "session ended")
	require.Contains(t, out.String(), "bot ann [final]")
}
