package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/gsd-dev/gsd/fsm"
)

// The UDP input packet (docs/PROTOCOL.md, "UDP input lane"). All integers
// are big-endian.
//
//	offset  size  field
//	0       1     version (udpVersion)
//	1       8     key id (from the welcome's udp.key_id)
//	9       8     seq, uint64 >= 1: strictly per key, and the action's client seq
//	17      8     input time, int64 unix ns (0: none)
//	25      1     op count n, 1..udpMaxOps
//	26      ...   n ops: entity len (1 byte, 1..128), entity, field len
//	              (1 byte, 1..128), field, value type (1 byte), value:
//	              1 int: 8 bytes int64; 2 float: 8 bytes IEEE 754 float64;
//	              3 string: 2 bytes length (<= fsm.MaxStringLen) + UTF-8
//	              bytes; 4 bool: 1 byte, 0 or 1
//	len-16  16    tag: HMAC-SHA256(key, bytes[0:len-16]), first 16 bytes
const (
	udpVersion    = 1
	udpKeyIDLen   = 8
	udpKeyLen     = 32
	udpTagLen     = 16
	udpHeaderLen  = 26
	udpMinPacket  = udpHeaderLen + udpTagLen
	udpMaxOps     = 16
	udpWindowBits = 1024
)

// The value types of a packet's op; equal to fsm's Kind numbers.
const (
	udpInt    = byte(fsm.KindInt)
	udpFloat  = byte(fsm.KindFloat)
	udpString = byte(fsm.KindString)
	udpBool   = byte(fsm.KindBool)
)

// errUDPMalformed is any packet the decoder refuses.
var errUDPMalformed = errors.New("gsd/api: malformed udp packet")

// udpPacket is a decoded packet.
type udpPacket struct {
	keyID     [udpKeyIDLen]byte
	seq       uint64
	inputTime int64
	ops       []fsm.Op // set ops only
}

// udpKeyID reads the key id of a packet at least udpMinPacket long.
func udpKeyID(b []byte) (id [udpKeyIDLen]byte) {
	copy(id[:], b[1:1+udpKeyIDLen])
	return id
}

// udpTag is the packet's tag over body, keyed by key.
func udpTag(key, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return m.Sum(nil)[:udpTagLen]
}

// udpVerify reports whether b's tag is right for key.
func udpVerify(key, b []byte) bool {
	n := len(b) - udpTagLen
	return hmac.Equal(udpTag(key, b[:n]), b[n:])
}

// decodeUDP decodes a packet's fields (not its tag, which the caller has
// checked). Every op is a set of a valid value on valid names.
func decodeUDP(b []byte) (*udpPacket, error) {
	if len(b) < udpMinPacket {
		return nil, fmt.Errorf("%w: %d bytes, at least %d", errUDPMalformed, len(b), udpMinPacket)
	}
	if b[0] != udpVersion {
		return nil, fmt.Errorf("%w: version %d", errUDPMalformed, b[0])
	}
	p := &udpPacket{
		keyID:     udpKeyID(b),
		seq:       binary.BigEndian.Uint64(b[9:17]),
		inputTime: int64(binary.BigEndian.Uint64(b[17:25])),
	}
	if p.seq == 0 {
		return nil, fmt.Errorf("%w: seq 0", errUDPMalformed)
	}
	n := int(b[25])
	if n < 1 || n > udpMaxOps {
		return nil, fmt.Errorf("%w: %d ops, want 1..%d", errUDPMalformed, n, udpMaxOps)
	}
	r := udpReader{b: b[udpHeaderLen : len(b)-udpTagLen]}
	p.ops = make([]fsm.Op, n)
	for i := range p.ops {
		op := fsm.Op{Kind: fsm.OpSet, Entity: r.name(), Field: r.name()}
		switch r.byte() {
		case udpInt:
			op.Value = fsm.Int(int64(r.uint64()))
		case udpFloat:
			op.Value = fsm.Float(math.Float64frombits(r.uint64()))
		case udpString:
			op.Value = fsm.String(string(r.bytes(int(r.uint16()))))
		case udpBool:
			switch r.byte() {
			case 0:
				op.Value = fsm.Bool(false)
			case 1:
				op.Value = fsm.Bool(true)
			default:
				r.bad = true
			}
		default:
			r.bad = true
		}
		if r.bad {
			return nil, fmt.Errorf("%w: op %d truncated or of an unknown type", errUDPMalformed, i)
		}
		p.ops[i] = op
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the ops", errUDPMalformed, len(r.b))
	}
	// The action's own checks: names, strings, finite floats.
	a := fsm.Action{World: "w", Player: "p", Seq: p.seq, Priority: fsm.PriorityBulk, Ops: p.ops}
	if err := a.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", errUDPMalformed, err)
	}
	return p, nil
}

// udpReader reads a packet's ops; a read past the end sets bad.
type udpReader struct {
	b   []byte
	bad bool
}

func (r *udpReader) bytes(n int) []byte {
	if r.bad || n > len(r.b) {
		r.bad = true
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *udpReader) byte() byte {
	if b := r.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *udpReader) uint16() uint16 {
	if b := r.bytes(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *udpReader) uint64() uint64 {
	if b := r.bytes(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (r *udpReader) name() string {
	return string(r.bytes(int(r.byte())))
}

// replayWindow is a sliding window of the last udpWindowBits seqs of one
// key (as in IPsec and DTLS): a seq at or below top-udpWindowBits, or one
// already seen, is refused.
type replayWindow struct {
	top  uint64
	bits [udpWindowBits / 64]uint64
}

// Window verdicts.
const (
	windowOK = iota
	windowReplayed
	windowTooOld
)

// check tells whether seq (>= 1) is new, and if so records it.
func (w *replayWindow) check(seq uint64) int {
	switch {
	case seq > w.top:
		if seq-w.top >= udpWindowBits {
			w.bits = [udpWindowBits / 64]uint64{}
		} else {
			for s := w.top + 1; s < seq; s++ {
				w.clear(s)
			}
		}
		w.top = seq
	case w.top-seq >= udpWindowBits:
		return windowTooOld
	case w.bits[(seq%udpWindowBits)/64]&(1<<(seq%64)) != 0:
		return windowReplayed
	}
	w.bits[(seq%udpWindowBits)/64] |= 1 << (seq % 64)
	return windowOK
}

func (w *replayWindow) clear(seq uint64) {
	w.bits[(seq%udpWindowBits)/64] &^= 1 << (seq % 64)
}
