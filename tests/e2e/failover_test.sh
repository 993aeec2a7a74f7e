#!/usr/bin/env bash
# failover_test.sh SRCDIR BINDIR: replication through a router, as an
# operator sees it (scripts/cluster.sh, curl, vecdbctl):
#   1. a batch ingest through the router is seen by the replica;
#   2. kill -9 the replica, keep writing, restart it: it catches up;
#   3. writes with "write_concern": 2 are acknowledged; kill -9 the
#      primary; `vecdbctl promote` the replica: every acknowledged point
#      is there (count with consistency primary) and it takes writes;
#   4. a second replica, down during the promotion, comes back pointed at
#      the old primary: the router tells it to follow the new one;
#   5. the old primary restarts as a primary: the router tells it to
#      follow, and it rejoins as a replica of the new one and converges.
# Everything binds 127.0.0.1; the trap stops every process it started.
set -euo pipefail
src=${1:?usage: failover_test.sh SRCDIR BINDIR}
bin=${2:?usage: failover_test.sh SRCDIR BINDIR}
for t in curl jq; do
	command -v "$t" >/dev/null 2>&1 || {
		echo "FAIL: $t is missing (scripts/install-deps.sh)" >&2; exit 1; }
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vecdb-failover-XXXXXX")
extra=()   # pids this script started itself (restarts)
cleanup() {
	set +e
	for p in "${extra[@]}"; do kill -9 "$p" 2>/dev/null; done
	VECDB_BIN_DIR=$bin "$src/scripts/cluster.sh" down --dir "$tmp/cl" \
	    >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
passed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
fail() {
	echo "FAIL: $*" >&2
	for f in "$tmp"/cl/logs/*.log "$tmp"/*.log; do
		[ -f "$f" ] && { echo "--- $f" >&2; tail -15 "$f" >&2; }
	done
	exit 1
}

VECDB_BIN_DIR=$bin "$src/scripts/cluster.sh" up --free-ports --shards 1 \
    --replicas 2 --routers 1 --dir "$tmp/cl" >"$tmp/up.log" 2>&1 ||
    fail "cluster.sh up"
router=$(grep -o 'REST: http://127.0.0.1:[0-9]*' "$tmp/up.log" |
    sed 's/REST: //')
member() { # NAME FIELD(5 pid, 6 rpc url)
	awk -v n="$1" -v f="$2" '$1 == n { print $f }' "$tmp/cl/members"
}
ctl() { "$bin/vecdbctl" --url "$router" "$@"; }

# The command line of running node NAME, to start it again after a kill,
# on the rpc url it bound (it was started with port 0).
cmdline() { # NAME
	tr '\0' '\n' <"/proc/$(member "$1" 5)/cmdline" |
	    sed "s|^tcp://127.0.0.1:0\$|$(member "$1" 6)|"
}
restart() { # FILE-WITH-ARGV LOG
	mapfile -t argv <"$1"
	"${argv[@]}" >>"$2" 2>&1 &
	extra+=($!)
}

# The cluster status field of member NAME (via GET /cluster).
status_of() { # NAME FIELD
	curl -sf "$router/cluster" | jq -r --arg n "$1" --arg f "$2" \
	    '.data.shards[].members[] | select(.node_id == $n) | .[$f]'
}
wait_status() { # NAME FIELD VALUE
	for _ in $(seq 200); do
		[ "$(status_of "$1" "$2" 2>/dev/null)" = "$3" ] && return 0
		sleep 0.1
	done
	fail "$1: $2 never became $3 (is $(status_of "$1" "$2"))"
}
count() { # BODY-EXTRA: the count through the router
	curl -sf -X POST "$router/collections/f/points/count" \
	    -d "{\"exact\": true$1}" | jq -r .data.count
}
points() { # FIRST LAST [EXTRA-BODY]: upsert ids FIRST..LAST through the router
	seq "$1" "$2" | awk -v extra="${3:-}" '
	    BEGIN { printf "{\"vectors\": [" }
	    { printf "%s{\"id\": %d, \"data\": [%d, %d, %d, 1]}",
	      (NR > 1 ? ", " : ""), $1, $1 % 5, $1 % 7, $1 % 11 }
	    END { printf "]%s}\n", extra }' >"$tmp/batch.json"
	curl -s -X POST "$router/collections/f/vectors/upsert" \
	    --data-binary @"$tmp/batch.json"
}

primary=s0-primary
replica=s0-replica-0
other=s0-replica-1
wait_status "$replica" reachable true
wait_status "$other" reachable true

# 1. Ingest through the router; the replica sees it.
ctl collections create f --dim 4 --metric euclidean >/dev/null ||
    fail "create"
seq 2000 | awk '{ printf "{\"id\": %d, \"vector\": [%d, %d, %d, 1]}\n",
    $1, $1 % 5, $1 % 7, $1 % 11 }' >"$tmp/points.jsonl"
ctl points import f "$tmp/points.jsonl" --batch 500 >"$tmp/import.log" 2>&1 ||
    fail "import"
wait_status "$replica" vectors 2000
[ "$(count '')" = 2000 ] || fail "count after import"
ok "2000 points imported through the router are on the replica"

# 2. kill -9 the replica, keep writing, restart it: it catches up.
rpid=$(member "$replica" 5)
cmdline "$replica" >"$tmp/replica.argv"
kill -9 "$rpid"
points 2001 2500 | jq -e '.success' >/dev/null || fail "writes without replica"
restart "$tmp/replica.argv" "$tmp/replica.log"
wait_status "$replica" vectors 2500
ok "the replica, killed and restarted, caught up to 2500"

# 3. Acknowledged writes with write concern 1 survive the primary's death.
for b in 0 1 2 3; do
	first=$((3001 + b * 50))
	out=$(points "$first" $((first + 49)) ', "write_concern": 2')
	echo "$out" | jq -e '.success' >/dev/null ||
	    fail "write_concern 2 batch $b: $out"
done
ok "200 points acknowledged with write_concern 2 (both replicas)"
# The other replica is down during the promotion; it comes back later
# still pointed at the old primary.
cmdline "$other" >"$tmp/other.argv"
kill -9 "$(member "$other" 5)"
ppid=$(member "$primary" 5)
cmdline "$primary" >"$tmp/primary.argv"
kill -9 "$ppid"
ctl promote "$replica" >"$tmp/promote.log" 2>&1 ||
    fail "promote: $(cat "$tmp/promote.log")"
[ "$(count ', "consistency": "primary"')" = 2700 ] ||
    fail "after promotion the count is $(count ', "consistency": "primary"')"
ok "after promote every acknowledged point is on the new primary (2700)"
points 4001 4010 | jq -e '.success' >/dev/null || fail "writes after promote"
[ "$(count ', "consistency": "primary"')" = 2710 ] || fail "count 2710"
ok "the new primary takes writes"
restart "$tmp/other.argv" "$tmp/other.log"
wait_status "$other" primary "$(member "$replica" 6)"
wait_status "$other" vectors 2710
ok "a replica restarted with the old --primary is told to follow the new one"

# 4. The old primary comes back as a primary: fenced, it rejoins.
restart "$tmp/primary.argv" "$tmp/old-primary.log"
wait_status "$primary" role replica
wait_status "$primary" vectors 2710
points 4011 4020 | jq -e '.success' >/dev/null || fail "writes after rejoin"
wait_status "$primary" vectors 2720
ok "the old primary rejoined as a replica and follows the new one"
echo "$passed passed, 0 failed"
