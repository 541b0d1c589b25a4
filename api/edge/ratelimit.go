package edge

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/wire"
	"golang.org/x/time/rate"
)

// The per-player rate limit at the edge: a token bucket per player
// (golang.org/x/time/rate), taken before anything is proposed, so a
// flooding client costs the log nothing. It is each node's own and not
// replicated; the rules' per-action rate checks (anticheat) are the
// replicated ones. A node takes it where the player's action arrives:
// HTTP actions and batches (one token per action), play actions and UDP
// input; a forwarded action was limited by the node that forwarded it.

// ErrRateLimited: the player's actions come faster than the edge's limit.
var ErrRateLimited = errors.New("gsd/api: rate limited")

// CodeRateLimited is ErrRateLimited's code (HTTP 429).
const CodeRateLimited = wire.CodeRateLimited

// RateLimitError is ErrRateLimited with the wait until the next action
// would be let through.
type RateLimitError struct {
	Player string
	Wait   time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("%v: player %s: retry in %s", ErrRateLimited, e.Player, e.Wait.Round(time.Millisecond))
}

// Is makes errors.Is(err, ErrRateLimited) hold.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// retryAfter is the Retry-After header of a 429: the wait a rate limit
// names, in whole seconds rounded up, else 1.
func retryAfter(err error) string {
	if rl, ok := errors.AsType[*RateLimitError](err); ok && rl.Wait > time.Second {
		return strconv.FormatInt(int64(math.Ceil(rl.Wait.Seconds())), 10)
	}
	return "1"
}

// sweepFloor is the number of players held before the first sweep of the
// limiter's idle buckets.
const sweepFloor = 1024

// playerLimiter holds a bucket per player. Buckets that have refilled are
// dropped in sweeps (a full bucket is the same as a new one), each sweep
// once the map has doubled since the last, so memory follows the players
// that act, at an amortised constant cost per new player.
type playerLimiter struct {
	limit rate.Limit
	burst int
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	sweepAt int
}

func newPlayerLimiter(perSecond float64, burst int, now func() time.Time) *playerLimiter {
	return &playerLimiter{limit: rate.Limit(perSecond), burst: burst, now: now,
		buckets: make(map[string]*rate.Limiter), sweepAt: sweepFloor}
}

// allow takes one token of player's bucket, or returns the wait until one
// would be there.
func (l *playerLimiter) allow(player string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[player]
	if b == nil {
		if len(l.buckets) >= l.sweepAt {
			l.sweep(now)
		}
		b = rate.NewLimiter(l.limit, l.burst)
		l.buckets[player] = b
	}
	r := b.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// sweep drops the full buckets and sets the next sweep's size.
func (l *playerLimiter) sweep(now time.Time) {
	for p, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, p)
		}
	}
	l.sweepAt = max(sweepFloor, 2*len(l.buckets))
}

// players is how many buckets are held.
func (l *playerLimiter) players() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// Admit takes one action of player from its bucket: nil, or a
// *RateLimitError (counted in gsd_edge_rate_limited_total by lane: http,
// play, udp) when the player is over the limit. With no limit set it
// admits everything. A forwarded request passes: the node that forwarded
// it admitted it.
func (s *Core) Admit(r *http.Request, player, lane string) error {
	if s.limiter == nil || (r != nil && IsForwarded(r)) {
		return nil
	}
	if ok, wait := s.limiter.allow(player); !ok {
		s.metrics.RateLimited.WithLabelValues(lane).Inc()
		return &RateLimitError{Player: player, Wait: wait}
	}
	return nil
}
