// Package freeport picks loopback addresses for servers that must know
// their port before they bind it: raft's TCP transport advertises the
// address it is given, so tests and local clusters cannot listen on :0.
package freeport

import (
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
)

// The range picked from: below Linux's default ephemeral range (32768 and
// up), where the kernel hands out the ports of listeners on :0 and of
// outgoing connections. A port taken from there and closed again until a
// server binds it could meanwhile go to another listener or connection
// (nodes failed to start with "address already in use"); below it, only
// another pick can take it.
const (
	low  = 20000
	high = 32000
)

// tries bounds the picks of one Addr: a port in use is skipped.
const tries = 100

// ErrNone reports that every port tried was in use.
var ErrNone = errors.New("freeport: no free port below the ephemeral range")

// Addr returns 127.0.0.1:P with a TCP port P that was free a moment ago.
func Addr() (string, error) {
	return pick(func() int { return low + rand.IntN(high-low) })
}

// pick tries the ports next gives until one can be bound.
func pick(next func() int) (string, error) {
	for range tries {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(next()))
		if l, err := net.Listen("tcp", addr); err == nil {
			return addr, l.Close()
		}
	}
	return "", ErrNone
}
