package shard

import (
	"encoding/binary"
	"fmt"
	"io"
)

// A group header is headerLen bytes: headerMagic, headerVersion, then the
// group id as a big-endian uint64. hashicorp/raft starts every connection
// with the type byte of its first RPC (0-4 in v1.7.3: append entries,
// request vote, install snapshot, timeout now, pre-vote), so a first byte
// of headerMagic cannot be a raft connection without a header; it is far
// from the small integers raft would use for future RPC types.
const (
	headerMagic   byte = 0xF7
	headerVersion byte = 1
	headerLen          = 10
)

// appendHeader appends group's header to b.
func appendHeader(b []byte, group uint64) []byte {
	b = append(b, headerMagic, headerVersion)
	return binary.BigEndian.AppendUint64(b, group)
}

// readHeader reads the start of an accepted connection. A connection whose
// first byte is not headerMagic is a raft connection without a header:
// group 0, and that byte (returned in first) belongs to the raft stream. A
// short or unknown header is an error wrapping ErrBadHeader.
func readHeader(r io.Reader) (group uint64, first []byte, err error) {
	var h [headerLen]byte
	if _, err := io.ReadFull(r, h[:1]); err != nil {
		return 0, nil, fmt.Errorf("%w: %w", ErrBadHeader, err)
	}
	if h[0] != headerMagic {
		return 0, h[:1], nil
	}
	if _, err := io.ReadFull(r, h[1:]); err != nil {
		return 0, nil, fmt.Errorf("%w: %w", ErrBadHeader, err)
	}
	if h[1] != headerVersion {
		return 0, nil, fmt.Errorf("%w: version %d", ErrBadHeader, h[1])
	}
	return binary.BigEndian.Uint64(h[2:]), nil, nil
}
