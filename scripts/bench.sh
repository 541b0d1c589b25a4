#!/usr/bin/env bash
# The standard benchmark suite (`make bench`): store level, client level,
# the go test benchmarks, then docs/BENCHMARKS.md. Sized for ~10 minutes on a
# 2-core machine; every size is a variable below.
set -euo pipefail
GO=${GO:-go}
BIN=${BIN_DIR:-bin}
OUT=$(pwd)/${BENCH_DIR:-bench-results}/$(date -u +%Y%m%dT%H%M%SZ)
STORE_WRITERS=${STORE_WRITERS:-1,64,1024,4096,10000}
STORE_DURATION=${STORE_DURATION:-5s}
PLAYERS=${PLAYERS:-10000}
RATE=${RATE:-5000}
SPECTATORS=${SPECTATORS:-1000}
SPECTATOR_RATE=${SPECTATOR_RATE:-200}
DOC=${BENCH_DOC:-docs/BENCHMARKS.md}
mkdir -p "$OUT"

storecmd="GSD_STORE_BENCH=$OUT/store.json GSD_STORE_BENCH_WRITERS=$STORE_WRITERS GSD_STORE_BENCH_DURATION=$STORE_DURATION $GO test -run TestStoreLevelSuite -count=1 -v -timeout 30m ./store/"
client1="$BIN/gsdctl bench --quiet --players $PLAYERS --rate $RATE --batch 64 --conns 32 --warmup 2s --duration 10s --storm-players 1000 --rounds 20 --storm-batch 100 --churners 50 --kill-after 3s --down 3s --out $OUT/client.json battle conflict-storm churn failover"
client2="$BIN/gsdctl bench --quiet --players 1000 --rate $SPECTATOR_RATE --batch 16 --conns 16 --warmup 2s --duration 10s --spectators $SPECTATORS --ramp 5s --out $OUT/spectators.json spectator-influx"
PLAY_PLAYERS=${PLAY_PLAYERS:-1000}
client3="$BIN/gsdctl bench --quiet --players $PLAY_PLAYERS --rate 50 --bulk-rate 1000 --warmup 2s --duration 10s --out $OUT/play.json play"
# PLAY_UDP=1 adds the same play run with the bulk moves over the UDP input
# lane (scenario play-udp; about one more minute). Off by default: its time
# on a quiet machine was not measured yet.
PLAY_UDP=${PLAY_UDP:-0}
client4="$BIN/gsdctl bench --quiet --players $PLAY_PLAYERS --rate 50 --bulk-rate 1000 --play-bulk-over udp --warmup 2s --duration 10s --out $OUT/play-udp.json play"
# players-10k: steps of 1k, 2k, 5k, 10k players with interest on, until
# one misses critical propagation P99 <= 50 ms (a few minutes).
P10K_STEPS=${P10K_STEPS:-1000,2000,5000,10000}
client5="$BIN/gsdctl bench --quiet --steps $P10K_STEPS --warmup 2s --duration 10s --out $OUT/players-10k.json players-10k"
# Replay speed of a recorded battle (issue 13): REPLAY_PLAYERS players for
# REPLAY_MINUTES minutes at the players-10k mix, written to a store, then
# replayed from its archive (spectator/replay_bench_test.go; about 3 minutes).
REPLAY_PLAYERS=${REPLAY_PLAYERS:-10000}
REPLAY_MINUTES=${REPLAY_MINUTES:-10}
replaycmd="GSD_REPLAY_BENCH=$OUT/replay.json GSD_REPLAY_BENCH_PLAYERS=$REPLAY_PLAYERS GSD_REPLAY_BENCH_MINUTES=$REPLAY_MINUTES $GO test -run TestReplaySpeedOfABattle -count=1 -v -timeout 30m ./spectator/"
gostore="$GO test -run '^\$' -bench 'Commit|RawRaft' -benchtime 20000x ./store/"
gofsm="$GO test -run '^\$' -bench . -benchmem ./fsm/"

echo "== store level";       eval "$storecmd" | tee "$OUT/store.txt" | grep -E 'events/s|^(ok|FAIL|---)'
echo "== client level";      eval "$client1" | tee "$OUT/client.txt"
echo "== spectator influx";  eval "$client2" | tee "$OUT/spectators.txt"
echo "== play (WebSocket)"; eval "$client3" | tee "$OUT/play.txt"
udp_client=() udp_command=()
if [ "$PLAY_UDP" = 1 ]; then
	echo "== play (bulk over UDP)"; eval "$client4" | tee "$OUT/play-udp.txt"
	udp_client=(--client "$OUT/play-udp.json") udp_command=(--command "$client4")
fi
echo "== players-10k";      eval "$client5" | tee "$OUT/players-10k.txt" || true # a step missing its goal fails its check, not the suite
echo "== replay speed";     eval "$replaycmd" | tee "$OUT/replay.txt" | grep -E 'wrote|times_real_time|^(ok|FAIL|---)'
echo "== go test benchmarks"
eval "$gostore" | tee "$OUT/gobench-store.txt"
eval "$gofsm" | tee "$OUT/gobench-fsm.txt"

notes=()
if [ -f docs/bench-notes.md ]; then notes=(--notes docs/bench-notes.md); fi
# The commands above use absolute paths ($OUT: go test runs in the
# package's directory); the report prints them relative to --root, so the
# committed document names no directory of this machine.
"$BIN/gsdctl" bench report --root "$(pwd)" --store "$OUT/store.json" --client "$OUT/client.json" --client "$OUT/spectators.json" --client "$OUT/play.json" --client "$OUT/players-10k.json" ${udp_client[@]+"${udp_client[@]}"} \
	--gobench "go test benchmarks: store (BenchmarkCommit / BenchmarkRawRaft, closed loop, one Raft Apply per event for raw raft)=$OUT/gobench-store.txt" \
	--gobench "go test benchmarks: fsm=$OUT/gobench-fsm.txt" ${notes[@]+"${notes[@]}"} \
	--command "make bench   # = scripts/bench.sh; results in $OUT" \
	--command "$storecmd" --command "$client1" --command "$client2" --command "$client3" --command "$client5" ${udp_command[@]+"${udp_command[@]}"} --command "$replaycmd" --command "$gostore" --command "$gofsm" \
	--out "$DOC" --plots "$(dirname "$DOC")/bench"
