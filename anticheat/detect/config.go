package detect

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrConfig is returned for a Config a Detector cannot run with.
var ErrConfig = errors.New("gsd/anticheat/detect: bad config")

// Fields names the fields a game keeps what the detectors read in. An
// empty name turns off the detectors that need it.
type Fields struct {
	X, Y   string // position of a player's entity (move)
	Shot   string // set or incremented on the shooter's entity per shot
	Hit    string // incremented (hit points down) on the entity hit
	Appear string // set on an entity when it appears (spawns, is seen)
	Items  string // a set field: a transfer removes from one, adds to another
	Wins   string // incremented on the winner of a match
	Losses string // incremented on the loser of that match
	// Currency is a counter on the player's entity that the player's own
	// actions increment when they earn (loot, rewards, sales).
	Currency string
}

// Limits are the world's hard movement limits (the anticheat.Speed check's
// parameters): the detectors look for play that stays just within them.
type Limits struct {
	PerSecond int64 // grid units per second
	Slack     int64 // grid units always allowed
	MaxStep   int64 // longest single move
}

// Speed flags sustained movement near the limit.
type Speed struct {
	NearMax  float64 // a move is near the limit at this share of it or more
	MinMoves int     // moves observed before a player is judged
	Share    float64 // flag at this share of near-limit moves or more
}

// Jump flags teleport-like moves just under MaxStep more often than an
// honest player makes them: the jumps' binomial z-score against Rate over
// the player's moves, so that the sample size is in the test. A jump is a
// move of Near × MaxStep or more after a pause long enough for one.
type Jump struct {
	Near     float64 // a move of this share of MaxStep or more is a jump
	MinMoves int
	Rate     float64 // an honest player's chance of a jump per move, in (0, 1)
	Z        float64 // flag at this z-score or more
}

// Straight flags paths straighter than a hand steers: per Window moves,
// the straight-line distance over the path's length is the window's
// straightness; a window at Min or more is straight.
type Straight struct {
	Window     int
	MinWindows int
	Min        float64
	Share      float64 // flag at this share of straight windows or more
}

// Reaction flags reactions to a target's appearance faster than a quick
// human's, over many of them: the z-score of the player's mean log
// reaction time below ln(Median), √n × (ln Median − mean ln r) / Sigma
// over the player's n reactions, the likelihood-ratio test of a
// log-normal's location (a human's reactions are log-normal) with the
// sample size in it. A reaction is timed from the appearance to the
// player's first shot since, on the first hit on the target.
type Reaction struct {
	// Median is a quick honest player's median reaction, and Sigma the
	// spread of one player's reactions around their median (of the log),
	// both chosen by design, not read off a corpus's scores.
	Median time.Duration
	Sigma  float64
	// Window is the longest reaction counted; an appearance older than it
	// is forgotten at the next evaluation, which bounds the memory the
	// appearances take. A positive one is at least Median × exp(4 ×
	// Sigma) (windowSigmas), so that it cuts off almost none of a quick
	// human's reactions: the test is of their mean log.
	Window time.Duration
	// HalfLifeReactions is how fast a player's reaction evidence fades,
	// in their own play: each reaction weighs 2^(−k / HalfLifeReactions),
	// k the player's reactions after it (in their sessions ordered by
	// start), so the evidence adds up over a player's sessions and worlds,
	// a player who stopped cheating is not flagged for ever, and an
	// honest player's evidence weighs at most about HalfLifeReactions /
	// ln 2 reactions however much they play. 0 keeps every reaction at
	// full weight.
	HalfLifeReactions int
	// Busy: a reaction to a target is not timed when the player shot
	// within Busy before it appeared, or hit another target since: their
	// shots after it appeared may be at what they were already fighting
	// (a miss names no target), which would read as a reaction of a few
	// milliseconds. 0 times every reaction but the second kind.
	Busy       time.Duration
	MinSamples int     // reactions (counted with their weights, rounded)
	Z          float64 // flag at this z-score or more
}

// Accuracy flags aim far better than the population's: the sum of two
// standardised scores, the hits' binomial z-score against the
// population's hit ratio at Quantile (over the players with MinShots
// shots) and, over at least Reaction.MinSamples reactions, reaction's
// z-score, both over the player's shots and reactions weighed by their
// age in shots (HalfLifeShots). Each near its own threshold is weak evidence; both
// together are not.
type Accuracy struct {
	MinShots   int     // shots before a player counts (counted with their weights, rounded)
	MinPlayers int     // players counted before anyone is judged
	Quantile   float64 // the population's hit ratio tested against, in (0, 1)
	// HalfLifeShots is how fast a player's aim evidence fades, in their
	// own play: each shot and each reaction weighs 2^(−k /
	// HalfLifeShots), k the player's shots after it (in their sessions
	// ordered by start), so an honest player's evidence does not grow
	// without bound with their play: a player who hits a little above
	// the population's ratio (a pro who improved) stays a little above
	// it, where unfaded hits would push their score past any threshold
	// over enough shots. 0 keeps every shot at full weight.
	HalfLifeShots int
	Z             float64 // flag at this sum of the two scores or more
}

