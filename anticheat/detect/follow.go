package detect

import (
	"context"

	"github.com/gsd-dev/gsd/fanout"
)

// Follow observes the events sub returns until ctx ends or the feed
// fails, and after every read that brings the events since the last
// evaluation to Config.Every or more, evaluates and hands the new flags to
// sink. It returns the error that ended it (ctx's when cancelled).
func (d *Detector) Follow(ctx context.Context, sub fanout.Subscription, sink Sink) error {
	n := 0
	for {
		evs, err := sub.Next(ctx)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			d.Observe(ev)
		}
		n += len(evs)
		if n < d.cfg.Every {
			continue
		}
		n = 0
		for _, f := range d.Evaluate() {
			sink.Flag(f)
		}
	}
}
