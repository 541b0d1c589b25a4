// Package client talks to the edge.
package client

import "example.com/tiny/wire"

// Send sends one event.
func Send(e wire.Event) uint64 { return e.Seq }
