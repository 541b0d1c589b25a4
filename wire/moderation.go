package wire

import "time"

// The moderation routes' bodies (docs/API.md, "Moderation"): anti-cheat
// flags as the moderation world keeps them, and their reviews.

// PathModerationFlags is the moderation routes' root.
const PathModerationFlags = "/v1/moderation/flags"

// FlagRef names one committed event, the evidence of a flag.
type FlagRef struct {
	World string `json:"world"`
	Seq   uint64 `json:"seq"`
}

// FlagReview is one review of a flag: who moved it from which state to
// which, why and when (the reviewing node's clock).
type FlagReview struct {
	N      int       `json:"n"` // 1 for the first review
	Op     string    `json:"op"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	By     string    `json:"by"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// Flag is a flag's record: what a detector raised and how moderators
// reviewed it.
type Flag struct {
	ID          string       `json:"id"`
	Detector    string       `json:"detector"`
	Players     []string     `json:"players"`
	Score       float64      `json:"score"`
	Evidence    []FlagRef    `json:"evidence"`
	World       string       `json:"world"`
	Incarnation uint64       `json:"incarnation"`
	RaisedBy    string       `json:"raised_by"`
	Raised      uint64       `json:"raised"`
	State       string       `json:"state"`
	History     []FlagReview `json:"history"`
}

// FlagList answers GET /v1/moderation/flags: one page of flags, and
// the cursor of the next page when there is one.
type FlagList struct {
	Flags      []Flag `json:"flags"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// FlagReviewRequest is the body of POST /v1/moderation/flags/{id}/{op}.
type FlagReviewRequest struct {
	// By names the moderator: with a token it is the token's subject
	// (leave it out, or give the same), else it is required.
	By     string `json:"by,omitempty"`
	Reason string `json:"reason"`
}

// FlagReviewed answers a review: the flag after it and the review, and
// what the flagged world's policy did (docs/ANTICHEAT.md): the players it
// banned or unbanned there, or why it failed (the review stands).
type FlagReviewed struct {
	Flag        Flag       `json:"flag"`
	Review      FlagReview `json:"review"`
	Banned      []string   `json:"banned,omitempty"`
	Unbanned    []string   `json:"unbanned,omitempty"`
	PolicyError string     `json:"policy_error,omitempty"`
}

// FlagRaise is the body of POST /v1/moderation/flags: a flag as a
// detector raised it.
type FlagRaise struct {
	Detector    string    `json:"detector"`
	Players     []string  `json:"players"`
	Score       float64   `json:"score"`
	Evidence    []FlagRef `json:"evidence"`
	World       string    `json:"world"`
	Incarnation uint64    `json:"incarnation"`
	RaisedBy    string    `json:"raised_by"`
}

// FlagRaised answers POST /v1/moderation/flags: the record's id and
// whether it is new (false: the same suspicion was recorded before).
type FlagRaised struct {
	ID      string `json:"id"`
	Created bool   `json:"created"`
}
