// Package anticheat ships ready-made, parameterised anti-cheat checks for
// a world's declared actions (docs/RULES.md): movement speed and teleport
// limits over the leader-time delta, cooldowns and fire rates, a
// per-player action rate per window, range on a grid, no negative
// balance, no acting while dead, no using an item not owned, and
// transfers that conserve items (removed where added, never duplicated).
//
// Each check is a rule kind that compiles to declared-action
// preconditions, plus the effects that keep the state it reads next time
// (the leader time of the last move or shot) in the entity's fields. They
// are rules, not an fsm.Validator, for three reasons: the state a check
// needs then lives in the FSM (snapshotted, in the state hash, the same on
// every replica) and never in a validator's memory, which a restarted or
// restored replica would not have; every replica evaluates exactly what
// the world's rules say, so a node with another binary or another flag
// cannot judge differently; and a game turns a check on, tunes or drops it
// per world through a replicated rules update. The checks use integer
// maths only (squared grid distances, nanoseconds), so no replica rounds
// differently.
//
// A rejected action's event carries the failing check's name as its
// reason code ("too_fast", "teleport", "cooldown", "fire_rate", "rate",
// "out_of_range",
// "negative_balance", "dead", "not_owned", or the name a game gives), so
// the feed counts rejections per rule.
package anticheat
