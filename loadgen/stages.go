package loadgen

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// The nodes' own timing of a play event's way (gsd_play_stage_seconds:
// act, fanout, write), scraped before and after a measured phase, so a
// result splits the client's propagation into the server's parts from
// server-side clocks.

const stageMetric = "gsd_play_stage_seconds_bucket"

// stageHists are cumulative bucket counts by stage and upper bound,
// summed over the nodes.
type stageHists map[string]map[float64]float64

// scrapeStages reads every node's stage histogram.
func scrapeStages(ctx context.Context, hc *http.Client, addrs []string) (stageHists, error) {
	h := stageHists{}
	for _, a := range addrs {
		if err := scanMetrics(ctx, hc, a, h.add); err != nil {
			return nil, fmt.Errorf("%s: %w", a, err)
		}
	}
	return h, nil
}

// add adds one /metrics line when it is a stage bucket.
func (h stageHists) add(line string) (bool, error) {
	rest, ok := strings.CutPrefix(line, stageMetric+"{")
	if !ok {
		return false, nil
	}
	labels, value, ok := strings.Cut(rest, "} ")
	if !ok {
		return false, fmt.Errorf("malformed line %q", line)
	}
	var stage, le string
	for _, kv := range strings.Split(labels, ",") {
		k, v, _ := strings.Cut(kv, "=")
		v = strings.Trim(v, `"`)
		switch k {
		case "stage":
			stage = v
		case "le":
			le = v
		}
	}
	bound, err := strconv.ParseFloat(le, 64) // "+Inf" parses as +Inf
	if err != nil {
		return false, fmt.Errorf("bucket bound %q: %w", le, err)
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
	if err != nil {
		return false, fmt.Errorf("bucket count %q: %w", value, err)
	}
	if h[stage] == nil {
		h[stage] = map[float64]float64{}
	}
	h[stage][bound] += n
	return false, nil
}

// since returns h minus an earlier scrape.
func (h stageHists) since(earlier stageHists) stageHists {
	out := stageHists{}
	for stage, bs := range h {
		out[stage] = map[float64]float64{}
		for le, n := range bs {
			out[stage][le] = n - earlier[stage][le]
		}
	}
	return out
}

// quantile estimates the q-quantile of one stage's buckets, in seconds,
// interpolating within a bucket (the +Inf bucket answers its lower bound);
// ok is false without observations.
func quantile(buckets map[float64]float64, q float64) (float64, bool) {
	les := make([]float64, 0, len(buckets))
	for le := range buckets {
		les = append(les, le)
	}
	slices.Sort(les)
	if len(les) == 0 || buckets[les[len(les)-1]] <= 0 {
		return 0, false
	}
	target := q * buckets[les[len(les)-1]]
	lower, below := 0.0, 0.0
	for _, le := range les {
		n := buckets[le]
		if n >= target {
			if math.IsInf(le, 1) {
				return lower, true
			}
			if n == below {
				return le, true
			}
			return lower + (le-lower)*(target-below)/(n-below), true
		}
		lower, below = le, n
	}
	return lower, true
}

// into puts each stage's P50 and P99 (ms) in r's figures.
func (h stageHists) into(r *Result) {
	for stage, bs := range h {
		for _, q := range []struct {
			name string
			q    float64
		}{{"p50", 0.5}, {"p99", 0.99}} {
			if v, ok := quantile(bs, q.q); ok {
				r.Figures["stage_"+stage+"_"+q.name+"_ms"] = v * 1000
			}
		}
	}
}
