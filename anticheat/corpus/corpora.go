package corpus

import "time"

// The corpora: A fixed the thresholds; B, C, D, E and F were held out in
// turn (docs/ANTICHEAT.md says which detector version each measured); S
// is A in sessions, G held out in sessions; W has aimbots who switch on
// partway, H and J are held out for them; K is held out for accuracy's
// evidence fading over long histories.

// A returns the parameters thresholds are fixed on: seed 1. Each kind of
// cheater is about 1% of the honest players (20 at least): 1% aimbots, 1%
// speed hackers, and about as many accounts in rings, win-trading pairs
// and funnels.
func A(honest int) Params {
	n := max(honest/100, 20)
	return Params{
		Seed: 1, Honest: honest, Concurrent: 200, Session: time.Minute, Friends: 0.1,
		Aimbots: n, SpeedHackers: n, Rings: n / 5, WinTraders: n / 2, Funnels: n / 6,
		AimAccuracy: Span{0.75, 0.95}, AimReaction: Span{40, 120},
		SpeedNear: 0.9, SpeedRest: 0.25,
		RingSize: 5, TradeMeets: 20, TradeAlt: 1,
		Feeders: 5, FeedGifts: Span{12, 20},
		GoldFarmers: n, FarmEvery: Span{0.5, 1}, FarmGold: Span{10, 20},
	}
}

// B returns the held-out parameters: another seed, other cheaters.
func B(honest int) Params {
	p := A(honest)
	p.Seed = 2
	p.AimAccuracy, p.AimReaction = Span{0.7, 0.9}, Span{60, 170}
	p.SpeedNear, p.SpeedRest = 0.75, 0.18
	p.RingSize, p.RingJitter, p.RingLag = 4, 4, 2*time.Millisecond
	p.TradeMeets, p.TradeAlt = 25, 0.9
	p.Feeders, p.FeedGifts, p.FeedBack = 3, Span{12, 18}, 0.04
	p.FarmEvery, p.FarmGold = Span{1.5, 3}, Span{6, 12}
	return p
}

// C returns the second held-out parameters, made after B had been looked
// at: seed 3 and cheaters unlike A's and B's, each between or beside the
// two (docs/ANTICHEAT.md, "Corpus C"). The thresholds stay those fixed on A.
func C(honest int) Params {
	p := A(honest)
	p.Seed = 3
	p.AimAccuracy, p.AimReaction = Span{0.68, 0.88}, Span{70, 190}
	p.SpeedNear, p.SpeedRest = 0.8, 0.12
	p.RingSize, p.RingJitter, p.RingLag = 6, 6, 3*time.Millisecond
	p.TradeMeets, p.TradeAlt = 22, 0.85
	p.Feeders, p.FeedGifts, p.FeedBack = 4, Span{10, 16}, 0.06
	p.FarmEvery, p.FarmGold = Span{1, 2.5}, Span{8, 14}
	return p
}

// D returns the third held-out parameters, made after C had been looked
// at and the detectors changed for it: seed 4 and cheaters unlike A's, B's
// and C's, some harder than C (speed hackers that jump less, smaller and
// noisier rings, win-traders who alternate less, funnels of as few as two
// feeders), some easier (gold farmers like B's). The thresholds stay
// those fixed on A.
func D(honest int) Params {
	p := A(honest)
	p.Seed = 4
	p.AimAccuracy, p.AimReaction = Span{0.66, 0.86}, Span{80, 200}
	p.SpeedNear, p.SpeedRest = 0.7, 0.1
	p.RingSize, p.RingJitter, p.RingLag = 3, 8, 4*time.Millisecond
	p.TradeMeets, p.TradeMeetsMax, p.TradeAlt = 18, 30, 0.82
	p.Feeders, p.FeedersMax, p.FeedGifts, p.FeedBack, p.FeedBackMax = 2, 6, Span{8, 14}, 0, 0.08
	p.FarmEvery, p.FarmGold = Span{1.5, 3}, Span{5, 10}
	return p
}

