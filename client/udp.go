package client

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gsd-dev/gsd/wire"
)

// The UDP input packet (docs/PROTOCOL.md, "UDP input lane"; wire.EncodeUDP).
const (
	// UDPMaxInputs bounds the inputs of one packet.
	UDPMaxInputs = wire.UDPMaxOps
	// UDPMaxPacketBytes is the largest packet a server takes by default.
	UDPMaxPacketBytes = wire.UDPMaxPacketBytes
	// UDPMaxParams bounds the params of one declared action sent over UDP.
	UDPMaxParams = wire.UDPMaxParams
)

var (
	// ErrNoUDP is returned when the server offers no UDP lane.
	ErrNoUDP = errors.New("gsd/client: the server has no UDP input lane")
	// ErrUDPInput is returned for inputs that cannot make a packet.
	ErrUDPInput = wire.ErrUDPInput
)

// UDPInfo is a play connection's UDP lane: the welcome's udp object. The
// key is valid while that connection lasts.
type UDPInfo = wire.UDPInfo

// udpLane resolves the welcome's udp object against the node the play
// connection reached: an unspecified host means that node's host.
func udpLane(info *UDPInfo, base string) *UDPInfo {
	if info == nil {
		return nil
	}
	out := *info
	host, port, err := net.SplitHostPort(info.Addr)
	if err != nil {
		return &out
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		if u, err := url.Parse(base); err == nil && u.Hostname() != "" {
			out.Addr = net.JoinHostPort(u.Hostname(), port)
		}
	}
	return &out
}

// UDP returns the UDP lane of the current connection, nil when there is
// none (the server has no lane, or the Play is between connections).
func (p *Play) UDP() *UDPInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.udp == nil {
		return nil
	}
	info := *p.udp
	return &info
}

// Input is the latest value of one field, sent as a set over UDP.
type Input struct {
	Entity string
	Field  string
	Value  wire.Value
}

// UDPOptions configures a UDPInput.
type UDPOptions struct {
	// NextSeq returns the seq of the next packet. It is also the client
	// seq of the action the server makes of it, so a player that sends
	// actions over the WebSocket or HTTP too must draw both from one
	// increasing counter. Default: the UDPInput's own counter from 1.
	NextSeq func() uint64
}

// UDPInput sends a player's unreliable input (movement, aim) over the UDP
// lane of a play session: each packet carries the absolute latest values,
// is never answered or retried, and the server drops it if a packet with
// a later seq already set the same field. Events still come over the
// WebSocket. Safe for concurrent use.
type UDPInput struct {
	p       *Play // nil: a fixed key
	nextSeq func() uint64
	counter atomic.Uint64

	mu    sync.Mutex
	info  UDPInfo
	keyID []byte
	key   []byte
	conn  net.Conn
}

// UDPInput returns a sender over the Play's UDP lane. It follows the Play
// across resumes (each connection has its own key). ErrNoUDP when the
// current connection has no lane.
func (p *Play) UDPInput(opts UDPOptions) (*UDPInput, error) {
	info := p.UDP()
	if info == nil {
		return nil, ErrNoUDP
	}
	u := newUDPInput(opts)
	u.p = p
	if err := u.use(*info); err != nil {
		return nil, err
	}
	return u, nil
}

// NewUDPInput returns a sender with a fixed lane and key, as a welcome's
// udp object gave them (Addr must name a host).
func NewUDPInput(info UDPInfo, opts UDPOptions) (*UDPInput, error) {
	u := newUDPInput(opts)
	if err := u.use(info); err != nil {
		return nil, err
	}
	return u, nil
}

func newUDPInput(opts UDPOptions) *UDPInput {
	u := &UDPInput{nextSeq: opts.NextSeq}
	if u.nextSeq == nil {
		u.nextSeq = func() uint64 { return u.counter.Add(1) }
	}
	return u
}

