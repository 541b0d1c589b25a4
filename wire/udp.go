package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// The UDP input packet (docs/PROTOCOL.md, "UDP input lane"). All integers
// are big-endian.
//
//	offset  size  field
//	0       1     version (UDPVersion)
//	1       8     key id (from the welcome's udp.key_id)
//	9       8     seq, uint64 >= 1: strictly per key, and the action's client seq
//	17      8     input time, int64 unix ns (0: none)
//	25      1     op count n, 1..UDPMaxOps
//	26      ...   n ops: entity len (1 byte, 1..128), entity, field len
//	              (1 byte, 1..128), field, value type (1 byte, a Kind),
//	              value: 1 int: 8 bytes int64; 2 float: 8 bytes IEEE 754
//	              float64; 3 string: 2 bytes length (<= MaxStringLen) +
//	              UTF-8 bytes; 4 bool: 1 byte, 0 or 1
//	len-16  16    tag: HMAC-SHA256(key, bytes[0:len-16]), first 16 bytes
const (
	UDPVersion   = 1
	UDPKeyIDLen  = 8
	UDPKeyLen    = 32
	UDPTagLen    = 16
	UDPHeaderLen = 26
	UDPMinPacket = UDPHeaderLen + UDPTagLen
	// UDPMaxOps bounds the ops (inputs) of one packet.
	UDPMaxOps = 16
	// UDPMaxPacketBytes is the largest packet a server takes by default,
	// and the largest EncodeUDP makes.
	UDPMaxPacketBytes = 1200
)

var (
	// ErrUDPMalformed is any packet DecodeUDP refuses.
	ErrUDPMalformed = errors.New("gsd/wire: malformed udp packet")
	// ErrUDPInput is returned by EncodeUDP for inputs that cannot make a
	// packet.
	ErrUDPInput = errors.New("gsd/wire: bad UDP input")
)

// UDPPacket is one UDP input packet: a key's seq-numbered set ops.
type UDPPacket struct {
	KeyID     [UDPKeyIDLen]byte
	Seq       uint64
	InputTime int64
	Ops       []Op // set ops: entity, field and value
}

// EncodeUDP builds p's bytes, tagged with key. Only the ops' entities,
// fields and values count (every op is a set). Errors wrap ErrUDPInput.
func EncodeUDP(key []byte, p *UDPPacket) ([]byte, error) {
	if len(p.Ops) < 1 || len(p.Ops) > UDPMaxOps {
		return nil, fmt.Errorf("%w: %d inputs, want 1..%d", ErrUDPInput, len(p.Ops), UDPMaxOps)
	}
	if p.Seq == 0 {
		return nil, fmt.Errorf("%w: seq must be > 0", ErrUDPInput)
	}
	b := make([]byte, 0, 128)
	b = append(b, UDPVersion)
	b = append(b, p.KeyID[:]...)
	b = binary.BigEndian.AppendUint64(b, p.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(p.InputTime))
	b = append(b, byte(len(p.Ops)))
	for i, in := range p.Ops {
		if len(in.Entity) < 1 || len(in.Entity) > MaxNameLen || len(in.Field) < 1 || len(in.Field) > MaxNameLen {
			return nil, fmt.Errorf("%w: input %d: entity and field must be 1..%d bytes", ErrUDPInput, i, MaxNameLen)
		}
		b = append(b, byte(len(in.Entity)))
		b = append(b, in.Entity...)
		b = append(b, byte(len(in.Field)))
		b = append(b, in.Field...)
		b = append(b, byte(in.Value.Kind))
		switch in.Value.Kind {
		case KindInt:
			b = binary.BigEndian.AppendUint64(b, uint64(in.Value.Int))
		case KindFloat:
			if math.IsNaN(in.Value.Float) || math.IsInf(in.Value.Float, 0) {
				return nil, fmt.Errorf("%w: input %d: float must be finite", ErrUDPInput, i)
			}
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(in.Value.Float))
		case KindString:
			if len(in.Value.Str) > MaxStringLen {
				return nil, fmt.Errorf("%w: input %d: string over %d bytes", ErrUDPInput, i, MaxStringLen)
			}
			b = binary.BigEndian.AppendUint16(b, uint16(len(in.Value.Str)))
			b = append(b, in.Value.Str...)
		case KindBool:
			b = append(b, byte(min(in.Value.Int, 1)))
		default:
			return nil, fmt.Errorf("%w: input %d: a value is needed", ErrUDPInput, i)
		}
	}
	if len(b)+UDPTagLen > UDPMaxPacketBytes {
		return nil, fmt.Errorf("%w: packet of %d bytes, at most %d", ErrUDPInput, len(b)+UDPTagLen, UDPMaxPacketBytes)
	}
	return append(b, UDPTag(key, b)...), nil
}

// UDPKeyID reads the key id of a packet at least UDPMinPacket long.
func UDPKeyID(b []byte) (id [UDPKeyIDLen]byte) {
	copy(id[:], b[1:1+UDPKeyIDLen])
	return id
}

// UDPTag is a packet's tag over body, keyed by key.
func UDPTag(key, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return m.Sum(nil)[:UDPTagLen]
}

// UDPVerify reports whether b's tag is right for key.
func UDPVerify(key, b []byte) bool {
	n := len(b) - UDPTagLen
	return hmac.Equal(UDPTag(key, b[:n]), b[n:])
}

// DecodeUDP decodes a packet's fields (not its tag, which the caller has
// checked). Every op is a set of a value of a known kind; the names' and
// values' limits are the action's checks, left to the server. Errors wrap
// ErrUDPMalformed.
func DecodeUDP(b []byte) (*UDPPacket, error) {
	if len(b) < UDPMinPacket {
		return nil, fmt.Errorf("%w: %d bytes, at least %d", ErrUDPMalformed, len(b), UDPMinPacket)
	}
	if b[0] != UDPVersion {
		return nil, fmt.Errorf("%w: version %d", ErrUDPMalformed, b[0])
	}
	p := &UDPPacket{
		KeyID:     UDPKeyID(b),
		Seq:       binary.BigEndian.Uint64(b[9:17]),
		InputTime: int64(binary.BigEndian.Uint64(b[17:25])),
	}
	if p.Seq == 0 {
		return nil, fmt.Errorf("%w: seq 0", ErrUDPMalformed)
	}
	n := int(b[25])
	if n < 1 || n > UDPMaxOps {
		return nil, fmt.Errorf("%w: %d ops, want 1..%d", ErrUDPMalformed, n, UDPMaxOps)
	}
	r := udpReader{b: b[UDPHeaderLen : len(b)-UDPTagLen]}
	p.Ops = make([]Op, n)
	for i := range p.Ops {
		op := Op{Kind: OpSet, Entity: r.name(), Field: r.name()}
		switch Kind(r.byte()) {
		case KindInt:
			op.Value = Int(int64(r.uint64()))
		case KindFloat:
			op.Value = Float(math.Float64frombits(r.uint64()))
		case KindString:
			op.Value = String(string(r.bytes(int(r.uint16()))))
		case KindBool:
			switch r.byte() {
			case 0:
				op.Value = Bool(false)
			case 1:
				op.Value = Bool(true)
			default:
				r.bad = true
			}
		default:
			r.bad = true
		}
		if r.bad {
			return nil, fmt.Errorf("%w: op %d truncated or of an unknown type", ErrUDPMalformed, i)
		}
		p.Ops[i] = op
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the ops", ErrUDPMalformed, len(r.b))
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