// E returns the fourth held-out parameters, made after D had been looked
// at and the jump, reaction and wintrade detectors changed for it: seed 5
// and cheaters unlike A's to D's, some harder than D (aimbots reacting in
// up to 220 ms, win-traders from 16 duels, gold farmers with less loot,
// win-traders who duel others every 8 to 16 s, friends who duel each
// other up to 20 times), some easier (aimbots
// hitting more, speed hackers near the limit more often, larger rings).
// The thresholds stay those fixed on A.
func E(honest int) Params {
	p := A(honest)
	p.Seed = 5
	p.AimAccuracy, p.AimReaction = Span{0.7, 0.9}, Span{90, 220}
	p.SpeedNear, p.SpeedRest = 0.85, 0.14
	p.RingSize, p.RingJitter, p.RingLag = 7, 5, 3*time.Millisecond
	p.TradeMeets, p.TradeMeetsMax, p.TradeAlt, p.TradeOthers = 16, 26, 0.85, 8*time.Second
	p.Feeders, p.FeedersMax, p.FeedGifts, p.FeedBack, p.FeedBackMax = 3, 5, Span{9, 15}, 0, 0.05
	p.FarmEvery, p.FarmGold = Span{2, 3.5}, Span{4, 8}
	p.FriendMeets, p.FriendMeetsMax = 8, 20
	return p
}

// F returns the fifth held-out parameters, made after E had been looked
// at and the reaction and accuracy detectors redesigned for it: seed 6 and
// cheaters unlike A's to E's, fixed before F was generated. Its aimbots
// are the hardest yet (hit ratios from 0.64, reactions of 85 to 230 ms);
// the others sit between or beside earlier corpora's (speed hackers near
// the limit on 78% of moves and resting before 16%; rings of 5 with ± 7
// units and up to 5 ms of lag; win-traders alternating 84% over 17 to 28
// duels, dueling others every 12 to 24 s; funnels of 2 to 5 feeders with
// 1 to 6% back; friends who duel each other 6 to 18 times). The
// thresholds stay those fixed on A.
func F(honest int) Params {
	p := A(honest)
	p.Seed = 6
	p.AimAccuracy, p.AimReaction = Span{0.64, 0.86}, Span{85, 230}
	p.SpeedNear, p.SpeedRest = 0.78, 0.16
	p.RingSize, p.RingJitter, p.RingLag = 5, 7, 5*time.Millisecond
	p.TradeMeets, p.TradeMeetsMax, p.TradeAlt, p.TradeOthers = 17, 28, 0.84, 12*time.Second
	p.Feeders, p.FeedersMax, p.FeedGifts, p.FeedBack, p.FeedBackMax = 2, 5, Span{10, 16}, 0.01, 0.06
	p.FarmEvery, p.FarmGold = Span{1.2, 2.8}, Span{5, 9}
	p.FriendMeets, p.FriendMeetsMax = 6, 18
	return p
}

// S returns A in sessions: A's seed and cheaters, every player playing 3
// to 5 sessions (Params.Sessions), one per round, each round in its own
// world. It is a development corpus: the thresholds of the detectors
// whose evidence adds up over a player's sessions are fixed on it
// (docs/ANTICHEAT.md, "Evidence across sessions").
func S(honest int) Params {
	p := A(honest)
	p.Sessions, p.SessionsMax = 3, 5
	return p
}

// G returns the sixth held-out parameters, the first in sessions, made
// after the reaction detector's evidence was made to add up over a
// player's sessions (Reaction.HalfLife) and fixed before G was
// generated: seed 7, every player playing 3 to 5 sessions as in S, and
// cheaters unlike A's to F's: aimbots reacting in 95 to 240 ms (the
// slowest yet) and hitting 0.62 to 0.84 (the lowest yet); speed hackers
// near the limit on 80% of moves and resting before 15%; rings of 4 with
// ± 6 units and up to 4 ms of lag; win-traders alternating 86% over 18 to
// 27 duels a session, dueling others every 10 to 20 s; funnels of 2 to 5
// feeders giving 10 to 15 gifts a session, with 2 to 6% back; gold
// farmers looting 5 to 10 every 1.4 to 3 s; friends who duel each other 7
// to 16 times a session. The thresholds stay those fixed on A and S.
func G(honest int) Params {
	p := A(honest)
	p.Seed = 7
	p.Sessions, p.SessionsMax = 3, 5
	p.AimAccuracy, p.AimReaction = Span{0.62, 0.84}, Span{95, 240}
	p.SpeedNear, p.SpeedRest = 0.8, 0.15
	p.RingSize, p.RingJitter, p.RingLag = 4, 6, 4*time.Millisecond
	p.TradeMeets, p.TradeMeetsMax, p.TradeAlt, p.TradeOthers = 18, 27, 0.86, 10*time.Second
	p.Feeders, p.FeedersMax, p.FeedGifts, p.FeedBack, p.FeedBackMax = 2, 5, Span{10, 15}, 0.02, 0.06
	p.FarmEvery, p.FarmGold = Span{1.4, 3}, Span{5, 10}
	p.FriendMeets, p.FriendMeetsMax = 7, 16
	return p
}

