package spectator

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/internal/golden"
	"github.com/stretchr/testify/require"
)

// TestGoldenReplayFrames pins what replays produce, byte for byte: the
// keyframes and deltas of several views (the public one, a team's coach,
// a player, one that sees everything) of a seeded random battle, replayed
// with seeks and advances of varied sizes (many events per step, none,
// one), each frame followed by the replayed state's entity hash; then a
// replay file (Record) of the same battle. The battle has moves, counters,
// sets, deletes, items changing owner and players changing team, under
// rules that restrict fields and under rules that restrict nothing (the
// replay bench's). A replay made faster must make the same bytes.
func TestGoldenReplayFrames(t *testing.T) {
	var out bytes.Buffer
	for _, restricted := range []bool{true, false} {
		fd, rules, a, end := goldenBattle(t, restricted)
		fmt.Fprintf(&out, "# restricted %v\n", restricted)
		views := []View{{}, {sees: 0xff}}
		if restricted {
			views = append(views, resolve(t, a, Viewer{Team: "red"}), resolve(t, a, Viewer{Player: "p1", Team: "blue"}),
				resolve(t, a, Viewer{Class: "caster"}))
		}
		for vi, view := range views {
			fmt.Fprintf(&out, "# view %d\n", vi)
			goldenReplay(t, &out, fd, rules, a, view, end)
		}
		r, err := NewReplay(ReplayConfig{World: "w", Access: a, Subscribe: fd.subscribe}, views[len(views)-1])
		require.NoError(t, err)
		fmt.Fprintf(&out, "# record\n")
		require.NoError(t, Record(context.Background(), r, &out, time.Unix(0, t0+20*int64(time.Second)),
			time.Unix(0, end), 7*time.Second))
	}
	golden.Text(t, "replay_frames.ndjson", out.Bytes())
}

// goldenReplay replays view through the battle in steps of varied size
// and writes each frame and the entity hash after it.
func goldenReplay(t *testing.T, out *bytes.Buffer, fd *feed, rules fsm.Rules, a *Access, view View, end int64) {
	t.Helper()
	ctx := context.Background()
	r, err := NewReplay(ReplayConfig{World: "w", Access: a, Subscribe: fd.subscribe}, view)
	require.NoError(t, err)
	write := func(f *Frame) {
		if f == nil {
			out.WriteString("nil\n")
		} else {
			out.Write(f.Data)
			out.WriteByte('\n')
		}
		h, err := r.tk.State().EntityHash(rules)
		require.NoError(t, err)
		fmt.Fprintf(out, "hash %d %d\n", r.Seq(), h)
	}
	f, err := r.SeekSeq(ctx, 5)
	require.NoError(t, err)
	write(f)
	rnd := rand.New(rand.NewPCG(7, 13))
	at := t0 + 5*int64(time.Second)
	for i := 0; at < end; i++ {
		if i%17 == 16 { // a seek forward now and then
			f, err = r.SeekSeq(ctx, r.Seq()+uint64(rnd.IntN(30)))
			if err != nil {
				require.ErrorIs(t, err, ErrNotReached)
			}
			write(f)
			at = r.tk.State().Time()
			continue
		}
		at += int64(rnd.IntN(12)) * int64(time.Second) / 2
		f, err = r.Advance(ctx, time.Unix(0, at))
		require.NoError(t, err)
		write(f)
	}
}

// goldenBattle plays a seeded random battle on a real FSM and returns
// its feed, rules, access and last leader time.
func goldenBattle(t *testing.T, restricted bool) (*feed, fsm.Rules, *Access, int64) {
	t.Helper()
	fields := map[string]fsm.FieldRule{
		"x":     {Type: fsm.KindInt, Policy: fsm.PolicyAuthoritative},
		"hp":    {Type: fsm.KindInt, Policy: fsm.PolicyCounter},
		"side":  {Type: fsm.KindString, Policy: fsm.PolicyAuthoritative},
		"owner": {Type: fsm.KindString, Policy: fsm.PolicyAuthoritative},
	}
	rules := fsm.Rules{Fields: fields}
	if restricted {
		rules.Schema = fsm.Schema{
			Access: map[string]fsm.FieldAccess{"plan": {Visible: "team"}, "ammo": {Visible: "owner"},
				"trap": {Visible: "hidden"}, "cam": {Visible: "casters"}},
			Teams:   fsm.TeamRule{From: "field", Key: "side"},
			Viewers: map[string]fsm.ViewerRule{"caster": {Sees: []string{"casters", "hidden"}}},
		}
	}
	a, err := NewAccess(rules)
	require.NoError(t, err)
	g := newGame(t, "w", fields)
	fd := newFeed()
	rnd := rand.New(rand.NewPCG(1, 2))
	players := []string{"p0", "p1", "p2", "p3", "p4", "p5"}
	sides := []string{"red", "blue"}
	for i := range 300 {
		p := players[rnd.IntN(len(players))]
		item := fmt.Sprintf("item%d", rnd.IntN(4))
		var ops []fsm.Op
		switch k := rnd.IntN(12); {
		case i < len(players):
			p = players[i]
			ops = []fsm.Op{set(p, "side", fsm.String(sides[i%2])), set(p, "x", fsm.Int(int64(i)))}
		case k < 4:
			ops = []fsm.Op{set(p, "x", fsm.Int(rnd.Int64N(100))), set(p, "y", fsm.Float(float64(rnd.IntN(100))/4))}
		case k == 4:
			ops = []fsm.Op{incr(players[rnd.IntN(len(players))], "hp", -rnd.Int64N(5)), incr(p, "shots", 1)}
		case k == 5:
			ops = []fsm.Op{add(p, "tags", fsm.String(fmt.Sprintf("t%d", rnd.IntN(5)))),
				remove(p, "tags", fsm.String(fmt.Sprintf("t%d", rnd.IntN(5))))}
		case k == 6:
			ops = []fsm.Op{set(p, "plan", fsm.String(fmt.Sprintf("plan %d", i))), set(p, "ammo", fsm.Int(int64(i)))}
		case k == 7:
			ops = []fsm.Op{set(p, "trap", fsm.Bool(i%2 == 0)), set(p, "cam", fsm.String("wide"))}
		case k == 8:
			ops = []fsm.Op{set(item, "owner", fsm.String(p)), set(item, "kind", fsm.String("sword"))}
		case k == 9:
			ops = []fsm.Op{del(item)}
		case k == 10:
			ops = []fsm.Op{set(p, "side", fsm.String(sides[rnd.IntN(2)]))}
		default:
			ops = []fsm.Op{set(p, "x", fsm.Int(1)), set(p, "x", fsm.Int(2)), del(item), set(item, "owner", fsm.String(p))}
		}
		g.seqs[p]++
		r := g.apply(fsm.Command{Kind: fsm.CmdAction, Action: &fsm.Action{World: "w", Player: p, Seq: g.seqs[p], Ops: ops}})
		require.NoError(t, r.Err)
		if r.Event != nil {
			fd.push(r.Event)
		}
	}
	return fd, rules, a, g.time
}