// Switch flags a player whose aim changed between their sessions (each
// world a player plays in is a session) more than an honest player's
// improvement allows: an aimbot switched on partway. The score is a
// change point's: over every split of the player's sessions, in the
// order they started, into earlier and later ones, the later ones' drop
// in mean log reaction time and rise in hit ratio against the earlier
// ones', each less its drift per session between the two sides' middles
// and standardised, added; the largest over the splits. A player is
// judged against their own history, not a population's reference, so a
// fast honest player is no outlier.
type Switch struct {
	// Drift and AccDrift are the fastest improvement per session an
	// honest player shows: of the log reaction time (0.03: 3% faster a
	// session) and of the hit ratio; chosen by design.
	Drift, AccDrift float64
	MinReactions    int     // reactions on each side of a split
	MinShots        int     // shots on each side of a split
	Sessions        int     // sessions kept per player, the latest by start (at least 2)
	Z               float64 // flag at this score or more
}

// Lockstep flags pairs of accounts that move by the same delta (rounded to
// Quantum) in the same Tick of leader time, again and again.
type Lockstep struct {
	Tick        time.Duration
	Quantum     int64
	MaxGroup    int     // groups larger than this are crowds, not rings
	MinTogether int     // moves together before a pair is judged
	Share       float64 // flag when together for this share of the pair's moves
}

// Economy flags income that no play explains: the share of a player's
// increments of their currency that follow none of their own shots within
// Window (loot without a fight: a duplication bug, a farming script).
type Economy struct {
	Window     time.Duration
	MinSamples int     // increments observed before a player is judged
	Share      float64 // flag at this share of unearned increments or more
}

// WinTrade flags a pair of players that meet often and whose results
// alternate (trading wins) or go one way (feeding). The score is a
// log-likelihood ratio (natural log) of two kinds of evidence added: the
// pair's results, under the more likely of two cheating models (the
// winner alternating with chance Q, or one side winning with chance Q)
// against fair coin flips; and each of the two accounts' opponents, a
// cheating pair playing each other in Share of their matches against
// friends who do in HonestShare. The results must favour cheating on
// their own (a positive ratio): two friends who play only each other are
// not traders.
type WinTrade struct {
	MinMatches  int
	MinShare    float64 // the pair's meetings over the fewer matches of the two
	Q           float64 // the cheating models' chance, in (0.5, 1)
	Share       float64 // a cheating pair's share of each account's matches, in (0, 1)
	HonestShare float64 // friends' share of each other's matches, in (0, Share)
	LLR         float64 // flag at this log-likelihood ratio or more
}

// Funnel flags an account fed by others: its feeders are the accounts that
// gave it at least MinEach transfers; it is a funnel when they gave it at
// least MinTransfers more than they got back together, got at most
// MaxReverse of what they gave back in total, and the directions of those
// transfers are evidence of feeding: their log-likelihood ratio (natural
// log) under a funnel, where each transfer between it and a feeder goes
// back with chance Back, against friends, where either way is a coin
// flip, is at least LLR. Under friends that ratio is a martingale, so the
// chance that it ever reaches LLR, however often it is evaluated as a
// pair's transfers grow, is at most e^−LLR (Ville's inequality); the
// counts alone have no such bound. Each feeder is flagged with it, by pair.
type Funnel struct {
	MinTransfers int
	MinEach      int     // transfers that make an account a feeder
	MaxReverse   float64 // transfers back, as a share of those forward
	Back         float64 // a funnel's chance of a transfer back, in (0, 0.5)
	LLR          float64 // flag at this log-likelihood ratio or more
}

// Config configures a Detector. Thresholds were fixed on development
// corpora (last on W and S, each above the largest honest score, so that
// all the detectors together flag few honest players) and measured on a
// held-out corpus (docs/ANTICHEAT.md).
type Config struct {
	Fields   Fields
	Limits   Limits
	Speed    Speed
	Jump     Jump
	Straight Straight
	Reaction Reaction
	Accuracy Accuracy
	Switch   Switch
	Economy  Economy
	Lockstep Lockstep
	WinTrade WinTrade
	Funnel   Funnel
	// Every is how many events Follow observes between two evaluations.
	Every int
	// Scan is how often a Runner looks for new and deleted worlds.
	Scan time.Duration
	// Checkpoint is how often a Runner with Checkpoints saves one (it
	// also saves one when it stops).
	Checkpoint time.Duration
}

