package watch

import (
	"errors"
	"fmt"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/spectator"
)

// Defaults of a SegmentConfig (package spectator's).
const (
	DefaultSegmentDuration = spectator.DefaultSegmentDuration
	DefaultSegmentKeep     = spectator.DefaultSegmentKeep
	DefaultSegmentIdle     = spectator.DefaultSegmentIdle
	DefaultSegmenters      = spectator.DefaultSegmenters
)

// SegmentConfig configures the segmented HTTP variant of the watch route
// (spectator.SegmentConfig: the cutting is package spectator's, shared
// with relays).
type SegmentConfig = spectator.SegmentConfig

// DefaultSegmentConfig returns a SegmentConfig with the defaults.
func DefaultSegmentConfig() SegmentConfig { return spectator.DefaultSegmentConfig() }

// cutterFor returns the running cutter of key under rules, starting it
// when none runs: it stops when the world's rules change (checkRules).
func (s *Service) cutterFor(key spectator.SegmentKey, rules edge.RulesRef) (*spectator.Cutter, error) {
	s.segMu.Lock()
	segs := s.segs
	s.segMu.Unlock()
	c, err := segs.Cutter(key, rules, func() error { return s.checkRules(key.World, rules) })
	if errors.Is(err, spectator.ErrSegmentsFull) {
		return nil, fmt.Errorf("%w: this node cuts %v", edge.ErrUnavailable, err)
	}
	return c, err
}

// checkRules ends the world's pipelines and its cutters when the world's
// rules changed since rules (ErrRulesChanged).
func (s *Service) checkRules(world string, rules edge.RulesRef) error {
	if now, ok := s.vis.RulesVersion(world, rules); !ok || now != rules {
		s.hub.RulesChanged(world)
		return spectator.ErrRulesChanged
	}
	return nil
}

// closeSegmenters stops every cutter and waits for them.
func (s *Service) closeSegmenters() {
	s.segMu.Lock()
	segs := s.segs
	s.segMu.Unlock()
	segs.Close()
}
