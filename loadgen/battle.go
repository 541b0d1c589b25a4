package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
)

// BattleConfig sizes a battle.
type BattleConfig struct {
	World   string
	Players int           // bots, each one goroutine
	Items   int           // items the bots race for
	Think   time.Duration // pause between a bot's actions (0: as fast as answers come)
	Seed    uint64        // seeds the bots' choices
}

// DefaultBattleConfig returns a small battle.
func DefaultBattleConfig() BattleConfig {
	return BattleConfig{World: "battle", Players: 32, Items: 8, Think: 5 * time.Millisecond, Seed: 1}
}

// BattleRules declares the battle world's fields.
func BattleRules() wire.Rules {
	return wire.Rules{Fields: map[string]wire.FieldRule{
		"x":         {Type: "int", Policy: wire.PolicyAuthoritative},
		"y":         {Type: "int", Policy: wire.PolicyAuthoritative},
		"hp":        {Type: "int", Policy: wire.PolicyCounter},
		"kills":     {Type: "int", Policy: wire.PolicyCounter},
		"owner":     {Type: "string", Policy: wire.PolicyAuthoritative},
		"inventory": {Type: "string", Policy: wire.PolicySet},
		"best":      {Type: "int", Policy: wire.PolicyMax},
	}}
}

// Stats counts a battle's outcomes; safe for concurrent use.
type Stats struct {
	Sent       atomic.Int64 // actions attempted
	Applied    atomic.Int64
	Conflicts  atomic.Int64
	Rejected   atomic.Int64
	Duplicates atomic.Int64 // answered as a repeat of an earlier attempt
	Failed     atomic.Int64 // gave up with an error (outcome possibly unknown)
	Incrs      atomic.Int64 // damage of acknowledged applied attacks
	MaybeIncrs atomic.Int64 // damage of attacks whose outcome stayed unknown
	LastOK     atomic.Int64 // unix nanos of the newest applied action

	mu  sync.Mutex
	lat []time.Duration
}

func (s *Stats) record(ev wire.Event, d time.Duration) {
	switch ev.Status {
	case wire.StatusApplied:
		s.Applied.Add(1)
		s.LastOK.Store(time.Now().UnixNano())
	case wire.StatusConflict:
		s.Conflicts.Add(1)
	default:
		s.Rejected.Add(1)
	}
	if ev.Duplicate {
		s.Duplicates.Add(1)
	}
	s.mu.Lock()
	s.lat = append(s.lat, d)
	s.mu.Unlock()
}

// Latencies returns a copy of every answered action's latency.
func (s *Stats) Latencies() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.lat...)
}

// Setup creates the battle world (an existing one is fine).
func Setup(ctx context.Context, c *client.Client, cfg BattleConfig) error {
	err := c.CreateWorld(ctx, cfg.World, BattleRules())
	if err != nil && client.Code(err) != wire.CodeWorldExists {
		return fmt.Errorf("create world %s: %w", cfg.World, err)
	}
	return nil
}

// RunBattle runs bots until ctx ends; it returns when every bot stopped.
func RunBattle(ctx context.Context, c *client.Client, cfg BattleConfig, st *Stats) error {
	if cfg.Players < 1 || cfg.Items < 1 || cfg.World == "" {
		return errors.New("loadgen: battle needs a world, players and items")
	}
	var wg sync.WaitGroup
	for i := 0; i < cfg.Players; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := &bot{id: "p" + strconv.Itoa(i), cfg: cfg, c: c, st: st,
				rng: rand.New(rand.NewPCG(cfg.Seed, uint64(i)))}
			b.run(ctx)
		}()
	}
	wg.Wait()
	return nil
}

type bot struct {
	id   string
	cfg  BattleConfig
	c    *client.Client
	st   *Stats
	rng  *rand.Rand
	seq  uint64
	held map[string]uint64 // item -> the version at which we took it
}

func (b *bot) run(ctx context.Context) {
	b.held = make(map[string]uint64)
	for ctx.Err() == nil {
		b.act(ctx, b.next())
		if b.cfg.Think > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(b.cfg.Think):
			}
		}
	}
}

// next picks the bot's next action: mostly moves, some attacks, pickups,
// drops and trades.
func (b *bot) next() client.ActionRequest {
	b.seq++
	a := client.ActionRequest{Player: b.id, Seq: b.seq, Priority: client.PriorityCritical}
	switch r := b.rng.IntN(100); {
	case r < 55:
		a.Priority = client.PriorityBulk
		a.Ops = []wire.Op{
			client.Set(b.id, "x", wire.Int(b.rng.Int64N(1000))),
			client.Set(b.id, "y", wire.Int(b.rng.Int64N(1000))),
		}
	case r < 80:
		target := "p" + strconv.Itoa(b.rng.IntN(b.cfg.Players))
		dmg := 1 + b.rng.Int64N(10)
		a.Ops = []wire.Op{client.Incr(target, "hp", -dmg), client.Set(b.id, "best", wire.Int(dmg))}
	case r < 95:
		for item, v := range b.held {
			if b.rng.IntN(2) == 0 {
				delete(b.held, item)
				a.Ops = []wire.Op{client.ExpectVersion(client.Delete(item), v)}
				return a
			}
		}
		item := "item" + strconv.Itoa(b.rng.IntN(b.cfg.Items))
		a.Ops = []wire.Op{client.ExpectVersion(client.Set(item, "owner", wire.String(b.id)), 0)}
	default:
		a.Ops = []wire.Op{client.Add(b.id, "inventory", wire.String("gem"+strconv.Itoa(b.rng.IntN(20))))}
	}
	return a
}

func (b *bot) act(ctx context.Context, a client.ActionRequest) {
	b.st.Sent.Add(1)
	start := time.Now()
	ev, err := b.c.Act(ctx, b.cfg.World, a)
	if err != nil {
		// Cut off by an error or by the end of the battle: the action may
		// or may not have been applied.
		b.st.Failed.Add(1)
		for _, op := range a.Ops {
			if op.Kind == wire.OpIncr {
				b.st.MaybeIncrs.Add(-op.By)
			}
		}
		return
	}
	b.st.record(ev, time.Since(start))
	if ev.Status != wire.StatusApplied {
		return
	}
	for _, op := range a.Ops {
		switch {
		case op.Kind == wire.OpIncr:
			b.st.Incrs.Add(-op.By)
		case op.Kind == wire.OpSet && op.Field == "owner":
			b.held[op.Entity] = ev.Versions[op.Entity]["owner"]
		}
	}
}
