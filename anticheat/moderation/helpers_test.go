package moderation

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fsmGroup is a Group over a real FSM, one command per log entry; fail,
// when set, answers instead of the FSM.
type fsmGroup struct {
	mu    sync.Mutex
	f     *fsm.FSM
	index uint64
	fail  func(a *fsm.Action) error
	// answer, when set and not nil for an action, is its event instead
	// of the FSM's.
	answer    func(a *fsm.Action) *fsm.Event
	createErr error
	acts      int
}

func newFSMGroup(t testing.TB) *fsmGroup {
	t.Helper()
	f, err := fsm.New(fsm.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return &fsmGroup{f: f}
}

func (g *fsmGroup) apply(c fsm.Command) fsm.Result {
	g.index++
	return g.f.ApplyBatch(g.index, &fsm.Batch{Time: int64(g.index) * 1e9, Commands: []fsm.Command{c}})[0]
}

func (g *fsmGroup) Act(_ context.Context, a *fsm.Action) (*fsm.Event, bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.acts++
	if g.fail != nil {
		if err := g.fail(a); err != nil {
			return nil, false, err
		}
	}
	if g.answer != nil {
		if ev := g.answer(a); ev != nil {
			return ev, false, nil
		}
	}
	r := g.apply(fsm.Command{Kind: fsm.CmdAction, Action: a})
	return r.Event, r.Duplicate, r.Err
}

func (g *fsmGroup) World(id string) (fsm.WorldInfo, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.f.World(id)
}

func (g *fsmGroup) CreateWorld(_ context.Context, id string, rules fsm.Rules) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.createErr != nil {
		return g.createErr
	}
	return g.apply(fsm.Command{Kind: fsm.CmdCreateWorld, World: &fsm.WorldSpec{ID: id, Rules: rules}}).Err
}

// record reads id from the FSM.
func (g *fsmGroup) record(t testing.TB, id string) Record {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	v, err := g.f.Entity(World, id)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Decode(v)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var errDown = errors.New("leader down")
