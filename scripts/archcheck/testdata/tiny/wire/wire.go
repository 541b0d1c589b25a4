// Package wire holds what crosses a process boundary.
package wire

// Event is what clients see.
type Event struct{ Seq uint64 }
