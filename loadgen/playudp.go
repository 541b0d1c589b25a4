package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
)

// How the play scenario's bulk moves travel (PlayParams.BulkOver).
const (
	BulkOverWS  = "ws"  // play actions on each player's WebSocket
	BulkOverUDP = "udp" // datagrams on each connection's UDP input lane
)

// The UDP lane's counters on a node's /metrics (api/udp.go).
const (
	udpPacketsMetric = "gsd_udp_packets_total"
	udpActionsMetric = "gsd_udp_actions_total"
)

// udpSettle bounds the wait, after the last packet, for the nodes'
// counters to stop moving (packets still queued in the sockets, actions
// still being proposed).
const udpSettle = 3 * time.Second

// bulkOver returns the validated transport of the bulk moves.
func (pp PlayParams) bulkOver() (string, error) {
	switch pp.BulkOver {
	case "", BulkOverWS:
		return BulkOverWS, nil
	case BulkOverUDP:
		return BulkOverUDP, nil
	}
	return "", fmt.Errorf("loadgen: bulk moves go over %q or %q, not %q", BulkOverWS, BulkOverUDP, pp.BulkOver)
}

// takeSeq draws player i's next client seq, sent at intended (unix ns).
// One counter per player serves its WebSocket actions and its UDP packets:
// both are client seqs in the player's one idempotency space.
func (l *load) takeSeq(i int, intended int64) uint64 {
	pl := &l.players[i]
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.seq++
	pl.sent = append(pl.sent, intended)
	return pl.seq
}

// openUDP gives every player a sender over its connection's UDP lane,
// drawing its packets' seqs from the player's counter.
func (l *load) openUDP(players []*playPlayer) error {
	for i, pp := range players {
		in, err := pp.play.UDPInput(client.UDPOptions{NextSeq: func() uint64 {
			return l.takeSeq(i, time.Now().UnixNano())
		}})
		if err != nil {
			if errors.Is(err, client.ErrNoUDP) {
				return fmt.Errorf("play: player %d: %w (bulk over udp needs gsd --udp-addr on every node)", i, err)
			}
			return fmt.Errorf("play: player %d: %w", i, err)
		}
		pp.udp = in
	}
	return nil
}

// closeUDP closes the players' UDP senders.
func closeUDP(players []*playPlayer) {
	for _, pp := range players {
		if pp != nil && pp.udp != nil {
			_ = pp.udp.Close()
		}
	}
}

// udpMove sends player i's bulk move (its own position) as one packet;
// a packet is never answered, so it is counted when it left.
func (l *load) udpMove(pp *playPlayer, i int) {
	id := l.prefix + strconv.Itoa(i)
	l.bulkMu.Lock()
	x, y := l.bulkRng.Int64N(1000), l.bulkRng.Int64N(1000)
	l.bulkMu.Unlock()
	if _, err := pp.udp.Send(client.Input{Entity: id, Field: "x", Value: wire.Int(x)},
		client.Input{Entity: id, Field: "y", Value: wire.Int(y)}); err != nil {
		l.bulkFailed.Add(1)
		return
	}
	l.bulkSent.Add(1)
}

// udpCounts are the UDP lane's counters summed over the nodes: packets
// and actions by result.
type udpCounts struct {
	packets, actions map[string]float64
}

// received is the number of packets the nodes read, whatever their result.
func (c udpCounts) received() (n float64) {
	for _, v := range c.packets {
		n += v
	}
	return n
}

// scrapeAttempts is how often a node's /metrics is tried (an overloaded
// node may not answer within scrapeTimeout).
const (
	scrapeAttempts = 3
	scrapeTimeout  = 10 * time.Second
)

