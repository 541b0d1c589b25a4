//go:build gsd_lying_leader

package store

// Lie makes this node's FSM skip its validators (fsm.FSM.Lie), as a
// leader running a buggy or hostile binary would: for the lying-leader
// tests of the packages above the store. Only a binary built with the
// gsd_lying_leader tag has it.
func (s *Store) Lie(on bool) { s.fsm.Lie(on) }
