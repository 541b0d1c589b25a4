package shard

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReadHeader(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    []byte
		group uint64
		first []byte
		bad   bool
	}{
		{name: "group header", in: appendHeader(nil, 7), group: 7},
		{name: "largest group", in: appendHeader(nil, ^uint64(0)), group: ^uint64(0)},
		{name: "group 0 with a header", in: appendHeader(nil, 0), group: 0},
		{name: "raft append entries without header", in: []byte{0, 0x85}, first: []byte{0}},
		{name: "raft pre-vote without header", in: []byte{4}, first: []byte{4}},
		{name: "empty", in: nil, bad: true},
		{name: "magic only", in: []byte{headerMagic}, bad: true},
		{name: "short group", in: appendHeader(nil, 7)[:headerLen-1], bad: true},
		{name: "unknown version", in: append([]byte{headerMagic, 9}, make([]byte, 8)...), bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			group, first, err := readHeader(bytes.NewReader(tc.in))
			if tc.bad {
				require.ErrorIs(t, err, ErrBadHeader)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.group, group)
			require.Equal(t, tc.first, first)
		})
	}
}

// FuzzReadHeader: any bytes give a group or an ErrBadHeader, never a panic,
// and a well-formed header reads back its group.
func FuzzReadHeader(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add(appendHeader(nil, 3))
	f.Add([]byte{headerMagic, headerVersion, 1})
	f.Fuzz(func(t *testing.T, in []byte) {
		group, first, err := readHeader(bytes.NewReader(in))
		switch {
		case err != nil:
			if !errors.Is(err, ErrBadHeader) {
				t.Fatalf("error %v is not ErrBadHeader", err)
			}
		case first != nil:
			if len(first) != 1 || first[0] == headerMagic || group != 0 {
				t.Fatalf("headerless read gave group %d first %v", group, first)
			}
		default:
			if !bytes.Equal(appendHeader(nil, group), in[:headerLen]) {
				t.Fatalf("group %d does not round-trip from %x", group, in)
			}
		}
	})
}