// use switches to info's key, and its address if it changed. Under mu, or
// before u is shared.
func (u *UDPInput) use(info UDPInfo) error {
	id, err := base64.StdEncoding.DecodeString(info.KeyID)
	if err != nil || len(id) != wire.UDPKeyIDLen {
		return fmt.Errorf("%w: key_id must be base64 of %d bytes", ErrUDPInput, wire.UDPKeyIDLen)
	}
	key, err := base64.StdEncoding.DecodeString(info.Key)
	if err != nil || len(key) != wire.UDPKeyLen {
		return fmt.Errorf("%w: key must be base64 of %d bytes", ErrUDPInput, wire.UDPKeyLen)
	}
	if u.conn == nil || info.Addr != u.info.Addr {
		c, err := net.Dial("udp", info.Addr)
		if err != nil {
			return fmt.Errorf("gsd/client: udp lane %s: %w", info.Addr, err)
		}
		if u.conn != nil {
			u.conn.Close()
		}
		u.conn = c
	}
	u.info, u.keyID, u.key = info, id, key
	return nil
}

// SendInput sends one field's latest value; it returns the packet's seq.
func (u *UDPInput) SendInput(entity, field string, v wire.Value) (uint64, error) {
	return u.Send(Input{Entity: entity, Field: field, Value: v})
}

// Send sends the latest values of up to UDPMaxInputs fields in one packet,
// stamped with the current time as the input time; it returns the
// packet's seq. A nil error means the packet left, not that it arrived.
// A world that declares actions takes such raw sets only on fields its
// rules let the player write: send its declared actions with SendAction.
func (u *UDPInput) Send(inputs ...Input) (uint64, error) {
	return u.send(func(seq uint64, inputTime int64) ([]byte, error) {
		return encodeUDP(u.keyID, u.key, seq, inputTime, inputs)
	})
}

// SendAction sends one call of the world's declared action name with its
// params (at most UDPMaxParams) in one packet, stamped with the current
// time as the input time; it returns the packet's seq. Every replica
// validates it as the same action sent over the WebSocket; the server
// keeps only the newest call of each action that has not been proposed
// yet, so send what may be lost or replaced (movement, aim).
func (u *UDPInput) SendAction(name string, params map[string]wire.Value) (uint64, error) {
	return u.send(func(seq uint64, inputTime int64) ([]byte, error) {
		return encodeUDPAction(u.keyID, u.key, seq, inputTime, name, params)
	})
}

// send draws a seq and sends the packet encode makes of it.
func (u *UDPInput) send(encode func(seq uint64, inputTime int64) ([]byte, error)) (uint64, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.p != nil {
		info := u.p.UDP()
		if info == nil {
			return 0, fmt.Errorf("%w: the play session is not connected", ErrNoUDP)
		}
		if info.KeyID != u.info.KeyID || info.Addr != u.info.Addr {
			if err := u.use(*info); err != nil {
				return 0, err
			}
		}
	}
	if u.conn == nil {
		return 0, net.ErrClosed
	}
	seq := u.nextSeq()
	b, err := encode(seq, time.Now().UnixNano())
	if err != nil {
		return 0, err
	}
	if _, err := u.conn.Write(b); err != nil {
		return 0, fmt.Errorf("gsd/client: udp send: %w", err)
	}
	return seq, nil
}

// Close closes the sender's socket.
func (u *UDPInput) Close() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.conn == nil {
		return nil
	}
	err := u.conn.Close()
	u.conn = nil
	return err
}

// encodeUDP builds one tagged packet.
func encodeUDP(keyID, key []byte, seq uint64, inputTime int64, inputs []Input) ([]byte, error) {
	p := wire.UDPPacket{Seq: seq, InputTime: inputTime, Ops: make([]wire.Op, len(inputs))}
	copy(p.KeyID[:], keyID)
	for i, in := range inputs {
		p.Ops[i] = wire.Op{Kind: wire.OpSet, Entity: in.Entity, Field: in.Field, Value: in.Value}
	}
	return wire.EncodeUDP(key, &p)
}

// encodeUDPAction builds one tagged packet of a declared action.
func encodeUDPAction(keyID, key []byte, seq uint64, inputTime int64, name string, params map[string]wire.Value) ([]byte, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: an action name is needed", ErrUDPInput)
	}
	p := wire.UDPPacket{Seq: seq, InputTime: inputTime, Action: name, Params: make([]wire.UDPParam, 0, len(params))}
	copy(p.KeyID[:], keyID)
	for n, v := range params {
		p.Params = append(p.Params, wire.UDPParam{Name: n, Value: v}) // EncodeUDP sorts them
	}
	return wire.EncodeUDP(key, &p)
}
