//go:build !gsd_lying_leader

package fsm

// validators returns the validators Apply runs. Only a binary built with
// the gsd_lying_leader tag can be told to skip them (lie.go).
func (f *FSM) validators() []Validator { return f.cfg.Validators }
