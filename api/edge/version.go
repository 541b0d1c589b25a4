package edge

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gsd-dev/gsd/fsm"
)

// The node-to-node wire version. Every call one node makes to another
// (forwarded requests, session commands, acks, and the internal service's
// calls) carries HeaderWireVersion; the receiver refuses a major version
// higher than its own with CodeWireVersion, so a newer node talking to an
// older one fails with a clear answer instead of being misread. Within a
// major version changes are additive (new optional keys). Requests without
// the header (clients, and nodes from before it) are served as today.
const (
	// HeaderWireVersion carries the sender's wire version, "major.minor".
	HeaderWireVersion = "X-Gsd-Wire-Version"
	// CodeWireVersion answers a call whose wire major version this node
	// does not speak.
	CodeWireVersion = "wire_version"
	// CodeVersionGate answers a write that some voter's binary could not
	// read (store.ErrVersionGate): upgrade the voters first.
	CodeVersionGate = "version_gate"
)

// ErrWireVersion reports a call of a wire major version this node does not speak.
var ErrWireVersion = errors.New("gsd/api: wire version not supported")

// WireVersion returns the wire version this binary speaks, as sent.
func WireVersion() string { return strconv.FormatUint(uint64(fsm.WireVersion), 10) + ".0" }

// SetWireVersion marks a node-to-node request with this binary's wire version.
func SetWireVersion(h http.Header) { h.Set(HeaderWireVersion, WireVersion()) }

// CheckWireVersion checks a received request's wire version: absent or of
// a major version this binary speaks is fine; a higher major is
// ErrWireVersion (400 wire_version), a malformed one fsm.ErrMalformed.
func CheckWireVersion(h http.Header) error {
	v := h.Get(HeaderWireVersion)
	if v == "" {
		return nil
	}
	major, minor, _ := strings.Cut(v, ".")
	m, err := strconv.ParseUint(major, 10, 32)
	if err == nil && minor != "" {
		_, err = strconv.ParseUint(minor, 10, 32)
	}
	if err != nil || m == 0 {
		return fmt.Errorf("%w: %s %q is not major.minor", fsm.ErrMalformed, HeaderWireVersion, v)
	}
	if m > uint64(fsm.WireVersion) {
		return fmt.Errorf("%w: %s %s, this node speaks %s: upgrade it", ErrWireVersion, HeaderWireVersion, v, WireVersion())
	}
	return nil
}
