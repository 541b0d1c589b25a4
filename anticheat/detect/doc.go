// Package detect finds, after the fact, what a world's rules cannot
// forbid: per-player statistics over the committed events, compared with
// configurable thresholds, and collusion between accounts found by graph
// and timing.
//
// Its place in the flow: the store commits events; the checks of package
// anticheat reject what is plainly impossible before commit (too fast, a
// teleport, an empty purse); a Detector reads the committed feed (a
// fanout.Subscription, never api) and looks for what stays within those
// hard limits:
//
//   - speed: sustained movement near the speed limit;
//   - jump: teleport-like single moves just under the longest move allowed,
//     more often than an honest rate (a binomial z-score);
//   - straight: paths straighter than a hand steers;
//   - reaction: reactions to a target's appearance faster than a quick
//     human's over many of them (a log-normal location z-score), over a
//     player's sessions and worlds, each reaction weighing less for every
//     reaction of the player's after it (Reaction.HalfLifeReactions): ages
//     in the player's own play, not leader time;
//   - accuracy: aim far better than the population's (the hits' binomial
//     z-score against the population's 90th percentile, plus reaction's),
//     over a player's shots and reactions weighed by the shots after them
//     (Accuracy.HalfLifeShots), so an honest player's evidence stays
//     bounded however much they play;
//   - switch: aim that changed between a player's sessions (worlds) more
//     than an honest player improves: a change point against their own
//     earlier sessions (an aimbot switched on partway);
//   - economy: currency earned with no shot before it (loot without a fight);
//   - lockstep: accounts that move the same way at the same tick (bot ring);
//   - wintrade: a pair that meets often and trades wins (or feeds one way):
//     a likelihood ratio over the pair's match history;
//   - funnel: an account fed one-way item transfers by its feeders (a
//     likelihood ratio of the transfers' directions, against friends').
//
// A Detector knows a game only through the field names of its Config
// (Fields): a move is an event whose player changes their own entity's X
// or Y; a shot is one that changes their own Shot field; a hit changes
// another entity's Hit field by incr; an appearance is a change of an
// entity's Appear field; a transfer removes an element from one entity's
// Items set and adds it to another's in one event; a match result
// increments one entity's Wins and another's Losses; an income increments
// the player's own Currency. The player's entity
// is named by the player's id (caller.id, as in anticheat's checks).
//
// Observe takes one event at a time and only counts (constant work per
// change); Evaluate compares the counts with the thresholds and returns
// the flags not returned before, each naming its detector, its player or
// players, a score and the seqs of the events that weighed most. Follow
// runs both over a subscription and hands the flags to a Sink (the
// moderators' channel, metrics, a log). Nothing is banned: a flag is a
// lead for a moderator.
//
// A Detector keeps its counts in memory. A Runner with Checkpoints saves
// them with where each world's follower is (checkpoint.go) and starts
// from them after a restart, once its Source (a Settler) lists its worlds
// as they are, so a deleted world's evidence stays and no event counts
// twice; without a usable checkpoint it rebuilds them by following each
// world's feed from its first seq again. A world with an incarnation is
// taken for created again only when its incarnation changes; one missing
// from the list and back goes on from its mark, unless a checkpoint
// dropped the mark meanwhile (then from seq 1: counted twice). The flags
// a checkpoint holds go to the sink again marked Restored (Log and
// Metrics skip them).
package detect
