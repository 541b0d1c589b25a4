package store

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/gsd-dev/gsd/fsm"
)

// Salted audit leaves (issue 15; fsm/salt.go): the leader draws each
// player's salt, never a replica, and proposes it before the player's
// first action in a salted world.

// CreateSaltedWorld creates a world whose audit leaves are salted per
// player (leaf version 2). Errors as CreateWorld's, and ErrVersionGate
// while a voter reads less than log 13.
func (s *Store) CreateSaltedWorld(ctx context.Context, id string, rules fsm.Rules) error {
	if err := rules.Validate(); err != nil {
		return err
	}
	if _, err := s.fsm.World(id); err == nil {
		return fmt.Errorf("%w: %s", fsm.ErrWorldExists, id)
	}
	o, err := s.propose(ctx, fsm.Command{Kind: fsm.CmdCreateWorldSalted, World: &fsm.WorldSpec{ID: id, Origin: s.cfg.Region, Rules: rules, Salted: true}})
	if err != nil {
		return err
	}
	return o.res.Err
}

// EraseSalt deletes player's audit salt in a salted world: from then on
// nobody can link the player's id to the leaves that committed to it.
// Once every voter reads log 14 the world keeps the erased salt's digest
// and the seqs it salted (fsm.CmdEraseSaltKeep), so that the player's
// events still verify but for their identity; before, the erasure keeps
// nothing, as log 13 wrote it. fsm.ErrNotFound when the player has none,
// fsm.ErrNotSupported for a world whose leaves are not salted.
func (s *Store) EraseSalt(ctx context.Context, world, player string) error {
	cmd := fsm.Command{Kind: fsm.CmdEraseSaltKeep, Salt: &fsm.SaltCmd{World: world, Player: player}}
	o, err := s.propose(ctx, cmd)
	if errors.Is(err, ErrVersionGate) {
		// Some voter reads less than log 14 (the gate wrote nothing):
		// the erasure without its digest, gated again.
		cmd.Kind = fsm.CmdEraseSalt
		o, err = s.propose(ctx, cmd)
	}
	if err != nil {
		return err
	}
	return o.res.Err
}

// Salts returns a salted world's salt table on this replica and the
// world's incarnation (fsm.FSM.Salts).
func (s *Store) Salts(world string) ([]fsm.Salt, uint64, error) { return s.fsm.Salts(world) }

// SaltTable returns a salted world's salts and kept digests of erased
// salts on this replica (fsm.FSM.SaltTable).
func (s *Store) SaltTable(world string) (fsm.SaltTable, error) { return s.fsm.SaltTable(world) }

// salt proposes a salt for a's player in a's world when the world is
// salted and the player has none: before the player's first action there.
// A retry of an action the world recorded (from before an erasure) needs
// none: it gets its original result.
func (s *Store) salt(ctx context.Context, a *fsm.Action) error {
	if !s.fsm.NeedsSalt(a.World, a.Player) || s.fsm.Recorded(a.World, a.Player, a.Seq) {
		return nil
	}
	c := &fsm.SaltCmd{World: a.World, Player: a.Player}
	rand.Read(c.Key[:]) // never fails (crypto/rand)
	o, err := s.propose(ctx, fsm.Command{Kind: fsm.CmdSalt, Salt: c})
	if err != nil {
		return err
	}
	return o.res.Err
}
