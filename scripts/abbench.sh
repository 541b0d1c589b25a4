#!/usr/bin/env bash
# A/B benchmark of two builds, interleaved so both see the same machine:
# the store-level suite (replicated, 1,024/4,096/10,000 writers, 4 s) and
# the play bench (1,000 players, 50 critical actions/s), RUNS times each.
# Usage: scripts/abbench.sh BEFORE_DIR AFTER_DIR OUT_DIR [RUNS]
# Each dir holds gsd, gsdctl and store.test (go test -c ./store/) built
# from one commit.
set -euo pipefail
B=$(cd "$1" && pwd) A=$(cd "$2" && pwd) OUT=$3 RUNS=${4:-3}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
for i in $(seq 1 "$RUNS"); do
  for side in before after; do
    d=$B; [ $side = after ] && d=$A
    echo "== run $i $side store $(date -u +%T)"
    (cd "$REPO/store" && GSD_STORE_BENCH=$OUT/store-$side-$i.json GSD_STORE_BENCH_WRITERS=1024,4096,10000 \
      GSD_STORE_BENCH_DURATION=4s GSD_STORE_BENCH_MODES=replicated \
      "$d/store.test" -test.run TestStoreLevelSuite -test.count=1 -test.v -test.timeout 10m 2>&1 | grep -E 'events/s' || true)
  done
  for side in before after; do
    d=$B; [ $side = after ] && d=$A
    echo "== run $i $side play $(date -u +%T)"
    "$d/gsdctl" bench --quiet --players 1000 --rate 50 --warmup 2s --duration 8s --out "$OUT/play-$side-$i.json" play > "$OUT/play-$side-$i.txt" 2>&1 || echo "play failed: see $OUT/play-$side-$i.txt"
  done
done
# Medians per side (python3, when present).
command -v python3 >/dev/null || exit 0
python3 - "$OUT" "$RUNS" <<'PY'
import json, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
for side in ("before", "after"):
    rows = {}
    for i in range(1, runs + 1):
        try:
            rep = json.load(open(f"{out}/store-{side}-{i}.json"))
        except OSError:
            continue
        for r in rep["runs"]:
            rows.setdefault(r["writers"], []).append(r)
    for w, rs in sorted(rows.items()):
        rates = [r["events_per_s"] for r in rs]
        print(f"{side:6} store writers={w:<5} median {statistics.median(rates):9.0f} events/s "
              f"(runs {', '.join(f'{x/1000:.1f}k' for x in rates)}; runs with errors: {sum(1 for r in rs if r['errors'])})")
    p99 = {"action_commit": [], "propagation": []}
    for i in range(1, runs + 1):
        try:
            res = json.load(open(f"{out}/play-{side}-{i}.json"))["results"][0]
        except OSError:
            continue
        for k in p99:
            p99[k].append(res["latency"][k]["p99_ms"])
    for k, v in p99.items():
        if v:
            print(f"{side:6} play {k} P99 median {statistics.median(v):.0f} ms (runs {', '.join(f'{x:.0f}' for x in v)})")
PY
