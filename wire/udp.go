package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
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
//
// Version 2 (UDPVersionAction) carries one declared action instead of
// ops: the same first 25 bytes, then
//
//	25      1     action name len (1..128)
//	26      ...   action name, param count m (1 byte, 0..UDPMaxParams), m
//	              params sorted by unique name: name len (1 byte,
//	              1..128), name, value type and value as above
//	len-16  16    tag, as above
const (
	UDPVersion = 1
	// UDPVersionAction is the version of a packet that names a declared
	// action and its params.
	UDPVersionAction = 2
	UDPKeyIDLen      = 8
	UDPKeyLen        = 32
	UDPTagLen        = 16
	UDPHeaderLen     = 26
	UDPMinPacket     = UDPHeaderLen + UDPTagLen
	// UDPMaxOps bounds the ops (inputs) of one packet.
	UDPMaxOps = 16
	// UDPMaxParams bounds the params of a packet's declared action.
	UDPMaxParams = 16
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

// UDPPacket is one UDP input packet: a key's seq-numbered set ops
// (version 1), or with Action a declared action and its Params (version
// UDPVersionAction).
type UDPPacket struct {
	KeyID     [UDPKeyIDLen]byte
	Seq       uint64
	InputTime int64
	Ops       []Op // set ops: entity, field and value
	// Action names a declared action of the world's rules; Params are
	// its params, sorted by unique name. A packet has Ops or an Action.
	Action string
	Params []UDPParam
}

// UDPParam is one param of a packet's declared action.
type UDPParam struct {
	Name  string
	Value Value
}

// EncodeUDP builds p's bytes, tagged with key: a version 1 packet of ops,
// of which only the entities, fields and values count (every op is a
// set), or with p.Action a version 2 packet of a declared action, whose
// params it writes sorted by name. Errors wrap ErrUDPInput.
func EncodeUDP(key []byte, p *UDPPacket) ([]byte, error) {
	if p.Seq == 0 {
		return nil, fmt.Errorf("%w: seq must be > 0", ErrUDPInput)
	}
	b := make([]byte, 0, 128)
	var err error
	if p.Action != "" {
		b, err = encodeUDPAction(b, p)
	} else {
		b, err = encodeUDPOps(b, p)
	}
	if err != nil {
		return nil, err
	}
	if len(b)+UDPTagLen > UDPMaxPacketBytes {
		return nil, fmt.Errorf("%w: packet of %d bytes, at most %d", ErrUDPInput, len(b)+UDPTagLen, UDPMaxPacketBytes)
	}
	return append(b, UDPTag(key, b)...), nil
}

func udpHeader(b []byte, version byte, p *UDPPacket) []byte {
	b = append(b, version)
	b = append(b, p.KeyID[:]...)
	b = binary.BigEndian.AppendUint64(b, p.Seq)
	return binary.BigEndian.AppendUint64(b, uint64(p.InputTime))
}

func encodeUDPOps(b []byte, p *UDPPacket) ([]byte, error) {
	if len(p.Ops) < 1 || len(p.Ops) > UDPMaxOps {
		return nil, fmt.Errorf("%w: %d inputs, want 1..%d", ErrUDPInput, len(p.Ops), UDPMaxOps)
	}
	if len(p.Params) > 0 {
		return nil, fmt.Errorf("%w: params without an action", ErrUDPInput)
	}
	b = udpHeader(b, UDPVersion, p)
	b = append(b, byte(len(p.Ops)))
	for i, in := range p.Ops {
		if len(in.Entity) < 1 || len(in.Entity) > MaxNameLen || len(in.Field) < 1 || len(in.Field) > MaxNameLen {
			return nil, fmt.Errorf("%w: input %d: entity and field must be 1..%d bytes", ErrUDPInput, i, MaxNameLen)
		}
		b = append(b, byte(len(in.Entity)))
		b = append(b, in.Entity...)
		b = append(b, byte(len(in.Field)))
		b = append(b, in.Field...)
		var err error
		if b, err = appendUDPValue(b, in.Value); err != nil {
			return nil, fmt.Errorf("%w: input %d: %v", ErrUDPInput, i, err)
		}
	}
	return b, nil
}

func encodeUDPAction(b []byte, p *UDPPacket) ([]byte, error) {
	if len(p.Ops) > 0 {
		return nil, fmt.Errorf("%w: a packet carries ops or an action, not both", ErrUDPInput)
	}
	if len(p.Action) > MaxNameLen {
		return nil, fmt.Errorf("%w: action name must be 1..%d bytes", ErrUDPInput, MaxNameLen)
	}
	if len(p.Params) > UDPMaxParams {
		return nil, fmt.Errorf("%w: %d params, at most %d", ErrUDPInput, len(p.Params), UDPMaxParams)
	}
	params := slices.Clone(p.Params)
	slices.SortFunc(params, func(x, y UDPParam) int { return strings.Compare(x.Name, y.Name) })
	b = udpHeader(b, UDPVersionAction, p)
	b = append(b, byte(len(p.Action)))
	b = append(b, p.Action...)
	b = append(b, byte(len(params)))
	for i, pa := range params {
		if len(pa.Name) < 1 || len(pa.Name) > MaxNameLen {
			return nil, fmt.Errorf("%w: param %d: name must be 1..%d bytes", ErrUDPInput, i, MaxNameLen)
		}
		if i > 0 && params[i-1].Name == pa.Name {
			return nil, fmt.Errorf("%w: param %s given twice", ErrUDPInput, pa.Name)
		}
		b = append(b, byte(len(pa.Name)))
		b = append(b, pa.Name...)
		var err error
		if b, err = appendUDPValue(b, pa.Value); err != nil {
			return nil, fmt.Errorf("%w: param %s: %v", ErrUDPInput, pa.Name, err)
		}
	}
	return b, nil
}

// appendUDPValue appends v's type byte and value.
func appendUDPValue(b []byte, v Value) ([]byte, error) {
	b = append(b, byte(v.Kind))
	switch v.Kind {
	case KindInt:
		b = binary.BigEndian.AppendUint64(b, uint64(v.Int))
	case KindFloat:
		if math.IsNaN(v.Float) || math.IsInf(v.Float, 0) {
			return nil, errors.New("float must be finite")
		}
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(v.Float))
	case KindString:
		if len(v.Str) > MaxStringLen {
			return nil, fmt.Errorf("string over %d bytes", MaxStringLen)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(v.Str)))
		b = append(b, v.Str...)
	case KindBool:
		b = append(b, byte(min(v.Int, 1)))
	default:
		return nil, errors.New("a value is needed")
	}
	return b, nil
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
// checked), of either version. Every op is a set of a value of a known
// kind, every param a value of a known kind; the names' and values'
// limits are the action's checks, left to the server. Errors wrap
// ErrUDPMalformed.
func DecodeUDP(b []byte) (*UDPPacket, error) {
	if len(b) < UDPMinPacket {
		return nil, fmt.Errorf("%w: %d bytes, at least %d", ErrUDPMalformed, len(b), UDPMinPacket)
	}
	if b[0] != UDPVersion && b[0] != UDPVersionAction {
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
	if b[0] == UDPVersionAction {
		return decodeUDPAction(p, udpReader{b: b[UDPHeaderLen-1 : len(b)-UDPTagLen]})
	}
	n := int(b[25])
	if n < 1 || n > UDPMaxOps {
		return nil, fmt.Errorf("%w: %d ops, want 1..%d", ErrUDPMalformed, n, UDPMaxOps)
	}
	r := udpReader{b: b[UDPHeaderLen : len(b)-UDPTagLen]}
	p.Ops = make([]Op, n)
	for i := range p.Ops {
		op := Op{Kind: OpSet, Entity: r.name(), Field: r.name()}
		op.Value = r.value()
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

// decodeUDPAction decodes a version 2 packet's action from r, the bytes
// after the header's input time.
func decodeUDPAction(p *UDPPacket, r udpReader) (*UDPPacket, error) {
	p.Action = r.name()
	n := int(r.byte())
	if r.bad || p.Action == "" || n > UDPMaxParams {
		return nil, fmt.Errorf("%w: truncated action, or over %d params", ErrUDPMalformed, UDPMaxParams)
	}
	if n > 0 {
		p.Params = make([]UDPParam, n)
	}
	for i := range p.Params {
		pa := UDPParam{Name: r.name()}
		pa.Value = r.value()
		if r.bad || pa.Name == "" {
			return nil, fmt.Errorf("%w: param %d truncated, unnamed or of an unknown type", ErrUDPMalformed, i)
		}
		if i > 0 && p.Params[i-1].Name >= pa.Name {
			return nil, fmt.Errorf("%w: params must be sorted by unique name", ErrUDPMalformed)
		}
		p.Params[i] = pa
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the params", ErrUDPMalformed, len(r.b))
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

// value reads a type byte and its value; an unknown type sets bad.
func (r *udpReader) value() Value {
	switch Kind(r.byte()) {
	case KindInt:
		return Int(int64(r.uint64()))
	case KindFloat:
		return Float(unsigned(math.Float64frombits(r.uint64())))
	case KindString:
		b := r.bytes(int(r.uint16()))
		if !utf8.Valid(b) { // as the msgpack decoder refuses (a leaf would hash the raw bytes, a JSON reader U+FFFD)
			break
		}
		return String(string(b))
	case KindBool:
		switch r.byte() {
		case 0:
			return Bool(false)
		case 1:
			return Bool(true)
		}
	}
	r.bad = true
	return Value{}
}
