package fsm

// The event archive's encoding of one committed event (codec.go holds
// the log's).

// EncodeEvent encodes an event for the event archive.
func EncodeEvent(ev *Event) []byte {
	return AppendEvent(make([]byte, 0, 64+32*len(ev.Changes)), ev)
}

// AppendEvent appends EncodeEvent's encoding of ev to b.
func AppendEvent(b []byte, ev *Event) []byte {
	e := encoder{b: b}
	e.str(ev.World)
	e.uvarint(ev.Seq)
	e.uvarint(ev.Index)
	e.varint(ev.Time)
	e.str(ev.Player)
	e.uvarint(ev.ClientSeq)
	e.byte(byte(ev.Priority))
	e.byte(byte(ev.Status))
	e.str(ev.Reason)
	e.uvarint(uint64(len(ev.Changes)))
	for _, c := range ev.Changes {
		e.str(c.Entity)
		e.str(c.Field)
		e.byte(byte(c.Op))
		e.value(c.Value)
		e.uvarint(uint64(len(c.Set)))
		for _, v := range c.Set {
			e.value(v)
		}
		e.uvarint(c.Version)
		e.bool(c.Exists)
	}
	if ev.Notice != nil {
		e.notice(ev.Notice)
	}
	if ev.Salted != nil {
		e.salting(ev.Salted)
	}
	return e.b
}

// DecodeEvent decodes what EncodeEvent wrote.
func DecodeEvent(p []byte) (*Event, error) {
	d := decoder{b: p}
	ev := &Event{World: d.str(), Seq: d.uvarint(), Index: d.uvarint(), Time: d.varint(), Player: d.str(),
		ClientSeq: d.uvarint(), Priority: Priority(d.byte()), Status: Status(d.byte()), Reason: d.str()}
	n := d.count(7)
	if n > 0 {
		ev.Changes = make([]Change, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		c := Change{Entity: d.str(), Field: d.str(), Op: OpKind(d.byte()), Value: d.value()}
		if m := d.count(1); m > 0 {
			c.Set = make([]Value, m)
			for j := range c.Set {
				c.Set[j] = d.value()
			}
		}
		c.Version = d.uvarint()
		c.Exists = d.bool()
		ev.Changes[i] = c
	}
	if d.err == nil && len(d.b) != 0 && d.b[0] != saltingFlag {
		ev.Notice = d.notice()
	}
	if d.err == nil && len(d.b) != 0 && d.b[0] == saltingFlag {
		ev.Salted = d.salting()
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	return ev, nil
}
