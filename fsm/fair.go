package fsm

import (
	"fmt"
	"time"
)

// Fairness is a world's opt-in fair resolution of contested critical
// actions. The FSM only stores it (replicated with the world's rules); the
// leader's batcher acts on it: it holds a fair world's critical actions for
// up to Window from the first one, then proposes them ordered by client
// input time (bounded by MaxLag), player and seq. The FSM still applies log
// order, so every replica agrees.
type Fairness struct {
	// Window is how long the leader holds a fair world's critical actions
	// before proposing them in input-time order; 0: the world is not fair.
	Window time.Duration
	// MaxLag bounds lag compensation: an input time older than arrival -
	// MaxLag counts as arrival - MaxLag (one in the future as arrival).
	// 0 means Window.
	MaxLag time.Duration
}

// Bounds of a world's fairness settings.
const (
	MaxFairWindow = time.Second
	MaxFairLag    = 10 * time.Second
)

// Enabled reports whether the world's critical actions are held.
func (f Fairness) Enabled() bool { return f.Window > 0 }

// Lag returns the effective lag-compensation bound.
func (f Fairness) Lag() time.Duration {
	if f.MaxLag == 0 {
		return f.Window
	}
	return f.MaxLag
}

func (f Fairness) validate() error {
	if f.Window < 0 || f.Window > MaxFairWindow {
		return fmt.Errorf("%w: fair_window must be 0..%s", ErrMalformed, MaxFairWindow)
	}
	if f.MaxLag < 0 || f.MaxLag > MaxFairLag {
		return fmt.Errorf("%w: max_lag_compensation must be 0..%s", ErrMalformed, MaxFairLag)
	}
	if f.MaxLag > 0 && f.Window == 0 {
		return fmt.Errorf("%w: max_lag_compensation needs a fair_window", ErrMalformed)
	}
	return nil
}

// parseFairness reads the JSON duration strings ("" is 0).
func parseFairness(window, lag string) (Fairness, error) {
	var f Fairness
	for _, x := range []struct {
		name, s string
		d       *time.Duration
	}{{"fair_window", window, &f.Window}, {"max_lag_compensation", lag, &f.MaxLag}} {
		if x.s == "" {
			continue
		}
		d, err := time.ParseDuration(x.s)
		if err != nil {
			return Fairness{}, fmt.Errorf("%w: %s: %v", ErrMalformed, x.name, err)
		}
		*x.d = d
	}
	return f, nil
}

// durationString is the JSON form of a setting ("" for 0, omitted).
func durationString(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// Fair returns a world's fairness settings without taking the FSM's lock
// (the batcher asks for every critical action and must not wait for an
// Apply in progress). It is zero for a world that does not exist or is not
// fair.
func (f *FSM) Fair(world string) Fairness {
	return (*f.view.Load())[world].fair
}
