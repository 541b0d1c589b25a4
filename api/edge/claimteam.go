package edge

import (
	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/fsm"
)

// Claim returns the string claim name of raw, a token this authenticator
// accepts, and false when the token does not verify or has no such claim
// as a string.
func (a *Authenticator) Claim(raw, name string) (string, bool) {
	claims := jwt.MapClaims{}
	if _, err := a.parser.ParseWithClaims(raw, claims, a.keys); err != nil {
		return "", false
	}
	v, ok := claims[name].(string)
	return v, ok
}

// ClaimTeam gives a session open into a world whose players' teams come
// from a token claim (rules teams.from "claim") the player's team: its
// data key named like the claim is set to the claim of token, or deleted
// when the token has none (or none that is a valid name, or auth is off:
// no team). The FSM records it with the open (log version 10), so every
// node reads the player's team from the replicated session data, as with
// teams.from "data". Other commands and worlds are left as they are.
func (s *Core) ClaimTeam(kind fsm.CmdKind, c *fsm.SessionCmd, token string) {
	if kind != fsm.CmdSessionOpen {
		return
	}
	w, err := s.b.World(c.World)
	if err != nil || w.Rules.Schema.Teams.From != "claim" {
		return // the open itself says what is wrong with the world
	}
	key := w.Rules.Schema.Teams.Key
	item := fsm.DataItem{Key: key}
	if s.auth != nil {
		if team, ok := s.auth.Claim(token, key); ok && CheckName("team", team) == nil {
			item.Value = fsm.String(team)
		}
	}
	c.Data = []fsm.DataItem{item}
}
