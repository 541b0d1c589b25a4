package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/api"
	"github.com/stretchr/testify/require"
)

// authNode is a real node with HS256 auth on (no leeway, audience "game").
func authNode(t *testing.T) (*playNode, []byte) {
	t.Helper()
	key := []byte(fmt.Sprintf("%032d", 11))
	n := startPlayNode(t, func(c *api.Config) {
		c.Auth = &api.AuthConfig{HS256Key: key, Audience: "game"}
	})
	return n, key
}

// mint signs a token for sub valid until exp (safe off the test goroutine).
func mint(key []byte, sub string, exp time.Time) (string, error) {
	return jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject: sub, Audience: jwt.ClaimStrings{"game"}, ExpiresAt: jwt.NewNumericDate(exp),
	}).SignedString(key)
}

// shortThen is a TokenSource whose first token expires within 1-2 s (exp
// has whole seconds) and whose later ones come from later (n = 2, 3, ...).
func shortThen(key []byte, calls *atomic.Int64, later func(n int64) (string, error)) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		n := calls.Add(1)
		if n == 1 {
			return mint(key, "ann", time.Now().Add(2*time.Second))
		}
		return later(n)
	}
}

func TestPlayTokenSourceResumesWithAFreshTokenAfterExpiryLosingNoEvent(t *testing.T) {
	n, key := authNode(t)
	c := New([]string{n.url}, WithBackoff(5*time.Millisecond, 50*time.Millisecond))
	defer c.Close()
	ctx := playCtx(t)
	createArena(ctx, t, n.url, key)
	var calls atomic.Int64
	p, err := c.Play(ctx, "arena", PlayOptions{AckInterval: 5 * time.Millisecond,
		TokenSource: shortThen(key, &calls, func(int64) (string, error) { return mint(key, "ann", time.Now().Add(time.Hour)) })})
	require.NoError(t, err)
	defer p.Close()

	// bob writes over HTTP, before, during and after ann's token expires.
	bobTok, err := mint(key, "bob", time.Now().Add(time.Hour))
	require.NoError(t, err)
	bob := New([]string{n.url}, WithHeader("Authorization", "Bearer "+bobTok))
	defer bob.Close()
	var stop atomic.Bool
	var written atomic.Uint64
	writer := make(chan error, 1)
	go func() {
		for i := uint64(1); !stop.Load(); i++ {
			if _, err := bob.Act(ctx, "arena", incrAction("", i)); err != nil {
				writer <- err
				return
			}
			written.Store(i)
			time.Sleep(5 * time.Millisecond) // pacing only
		}
		writer <- nil
	}()
	resumedAt := uint64(0)
	want := uint64(1)
	for ; resumedAt == 0 || want <= resumedAt+20; want++ {
		ev, err := p.Next(ctx)
		require.NoError(t, err, "the expiry must not end the Play")
		require.Equal(t, want, ev.Seq, "no gap, no duplicate")
		if _, resumes := p.Session(); resumes > 0 && resumedAt == 0 {
			resumedAt = want
		}
	}
	stop.Store(true)
	require.NoError(t, <-writer)
	for ; want <= written.Load(); want++ {
		ev, err := p.Next(ctx)
		require.NoError(t, err)
		require.Equal(t, want, ev.Seq, "no gap, no duplicate")
	}
	require.EqualValues(t, 2, calls.Load(), "one token per connect: the first and the one after the 4401")
	_, resumes := p.Session()
	require.Equal(t, 1, resumes)
	// The resumed session acts as ann, with the fresh token.
	ev, err := p.Act(ctx, incrAction("", 1))
	require.NoError(t, err)
	require.Equal(t, "ann", ev.Player)
}

func TestPlayWithoutTokenSourceEndsWhenTheTokenExpires(t *testing.T) {
	n, key := authNode(t)
	c := New([]string{n.url}, WithBackoff(5*time.Millisecond, 50*time.Millisecond))
	defer c.Close()
	ctx := playCtx(t)
	createArena(ctx, t, n.url, key)
	tok, err := mint(key, "ann", time.Now().Add(2*time.Second))
	require.NoError(t, err)
	p, err := c.Play(ctx, "arena", PlayOptions{Token: tok})
	require.NoError(t, err)
	defer p.Close()
	_, err = p.Next(ctx)
	var ce *CloseError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, 4401, ce.Code)
}

