package play

import (
	"fmt"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// udpWindowBits is the width of a key's replay window.
const udpWindowBits = 1024

// decodeUDP decodes a packet's fields (not its tag, which the caller has
// checked): wire's decoding, then the action's own checks on names,
// strings and floats. Every op is a set of a valid value on valid names;
// a declared action has a valid name and params.
func decodeUDP(b []byte) (*wire.UDPPacket, error) {
	p, err := wire.DecodeUDP(b)
	if err != nil {
		return nil, err
	}
	a := fsm.Action{World: "w", Player: "p", Seq: p.Seq, Priority: fsm.PriorityBulk, Ops: p.Ops,
		Name: p.Action, Params: udpParams(p)}
	if err := a.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", wire.ErrUDPMalformed, err)
	}
	return p, nil
}

// udpParams are a packet's params as an action's (both sorted by name).
func udpParams(p *wire.UDPPacket) []fsm.Param {
	if len(p.Params) == 0 {
		return nil
	}
	out := make([]fsm.Param, len(p.Params))
	for i, pa := range p.Params {
		out[i] = fsm.Param{Name: pa.Name, Value: pa.Value}
	}
	return out
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
