package fsm

import "fmt"

// Batched acks: an edge node replicates the acks of all its play
// connections in one CmdSessionAcks command per interval, instead of one
// CmdSessionAck per connection. The command is a list of independent acks:
// each one whose session exists (and whose seq its world has reached)
// applies like a CmdSessionAck; the others are skipped, because a session
// that a bye, a kick or another node closed meanwhile must not fail the
// acks of the rest. Only a malformed command (no acks, too many, a bad
// name) is refused as a whole, before anything changes.

// MaxSessionAcks bounds the acks of one CmdSessionAcks command; the decoder
// refuses more.
const MaxSessionAcks = 1024

// SessionAck is one session's ack in a CmdSessionAcks command: the last
// event seq of World the session's client processed.
type SessionAck struct {
	World string
	ID    string
	Seq   uint64
}

// ValidateAcks checks a CmdSessionAcks payload's shape: 1..MaxSessionAcks
// acks with valid world and session names. It does not look at state.
func ValidateAcks(acks []SessionAck) error {
	if len(acks) == 0 || len(acks) > MaxSessionAcks {
		return fmt.Errorf("%w: a batch of acks holds 1..%d acks, got %d", ErrMalformed, MaxSessionAcks, len(acks))
	}
	for i := range acks {
		if err := checkName("world", acks[i].World); err != nil {
			return fmt.Errorf("ack %d: %w", i, err)
		}
		if err := checkName("session", acks[i].ID); err != nil {
			return fmt.Errorf("ack %d: %w", i, err)
		}
	}
	return nil
}

// applyAcks applies a CmdSessionAcks command at leader time now, in list
// order: for each ack whose world (not fenced) and session exist and whose
// seq is at most the world's seq, the session's acked becomes
// max(acked, seq) and its seen now. Result.Acked counts them; the others
// are skipped.
func (f *FSM) applyAcks(now int64, acks []SessionAck) Result {
	if err := ValidateAcks(acks); err != nil {
		return Result{Err: err}
	}
	n := 0
	for i := range acks {
		a := &acks[i]
		w := f.worlds[a.World]
		if w == nil || w.moved != nil {
			continue
		}
		old := w.sessions[a.ID]
		if old == nil || a.Seq > w.seq {
			continue
		}
		s := *old
		s.acked, s.seen = max(s.acked, a.Seq), now
		w.putSession(&s)
		// The hash point of the world's current seq follows its sessions
		// (as for a single ack); recording it again for a later ack of the
		// same world overwrites the same point.
		w.recordHash(f.cfg.HashHistory)
		n++
	}
	return Result{Acked: n}
}

// encoding (in batches)

func (e *encoder) sessionAcks(acks []SessionAck) {
	e.uvarint(uint64(len(acks)))
	for i := range acks {
		e.str(acks[i].World)
		e.str(acks[i].ID)
		e.uvarint(acks[i].Seq)
	}
}

func (d *decoder) sessionAcks() []SessionAck {
	// An ack takes at least 3 bytes: two empty names and a seq.
	n := d.count(3)
	if n > MaxSessionAcks {
		d.fail("%d acks in one command, over %d", n, MaxSessionAcks)
		return nil
	}
	var acks []SessionAck
	if n > 0 {
		acks = make([]SessionAck, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		acks[i] = SessionAck{World: d.str(), ID: d.str(), Seq: d.uvarint()}
	}
	return acks
}
