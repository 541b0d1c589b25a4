// Package freeport picks loopback addresses for servers that must know
// their port before they bind it: raft's TCP transport advertises the
// address it is given, so tests and local clusters cannot listen on :0.
package freeport

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
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

// pick tries the ports next gives until one is not claimed and can be
// bound.
func pick(next func() int) (string, error) {
	for range tries {
		port := next()
		if !claim(port) {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if l, err := net.Listen("tcp", addr); err == nil {
			return addr, l.Close()
		}
	}
	return "", ErrNone
}

// claimDir holds one file per port picked; claimFor is how long a pick
// keeps its claim, 0 for as long as the process lives. A minute was
// enough for a server to bind its port, but not for a node that a test
// stops and starts again on the same ports: once the claim had ended,
// another test binary's pick could hand the port out while the node was
// down, and one of the two servers then failed to bind it. A process
// picks a few hundred ports at most (a whole test binary), far fewer
// than the range holds, and its claims end with it.
var (
	claimDir = filepath.Join(os.TempDir(), "gsd-freeport")
	claimFor time.Duration
)

// held keeps the files of the claims made for the process's life open
// (an unreferenced *os.File is closed by its finalizer).
var held struct {
	sync.Mutex
	files []*os.File
}

// claim takes an exclusive flock on port's file (for claimFor), so that no
// other pick, in this process or another (go test runs packages' test
// binaries side by side, each picking from the same range), hands out the
// port before the server it was picked for binds it: a port free a moment
// ago went to two clusters, and a node dialled another test's node. It
// reports false when another pick holds the port; when no claim can be
// made at all, the bind check alone decides, as before claims.
func claim(port int) bool {
	name := filepath.Join(claimDir, strconv.Itoa(port))
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o666)
	if errors.Is(err, fs.ErrNotExist) {
		_ = os.MkdirAll(claimDir, 0o777)
		f, err = os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o666)
	}
	if err != nil {
		return true
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return false
	}
	if claimFor > 0 {
		time.AfterFunc(claimFor, func() { f.Close() }) // closing the file drops the lock
		return true
	}
	held.Lock()
	held.files = append(held.files, f)
	held.Unlock()
	return true
}