// scrapeUDP reads the UDP counters of every node.
func scrapeUDP(ctx context.Context, addrs []string) (udpCounts, error) {
	c := udpCounts{packets: map[string]float64{}, actions: map[string]float64{}}
	hc := &http.Client{Timeout: scrapeTimeout}
	var errs []error
	for _, a := range addrs {
		var err error
		for try := 0; try < scrapeAttempts && ctx.Err() == nil; try++ {
			one := udpCounts{packets: map[string]float64{}, actions: map[string]float64{}}
			if err = scrapeByResult(ctx, hc, a, map[string]map[string]float64{
				udpPacketsMetric: one.packets, udpActionsMetric: one.actions}); err == nil {
				c.add(one)
				break
			}
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return c, errors.Join(errs...)
}

// add adds o's counts to c's.
func (c udpCounts) add(o udpCounts) {
	for k, v := range o.packets {
		c.packets[k] += v
	}
	for k, v := range o.actions {
		c.actions[k] += v
	}
}

// scrapeByResult adds the samples of the named counters on a node's
// /metrics to into[name][value of their result label].
func scrapeByResult(ctx context.Context, hc *http.Client, addr string, into map[string]map[string]float64) error {
	return scanMetrics(ctx, hc, addr, func(l string) (bool, error) {
		name, rest, ok := strings.Cut(l, "{")
		m := into[name]
		if !ok || m == nil {
			return false, nil
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			return false, nil
		}
		_, result, ok := strings.Cut(labels, `result="`)
		if !ok {
			return false, nil
		}
		result, _, _ = strings.Cut(result, `"`)
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return false, fmt.Errorf("metrics of %s: %s: %w", addr, name, err)
		}
		m[result] += v
		return false, nil
	})
}

// settleUDP scrapes the nodes until their packet counters stop moving
// (or udpSettle passes) and returns the last complete counts.
func settleUDP(ctx context.Context, addrs []string) (udpCounts, error) {
	deadline := time.Now().Add(udpSettle)
	last, err := scrapeUDP(ctx, addrs)
	for err == nil && time.Now().Before(deadline) && ctx.Err() == nil {
		sleepCtx(ctx, 200*time.Millisecond)
		now, err := scrapeUDP(ctx, addrs)
		if err != nil {
			break // keep the last complete counts
		}
		stable := now.received() == last.received() && sum(now.actions) == sum(last.actions)
		last = now
		if stable {
			break
		}
	}
	return last, err
}

func sum(m map[string]float64) (n float64) {
	for _, v := range m {
		n += v
	}
	return n
}

// udpInto records the UDP figures of a bulk run: packets sent by the load
// generator, and what the nodes did with them (after − before).
func udpInto(r *Result, sent, sendErrors int64, secs float64, before, after udpCounts) {
	r.Counts["udp_packets_sent"] = sent
	r.Counts["udp_send_errors"] = sendErrors
	var received int64
	for _, res := range sortedKeys(after.packets) {
		d := int64(after.packets[res] - before.packets[res])
		received += d
		r.Counts["udp_packets_"+res] = d
	}
	r.Counts["udp_packets_received"] = received
	// Datagrams the kernel or the network dropped before gsd read them.
	r.Counts["udp_packets_lost"] = max(sent-received, 0)
	for _, res := range sortedKeys(after.actions) {
		r.Counts["udp_actions_"+res] = int64(after.actions[res] - before.actions[res])
	}
	if secs > 0 {
		r.Figures["udp_packets_sent_per_s"] = float64(sent) / secs
		r.Figures["udp_actions_applied_per_s"] = float64(r.Counts["udp_actions_applied"]) / secs
	}
	if sent > 0 {
		r.Figures["udp_accepted_ratio"] = float64(r.Counts["udp_packets_accepted"]) / float64(sent)
	}
	r.Notes = append(r.Notes, fmt.Sprintf("udp: %d packets sent, %d read by the nodes, %d accepted; %d actions applied (counted over the whole bulk run, warm-up included)",
		sent, received, r.Counts["udp_packets_accepted"], r.Counts["udp_actions_applied"]))
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
