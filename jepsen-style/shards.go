package jepsen

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sharded runs (Scenario.Shards): where the worlds go and the check that
// both groups were written through.

// shardWorlds places the workload's worlds on a sharded cluster's groups:
// w0 and the preload's world on group 0, w1 on the last group, so every
// run writes to two groups.
func shardWorlds(shards int) map[string]uint64 {
	if shards < 2 {
		return nil
	}
	return map[string]uint64{"w0": 0, "w1": uint64(shards - 1), bulkWorld: 0}
}

// shardWrites is how far each group's applied index must have come on a
// sharded run's live nodes: its world's writes (hundreds of batches) and
// not only the entries of elections and bootstrap (a handful).
const shardWrites = 50

// checkShards checks that a sharded run wrote through every group: each
// live node's gsd_applied_index of groups 0 and shards-1 (w0's and w1's)
// is past shardWrites. Were both worlds on one group (the map's worlds
// ignored), the other would have applied only its elections' entries.
func checkShards(ctx context.Context, c *Cluster, shards int, res *Result) {
	for i, n := range c.Nodes {
		if !c.Running(i) || c.Paused(i) {
			continue
		}
		idx, err := groupGauges(ctx, n.HTTP, "gsd_applied_index")
		if err != nil {
			res.Problems = append(res.Problems, fmt.Sprintf("shards: metrics of %s: %v", n.ID, err))
			continue
		}
		for _, g := range []string{"0", strconv.Itoa(shards - 1)} {
			if idx[g] <= shardWrites {
				res.Problems = append(res.Problems, fmt.Sprintf("shards: %s applied only %d entries of group %s (want > %d: its world's writes)", n.ID, idx[g], g, shardWrites))
			}
		}
	}
}

// groupGauges reads a node's gauge metric per group label.
func groupGauges(ctx context.Context, addr, metric string) (map[string]uint64, error) {
	mctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(mctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	prefix := metric + `{group="`
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		g, v, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return nil, fmt.Errorf("%s of group %s: %w", metric, g, err)
		}
		out[g] = uint64(f)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no %s{group=...} in /metrics", metric)
	}
	return out, nil
}
