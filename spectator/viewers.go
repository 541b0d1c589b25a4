package spectator

// A pipeline's viewers: joining (a keyframe, then what the view got
// since), leaving, what they are sent, and the counts of it.

import "sync/atomic"

// Member is one viewer of a pipeline.
type Member struct {
	key     viewKey
	ch      chan *Frame
	lagging bool // under the pipeline's lock
	frames  int  // queued to it, under the pipeline's lock
	bytes   int
	// inFlight: frames its writer took from ch but has not written to
	// the socket yet (InFlight); they count as queued.
	inFlight atomic.Int32
}

// InFlight is the count of the frames the viewer's writer took from
// Frames but has not yet written to its socket (a corked batch's,
// internal/wscork.Batch keeps it): the pipeline counts them as still
// queued, so that a writer that takes its whole queue into one batch does
// not let its viewer fall further behind before skipping to a keyframe
// than one that writes frame by frame (the queue's bound, plus the one
// frame being written).
func (m *Member) InFlight() *atomic.Int32 { return &m.inFlight }

// room returns how many more frames m's queue may take: its capacity,
// less what is queued and what its writer holds in flight. It reads the
// queue first, then the count, in two statements (the order of the
// operands of one expression is not the language's to promise): the
// writer counts a frame before it takes it from the queue
// (internal/wscork.Batch), so a frame is seen queued, in flight, or for
// an instant in both (one frame less room: a viewer within a frame of its
// bound may skip to a keyframe one frame early, never late), but never in
// neither, which would let the queue pass its bound.
func (m *Member) room() int {
	queued := len(m.ch)
	held := int(m.inFlight.Load())
	return cap(m.ch) - queued - held
}

// Stats counts a pipeline's work, for metrics and the bench: frames
// encoded (once per view) and their bytes, frames queued to viewers and
// their bytes (what viewers are sent, per-viewer bytes/s over time), and
// how often a viewer fell behind and was skipped to a keyframe.
type Stats struct {
	Encoded, EncodedBytes int
	Queued, QueuedBytes   int
	Skips                 int
}

// Stats returns the pipeline's counts so far.
func (p *Pipeline) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Sent returns how many frames and bytes were queued to the viewer.
func (p *Pipeline) Sent(m *Member) (frames, bytes int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return m.frames, m.bytes
}

// queueLocked puts f on m's queue, which has room.
func (p *Pipeline) queueLocked(m *Member, f *Frame) {
	m.ch <- f
	m.frames++
	m.bytes += len(f.Data)
	p.stats.Queued++
	p.stats.QueuedBytes += len(f.Data)
}

// Frames returns the viewer's frames: a keyframe first, then deltas and,
// after it fell behind, keyframes again. It is closed by Leave and when
// the pipeline stops.
func (m *Member) Frames() <-chan *Frame { return m.ch }

// sendLocked offers f to the view's viewers without blocking; one without
// room skips it and waits for a keyframe.
func (p *Pipeline) sendLocked(vs *viewState, f *Frame) {
	for m := range vs.members {
		if m.lagging {
			continue
		}
		if m.room() <= 0 {
			m.lagging = true
			p.stats.Skips++
			continue
		}
		p.queueLocked(m, f)
	}
}

// Join adds a viewer of view (from Access.Resolve, whose delay must be the
// pipeline's: a caller keeps a pipeline per delay). Its channel starts
// with the view's latest keyframe and the deltas since, or, when those do
// not fit its queue, with a keyframe made now. After the pipeline stopped,
// Join returns its error.
func (p *Pipeline) Join(view View) (*Member, error) { return p.join(viewKey{view: view}) }

// JoinEvents is Join for a viewer that gets, after its keyframe, every
// event as its view may see it (Filter.Event), one wire.Events frame per
// tick, instead of deltas: a delayed, filtered event stream.
func (p *Pipeline) JoinEvents(view View) (*Member, error) {
	return p.join(viewKey{view: view, events: true})
}

func (p *Pipeline) join(key viewKey) (*Member, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return nil, p.err
	}
	view := key.view
	if key.events {
		p.ticker.KeepEvents()
	}
	vs := p.views[key]
	if vs == nil {
		k, err := p.keyframeLocked(key)
		if err != nil {
			return nil, err
		}
		vs = &viewState{members: make(map[*Member]struct{}), key: k, cur: k}
		p.views[key] = vs
	}
	m := &Member{key: key, ch: make(chan *Frame, p.cfg.Queue)}
	aggs, err := p.aggsFor(view)
	if err != nil {
		return nil, err
	}
	if len(vs.since)+1+len(aggs) > p.cfg.Queue {
		k, err := p.keyframeLocked(key)
		if err != nil {
			return nil, err
		}
		vs.key, vs.since, vs.cur = k, nil, k
	}
	p.queueLocked(m, vs.key)
	for _, f := range vs.since {
		p.queueLocked(m, f)
	}
	for _, f := range aggs {
		p.queueLocked(m, f)
	}
	vs.members[m] = struct{}{}
	return m, nil
}

// Leave removes a viewer and closes its channel; a view without viewers
// is forgotten.
func (p *Pipeline) Leave(m *Member) {
	p.mu.Lock()
	defer p.mu.Unlock()
	vs := p.views[m.key]
	if vs == nil {
		return
	}
	if _, ok := vs.members[m]; !ok {
		return
	}
	delete(vs.members, m)
	close(m.ch)
	if len(vs.members) == 0 {
		delete(p.views, m.key)
	}
}

// Viewers returns how many viewers the pipeline serves.
func (p *Pipeline) Viewers() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, vs := range p.views {
		n += len(vs.members)
	}
	return n
}
