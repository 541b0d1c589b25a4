#!/usr/bin/env bash
# Merge unit-test and binary (integration) coverage into one profile.
#
# usage: scripts/cover-merge.sh UNIT_PROFILE INTEGRATION_GOCOVERDIR OUT_PROFILE
#
# Binaries built with `go build -cover` and run with GOCOVERDIR (tests point it
# at $GSD_GOCOVERDIR, possibly in subdirectories) write covmeta.<hash> and
# covcounters.<hash>.* files. Each binary (meta hash) is converted on its own
# with `go tool covdata textfmt` -- covdata refuses to mix binaries built with
# different -covermode values -- and the text profiles are concatenated into
# <dir of OUT_PROFILE>/integration.out, then merged with UNIT_PROFILE. The
# result has header "mode: atomic" and each block once (counts summed).
set -euo pipefail

GO=${GO:-go}
unit=$1
covdir=$2
out=$3

[[ -f $unit ]] || { echo "cover-merge: unit profile $unit not found" >&2; exit 1; }

inputs=("$unit")
metas=()
if [[ -d $covdir ]]; then
	mapfile -t metas < <(find "$covdir" -type f -name 'covmeta.*' | sort)
fi
if ((${#metas[@]} > 0)); then
	integ="$(dirname "$out")/integration.out"
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	: >"$integ"
	for meta in "${metas[@]}"; do
		hash=${meta##*/covmeta.}
		pod="$tmp/$hash"
		mkdir -p "$pod"
		# The same binary may have written into several directories.
		find "$covdir" -type f \( -name "covmeta.$hash" -o -name "covcounters.$hash.*" \) \
			-exec ln -sf {} "$pod/" \;
	done
	pods=("$tmp"/*/)
	echo "cover-merge: converting coverage of ${#pods[@]} binary build(s) from $covdir"
	for pod in "${pods[@]}"; do
		"$GO" tool covdata textfmt -i="$pod" -o="$tmp/pod.out"
		cat "$tmp/pod.out" >>"$integ"
	done
	inputs+=("$integ")
else
	echo "cover-merge: no binary coverage data in $covdir (unit coverage only)"
fi

"$GO" run ./scripts/covergate merge -mode atomic -o "$out" "${inputs[@]}"
