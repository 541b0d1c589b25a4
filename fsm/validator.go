package fsm

// Validator checks an action against game rules before it applies, on every
// replica, inside Apply. It must be deterministic: decide only from the view,
// the action and the leader time, never from clocks, randomness or I/O.
// Validators are injected (anticheat implements them); fsm never imports them.
type Validator interface {
	// Validate returns nil to accept the action, or an error to reject it.
	// An error with a Code() string method gives the event's reason code.
	Validate(v View, a *Action, leaderTime int64) error
}

// View is the read-only state a Validator may consult.
type View interface {
	// Field returns a field's current plain value and version.
	Field(entity, field string) (Value, uint64, bool)
	// Seq returns the world's current seq.
	Seq() uint64
}

type worldView struct{ w *world }

func (v worldView) Field(entity, name string) (Value, uint64, bool) {
	e := v.w.entities[entity]
	if e == nil {
		return Value{}, 0, false
	}
	f := e.get(name)
	if f == nil {
		return Value{}, 0, false
	}
	return f.current(), f.version, true
}

func (v worldView) Seq() uint64 { return v.w.seq }

// Contains reports whether a set field holds x (for expressions).
func (v worldView) Contains(entity, name string, x Value) bool {
	e := v.w.entities[entity]
	if e == nil {
		return false
	}
	f := e.get(name)
	return f != nil && f.set != nil && f.set.Contains(x)
}

func rejectionCode(err error) string {
	if c, ok := err.(interface{ Code() string }); ok && c.Code() != "" {
		return c.Code()
	}
	return CodeValidator
}
