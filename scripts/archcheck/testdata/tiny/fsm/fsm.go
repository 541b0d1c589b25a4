// Package fsm is the state machine.
package fsm

import "example.com/tiny/wire"

// Apply applies one event.
func Apply(e wire.Event) uint64 { return e.Seq + 1 }