// W returns the development corpus of cheaters who switch on partway
// (Params.SwitchAfter): seed 8, every player in 4 to 7 sessions, every
// aimbot honest (of a skill level drawn uniformly) for its first 1 to 4
// sessions and an aimbot as G's (hit ratio 0.62 to 0.84, reactions of 95
// to 240 ms) in every later one; 30% of the honest players improve by 0
// to 3% a session (Params.Improvers). The other cheaters are S's (A's,
// cheating in every session). The thresholds of the detector that
// compares a player with their own earlier sessions are fixed on it
// (docs/ANTICHEAT.md, "Cheaters who switch on partway").
func W(honest int) Params {
	p := S(honest)
	p.Seed = 8
	p.Sessions, p.SessionsMax = 4, 7
	p.SwitchAfter, p.SwitchAfterMax = 1, 4
	p.Improvers, p.Improve = 0.3, Span{0, 0.03}
	p.AimAccuracy, p.AimReaction = Span{0.62, 0.84}, Span{95, 240}
	return p
}

// H returns the held-out corpus of cheaters who switch on partway, fixed
// and committed before it was generated: seed 9, every player in 5 to 8
// sessions, every aimbot honest for its first 2 to 5 sessions and then
// weaker than W's and G's (hit ratio 0.58 to 0.80, reactions of 110 to
// 250 ms, a geometric mean of about 175 ms); honest players improve as
// in W (30% of them, 0 to 3% a session). The other cheaters sit beside
// earlier corpora's: speed hackers near the limit on 82% of moves and
// resting before 13%; rings of 5 with ± 5 units and up to 3 ms of lag;
// win-traders alternating 85% over 18 to 26 duels a session, dueling
// others every 12 to 24 s; funnels of 2 to 5 feeders giving 10 to 16
// gifts a session, with 1 to 5% back; gold farmers looting 5 to 9 every
// 1.3 to 2.8 s; friends who duel each other 6 to 16 times a session.
func H(honest int) Params {
	p := A(honest)
	p.Seed = 9
	p.Sessions, p.SessionsMax = 5, 8
	p.SwitchAfter, p.SwitchAfterMax = 2, 5
	p.Improvers, p.Improve = 0.3, Span{0, 0.03}
	p.AimAccuracy, p.AimReaction = Span{0.58, 0.80}, Span{110, 250}
	p.SpeedNear, p.SpeedRest = 0.82, 0.13
	p.RingSize, p.RingJitter, p.RingLag = 5, 5, 3*time.Millisecond
	p.TradeMeets, p.TradeMeetsMax, p.TradeAlt, p.TradeOthers = 18, 26, 0.85, 12*time.Second
	p.Feeders, p.FeedersMax, p.FeedGifts, p.FeedBack, p.FeedBackMax = 2, 5, Span{10, 16}, 0.01, 0.05
	p.FarmEvery, p.FarmGold = Span{1.3, 2.8}, Span{5, 9}
	p.FriendMeets, p.FriendMeetsMax = 6, 16
	return p
}

// J returns the second held-out corpus of cheaters who switch on
// partway, made after H had been looked at and the reaction timing
// changed for it (docs/ANTICHEAT.md, "The timing of a busy player's
// reactions"), fixed and committed before it was generated: seed 10,
// every player in 4 to 8 sessions, every aimbot honest for its first 1 to
// 5 sessions and then hitting 0.60 to 0.82 and reacting in 100 to 245 ms
// (between W's and H's); honest players improve as in W and H (30% of
// them, 0 to 3% a session). The other cheaters sit between or beside
// earlier corpora's: speed hackers near the limit on 80% of moves and
// resting before 14%; rings of 4 with ± 6 units and up to 4 ms of lag;
// win-traders alternating 85% over 17 to 27 duels a session, dueling
// others every 10 to 20 s; funnels of 2 to 5 feeders giving 9 to 15
// gifts a session, with 1 to 6% back; gold farmers looting 5 to 10 every
// 1.2 to 3 s; friends who duel each other 6 to 16 times a session.
func J(honest int) Params {
	p := A(honest)
	p.Seed = 10
	p.Sessions, p.SessionsMax = 4, 8
	p.SwitchAfter, p.SwitchAfterMax = 1, 5
	p.Improvers, p.Improve = 0.3, Span{0, 0.03}
	p.AimAccuracy, p.AimReaction = Span{0.60, 0.82}, Span{100, 245}
	p.SpeedNear, p.SpeedRest = 0.8, 0.14
	p.RingSize, p.RingJitter, p.RingLag = 4, 6, 4*time.Millisecond
	p.TradeMeets, p.TradeMeetsMax, p.TradeAlt, p.TradeOthers = 17, 27, 0.85, 10*time.Second
	p.Feeders, p.FeedersMax, p.FeedGifts, p.FeedBack, p.FeedBackMax = 2, 5, Span{9, 15}, 0.01, 0.06
	p.FarmEvery, p.FarmGold = Span{1.2, 3}, Span{5, 10}
	p.FriendMeets, p.FriendMeetsMax = 6, 16
	return p
}

