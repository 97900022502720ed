#!/usr/bin/env bash
# bundlebench: export and import time and bundle size for a project, beside
# tar of the same cache directory (create and extract), interleaved, N runs.
#
#   bench/bundlebench/run.sh [PROJECT] [N]     (from the module root)
#
# PROJECT (default ../shared/bench/project) is warmed once through a
# modproxy in front of the real upstream of `go env GOPROXY` (checksum
# database `go env GOSUMDB`): go mod download with a fresh module cache, then
# modproxy prefetch of every version its go.sum names (what export --from
# takes). BUNDLEBENCH_CACHE=DIR uses an already warmed cache directory
# instead; BUNDLEBENCH_KEEP=1 keeps the work directory.
#
# Then, N times (default 3), in this order: modproxy export --from PROJECT;
# tar c of the cache's objects and state; modproxy import into an empty
# cache; tar x into an empty directory; tar x followed by sync (tar does not
# make its files durable; import syncs every object it admits). Each figure
# is wall-clock seconds and CPU seconds (user + system, bash's time); the
# page cache is warm for all. Prints a Markdown table on stdout.
set -euo pipefail
project=${1:-../shared/bench/project}
n=${2:-3}
work=$(mktemp -d)
pid=""
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	if [ -n "${BUNDLEBENCH_KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT INT TERM
go build -o "$work/modproxy" ./cmd/modproxy
mp="$work/modproxy"
# A copy: the go command may rewrite go.sum, and the project is shared.
cp -R "$project" "$work/project"
project="$work/project"

if [ -n "${BUNDLEBENCH_CACHE:-}" ]; then
	cache=$BUNDLEBENCH_CACHE
else
	cache="$work/cacheA"
	mkdir -p "$cache"
	"$mp" serve --cache-dir "$cache" --listen 127.0.0.1:0 --admin-listen off --log-format json 2>"$work/serve.log" &
	pid=$!
	url=""
	for _ in $(seq 1 200); do
		url=$(sed -n 's/.*"msg":"listening".*"url":"\([^"]*\)".*/\1/p' "$work/serve.log" | head -1)
		[ -n "$url" ] && break
		sleep 0.1
	done
	[ -n "$url" ] || { cat "$work/serve.log" >&2; exit 1; }
	echo "warming $project through $url" >&2
	(cd "$project" && GOPROXY="$url" GOMODCACHE="$work/modcache" GOFLAGS=-mod=mod go mod download) >&2
	"$mp" prefetch --proxy "$url" "$project" >&2
	kill "$pid"; wait "$pid" 2>/dev/null || true
	pid=""
fi

TIMEFORMAT='%R %U %S'
# measure CMD...: "WALL CPU" in seconds.
measure() {
	local t
	t=$( { time "$@" >/dev/null 2>"$work/last.err"; } 2>&1 ) || { cat "$work/last.err" >&2; exit 1; }
	echo "$t" | awk '{printf "%.2f / %.2f", $1, $2 + $3}'
}
untar_sync() { tar -C "$1" -xf "$2" && sync; }

echo "| run | export | tar c | import | tar x | tar x + sync | bundle bytes | tar bytes |"
echo "|---|---|---|---|---|---|---|---|"
for i in $(seq 1 "$n"); do
	rm -rf "$work/b.bundle" "$work/c.tar" "$work/cacheB" "$work/untar" "$work/untar2"
	te=$(measure "$mp" export --cache-dir "$cache" --from "$project" -o "$work/b.bundle")
	tc=$(measure tar -C "$cache" -cf "$work/c.tar" objects state)
	mkdir -p "$work/cacheB" "$work/untar" "$work/untar2"
	ti=$(measure "$mp" import "$work/b.bundle" --cache-dir "$work/cacheB")
	tx=$(measure tar -C "$work/untar" -xf "$work/c.tar")
	ts=$(measure untar_sync "$work/untar2" "$work/c.tar")
	echo "| $i | $te | $tc | $ti | $tx | $ts | $(stat -c %s "$work/b.bundle") | $(stat -c %s "$work/c.tar") |"
done
echo "objects in the cache: $(find "$cache/objects" -type f | wc -l), members of the bundle: $(tar -tf "$work/b.bundle" | wc -l)" >&2
