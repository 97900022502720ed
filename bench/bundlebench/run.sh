#!/bin/sh
# bundlebench: export and import time and bundle size for a project, beside
# tar of the same cache directory (create and extract), interleaved, N runs.
#
#   bench/bundlebench/run.sh [PROJECT] [N]     (from the module root)
#
# PROJECT (default ../shared/bench/project) is warmed once through a
# modproxy in front of the real upstream of `go env GOPROXY` (checksum
# database `go env GOSUMDB`): go mod download with a fresh module cache, then
# modproxy prefetch of every version its go.sum names. Then, N times (default
# 3), in this order: modproxy export --from PROJECT; tar c of the cache
# directory; modproxy import into an empty cache; tar x into an empty
# directory. Times are wall-clock seconds (date +%s.%N); the page cache is
# warm for all (the same files are read each time). Prints a Markdown table.
set -eu
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
# A copy: the go command may rewrite go.sum, and the project is shared.
cp -R "$project" "$work/project"
project="$work/project"
echo "warming $project through $url" >&2
(cd "$project" && GOPROXY="$url" GOMODCACHE="$work/modcache" GOFLAGS=-mod=mod go mod download) >&2
# Every version go.sum names, go.mod-only ones too (what export --from takes).
"$mp" prefetch --proxy "$url" "$project" >&2
kill "$pid"; wait "$pid" 2>/dev/null || true

now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }

printf '| run | export s | tar c s | import s | tar x s | bundle bytes | tar bytes |\n|---|---|---|---|---|---|---|\n'
for i in $(seq 1 "$n"); do
	rm -rf "$work/b.bundle" "$work/c.tar" "$work/cacheB" "$work/untar"
	t=$(now); "$mp" export --cache-dir "$cache" --from "$project" -o "$work/b.bundle" >/dev/null; te=$(since "$t")
	t=$(now); tar -C "$cache" -cf "$work/c.tar" objects state; tc=$(since "$t")
	mkdir -p "$work/cacheB"
	t=$(now); "$mp" import "$work/b.bundle" --cache-dir "$work/cacheB" >/dev/null; ti=$(since "$t")
	mkdir -p "$work/untar"
	t=$(now); tar -C "$work/untar" -xf "$work/c.tar"; tx=$(since "$t")
	printf '| %d | %.2f | %.2f | %.2f | %.2f | %d | %d |\n' "$i" "$te" "$tc" "$ti" "$tx" "$(stat -c %s "$work/b.bundle")" "$(stat -c %s "$work/c.tar")"
done
echo "objects in the cache: $(find "$cache/objects" -type f | wc -l), in the bundle: $(tar -tf "$work/b.bundle" | wc -l)" >&2