func TestPlayTokenSourceErrorEndsThePlay(t *testing.T) {
	n, key := authNode(t)
	c := New([]string{n.url}, WithBackoff(5*time.Millisecond, 50*time.Millisecond))
	defer c.Close()
	ctx := playCtx(t)
	createArena(ctx, t, n.url, key)
	boom := errors.New("identity service down")

	// At the first connect: Play itself fails with it.
	_, err := c.Play(ctx, "arena", PlayOptions{TokenSource: func(context.Context) (string, error) { return "", boom }})
	require.ErrorIs(t, err, boom)
	// An empty token is an error too, not an anonymous connect.
	_, err = c.Play(ctx, "arena", PlayOptions{TokenSource: func(context.Context) (string, error) { return "", nil }})
	require.ErrorIs(t, err, errEmptyToken)

	// At the refresh after an expiry: Next returns it, after the events
	// received before.
	var calls atomic.Int64
	p, err := c.Play(ctx, "arena", PlayOptions{TokenSource: shortThen(key, &calls, func(int64) (string, error) { return "", boom })})
	require.NoError(t, err)
	defer p.Close()
	ev, err := p.Act(ctx, incrAction("", 1))
	require.NoError(t, err)
	require.Equal(t, "ann", ev.Player)
	got, err := p.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, ev.Seq, got.Seq)
	_, err = p.Next(ctx)
	require.ErrorIs(t, err, boom)
	require.EqualValues(t, 2, calls.Load())
	_, err = p.Act(ctx, incrAction("", 2))
	require.ErrorIs(t, err, boom, "an ended Play refuses actions with its error")
}

func TestPlayTokenSourceRefusedTwiceInARowIsTerminal(t *testing.T) {
	n, key := authNode(t)
	c := New([]string{n.url}, WithBackoff(5*time.Millisecond, 50*time.Millisecond))
	defer c.Close()
	ctx := playCtx(t)
	createArena(ctx, t, n.url, key)
	expired := func(int64) (string, error) { return mint(key, "ann", time.Now().Add(-time.Hour)) }

	// At the first connect: the first refusal is retried once, with a
	// fresh token; the second ends it.
	var first atomic.Int64
	_, err := c.Play(ctx, "arena", PlayOptions{TokenSource: func(context.Context) (string, error) {
		first.Add(1)
		return expired(0)
	}})
	require.Equal(t, http.StatusUnauthorized, StatusCode(err), "%v", err)
	require.EqualValues(t, 2, first.Load(), "no loop")

	// After an expiry mid-connection: the 4401 is retried with a fresh
	// token, which the server refuses: the end, not a loop.
	var calls atomic.Int64
	p, err := c.Play(ctx, "arena", PlayOptions{TokenSource: shortThen(key, &calls, expired)})
	require.NoError(t, err)
	defer p.Close()
	_, err = p.Next(ctx)
	require.Equal(t, http.StatusUnauthorized, StatusCode(err), "%v", err)
	require.EqualValues(t, 2, calls.Load(), "no loop")
}

func TestPlayTokenRefusalsCountAnewAfterAWelcome(t *testing.T) {
	// Each token works for a while and then expires: every expiry is a
	// first refusal, retried, however many there are.
	n, key := authNode(t)
	c := New([]string{n.url}, WithBackoff(5*time.Millisecond, 50*time.Millisecond))
	defer c.Close()
	ctx := playCtx(t)
	createArena(ctx, t, n.url, key)
	var calls atomic.Int64
	p, err := c.Play(ctx, "arena", PlayOptions{TokenSource: func(context.Context) (string, error) {
		calls.Add(1)
		return mint(key, "ann", time.Now().Add(2*time.Second))
	}})
	require.NoError(t, err)
	defer p.Close()
	require.Eventually(t, func() bool {
		_, resumes := p.Session()
		return resumes >= 2
	}, 20*time.Second, 10*time.Millisecond)
	ev, err := p.Act(ctx, incrAction("", 1))
	require.NoError(t, err)
	require.Equal(t, "ann", ev.Player)
	require.GreaterOrEqual(t, calls.Load(), int64(3))
}

func TestAuthRefused(t *testing.T) {
	require.True(t, authRefused(&CloseError{Code: 4401}))
	require.True(t, authRefused(fmt.Errorf("wrapped: %w", &Error{Status: 401})))
	require.False(t, authRefused(&CloseError{Code: 4401, Reason: CodeTicketInvalid + ": expired"}), "a transfer ticket, not the token")
	require.False(t, authRefused(&CloseError{Code: 4403}))
	require.False(t, authRefused(&Error{Status: 403}))
	require.False(t, authRefused(errors.New("network")))
	require.False(t, authRefused(nil))
}