// DefaultConfig returns the thresholds of docs/ANTICHEAT.md for the
// corpus's arena (anticheat/corpus): fields x, y, shot_at, hp, spawned,
// items, wins, losses; 500 units/s, 10 of slack, 300 per move at most.
func DefaultConfig() Config {
	return Config{
		Fields:     Fields{X: "x", Y: "y", Shot: "shot_at", Hit: "hp", Appear: "spawned", Items: "items", Wins: "wins", Losses: "losses", Currency: "gold"},
		Limits:     Limits{PerSecond: 500, Slack: 10, MaxStep: 300},
		Speed:      Speed{NearMax: 0.9, MinMoves: 100, Share: 0.5},
		Jump:       Jump{Near: 0.9, MinMoves: 100, Rate: 0.05, Z: 3},
		Straight:   Straight{Window: 8, MinWindows: 12, Min: 0.99, Share: 0.4},
		Reaction:   Reaction{Median: 200 * time.Millisecond, Sigma: 0.25, Window: 5 * time.Second, HalfLifeReactions: 64, Busy: 500 * time.Millisecond, MinSamples: 12, Z: 10},
		Accuracy:   Accuracy{MinShots: 80, MinPlayers: 30, Quantile: 0.9, HalfLifeShots: 200, Z: 9.5},
		Switch:     Switch{Drift: 0.03, AccDrift: 0.015, MinReactions: 12, MinShots: 80, Sessions: 16, Z: 6},
		Economy:    Economy{Window: time.Second, MinSamples: 10, Share: 0.05},
		Lockstep:   Lockstep{Tick: 20 * time.Millisecond, Quantum: 20, MaxGroup: 8, MinTogether: 10, Share: 0.3},
		WinTrade:   WinTrade{MinMatches: 10, MinShare: 0.4, Q: 0.8, Share: 0.9, HonestShare: 0.5, LLR: 0},
		Funnel:     Funnel{MinTransfers: 8, MinEach: 2, MaxReverse: 0.1, Back: 0.1, LLR: 8.5},
		Every:      10000,
		Scan:       time.Second,
		Checkpoint: time.Minute,
	}
}

// windowSigmas is how many Sigmas above ln(Median) Reaction.Window lies
// at least: a quick human's reaction is longer with chance 3e-5.
const windowSigmas = 4

// Validate reports a Config a Detector cannot run with.
func (c Config) Validate() error {
	bad := func(what string) error { return fmt.Errorf("%w: %s", ErrConfig, what) }
	switch {
	case c.Limits.PerSecond < 0 || c.Limits.Slack < 0 || c.Limits.MaxStep < 0:
		return bad("negative limits")
	case c.Straight.Window < 2:
		return bad("straight.window below 2")
	case c.Reaction.Median <= 0 || !(c.Reaction.Sigma > 0):
		return bad("reaction median and sigma must be positive")
	case c.Reaction.Window < 0 || c.Reaction.HalfLifeReactions < 0 || c.Reaction.Busy < 0:
		return bad("reaction window, half-life or busy is negative")
	case c.Reaction.Window > 0 && float64(c.Reaction.Window) < float64(c.Reaction.Median)*math.Exp(windowSigmas*c.Reaction.Sigma):
		// A window drops the slower reactions: near the median it keeps a
		// human's quicker ones only, whose mean log is below ln(Median).
		return bad("reaction window below median × exp(4 × sigma): it would cut off a quick human's slower reactions")
	case c.Accuracy.MinShots < 1 || c.Accuracy.HalfLifeShots < 0:
		return bad("accuracy.min_shots below 1 or a negative accuracy.half_life_shots")
	case c.Switch.Sessions < 2 || c.Switch.Drift < 0 || c.Switch.AccDrift < 0:
		return bad("switch.sessions below 2 or a negative drift")
	case c.Economy.Window < 0:
		return bad("economy.window is negative")
	case c.Lockstep.Tick <= 0 || c.Lockstep.Quantum <= 0:
		return bad("lockstep tick and quantum must be positive")
	case c.Lockstep.MaxGroup < 2:
		return bad("lockstep.max_group below 2")
	case c.Every <= 0 || c.Scan <= 0 || c.Checkpoint <= 0:
		return bad("every, scan and checkpoint must be positive")
	case !(c.Jump.Rate > 0 && c.Jump.Rate < 1) || !(c.Accuracy.Quantile > 0 && c.Accuracy.Quantile < 1):
		return bad("jump.rate and accuracy.quantile must be in (0, 1)")
	case !(c.WinTrade.Q > 0.5 && c.WinTrade.Q < 1):
		return bad("wintrade.q must be in (0.5, 1)")
	case !(c.Funnel.Back > 0 && c.Funnel.Back < 0.5):
		return bad("funnel.back must be in (0, 0.5)")
	case !(c.WinTrade.HonestShare > 0 && c.WinTrade.HonestShare < c.WinTrade.Share && c.WinTrade.Share < 1):
		return bad("wintrade shares must be 0 < honest_share < share < 1")
	}
	for _, s := range []float64{c.Speed.NearMax, c.Speed.Share, c.Jump.Near, c.Straight.Min, c.Straight.Share, c.Economy.Share, c.Lockstep.Share, c.WinTrade.MinShare, c.Funnel.MaxReverse} {
		if s < 0 || s > 1 {
			return bad("a share outside [0, 1]")
		}
	}
	return nil
}