// K returns the held-out corpus for accuracy over long histories, made
// after accuracy's hits were weighed by their age (Accuracy.HalfLife) and
// fixed and committed before it was generated: seed 11, every player in 4
// to 8 sessions, 30% of the honest players improving by 0 to 3% a session
// (as in W, H and J), and aimbots cheating from their first session (no
// SwitchAfter: accuracy's target, as in S and G) and weaker than any
// earlier corpus's that cheats from the start: hit ratios of 0.60 to
// 0.82, reactions of 100 to 250 ms. The other cheaters sit between or
// beside earlier corpora's: speed hackers near the limit on 84% of moves
// and resting before 15%; rings of 5 with ± 6 units and up to 4 ms of lag;
// win-traders alternating 86% over 17 to 26 duels a session, dueling
// others every 11 to 22 s; funnels of 2 to 5 feeders giving 10 to 15
// gifts a session, with 1 to 5% back; gold farmers looting 5 to 9 every
// 1.3 to 3 s; friends who duel each other 6 to 16 times a session.
func K(honest int) Params {
	p := A(honest)
	p.Seed = 11
	p.Sessions, p.SessionsMax = 4, 8
	p.Improvers, p.Improve = 0.3, Span{0, 0.03}
	p.AimAccuracy, p.AimReaction = Span{0.60, 0.82}, Span{100, 250}
	p.SpeedNear, p.SpeedRest = 0.84, 0.15
	p.RingSize, p.RingJitter, p.RingLag = 5, 6, 4*time.Millisecond
	p.TradeMeets, p.TradeMeetsMax, p.TradeAlt, p.TradeOthers = 17, 26, 0.86, 11*time.Second
	p.Feeders, p.FeedersMax, p.FeedGifts, p.FeedBack, p.FeedBackMax = 2, 5, Span{10, 15}, 0.01, 0.05
	p.FarmEvery, p.FarmGold = Span{1.3, 3}, Span{5, 9}
	p.FriendMeets, p.FriendMeetsMax = 6, 16
	return p
}

// L returns the held-out corpus for reaction and accuracy weighed by
// the player's own later samples (the detectors' half-lives in shots and
// reactions, not leader time), fixed and committed before it was
// generated: seed 12, every player in 3 to 6 sessions of two minutes
// (every earlier corpus's are one minute: twice the play between two
// pauses, which the half-lives in play must not turn into twice the
// evidence), 30% of the honest players improving by 0 to 3% a session
// (as W, H, J and K), and aimbots cheating from their first session (as
// K) with hit ratios of 0.61 to 0.83 and reactions of 95 to 240 ms. The
// other cheaters sit between or beside earlier corpora's: speed hackers
// near the limit on 83% of moves and resting before 14%; rings of 6 with
// ± 5 units and up to 3 ms of lag; win-traders alternating 85% over 18
// to 27 duels a session, dueling others every 12 to 24 s; funnels of 2 to
// 5 feeders giving 9 to 15 gifts a session, with 1 to 6% back; gold
// farmers looting 5 to 9 every 1.4 to 3 s; friends who duel each other
// 6 to 15 times a session.
func L(honest int) Params {
	p := A(honest)
	p.Seed = 12
	p.Session = 2 * time.Minute
	p.Sessions, p.SessionsMax = 3, 6
	p.Improvers, p.Improve = 0.3, Span{0, 0.03}
	p.AimAccuracy, p.AimReaction = Span{0.61, 0.83}, Span{95, 240}
	p.SpeedNear, p.SpeedRest = 0.83, 0.14
	p.RingSize, p.RingJitter, p.RingLag = 6, 5, 3*time.Millisecond
	p.TradeMeets, p.TradeMeetsMax, p.TradeAlt, p.TradeOthers = 18, 27, 0.85, 12*time.Second
	p.Feeders, p.FeedersMax, p.FeedGifts, p.FeedBack, p.FeedBackMax = 2, 5, Span{9, 15}, 0.01, 0.06
	p.FarmEvery, p.FarmGold = Span{1.4, 3}, Span{5, 9}
	p.FriendMeets, p.FriendMeetsMax = 6, 15
	return p
}
