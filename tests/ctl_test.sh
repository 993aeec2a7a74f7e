#!/usr/bin/env bash
# vecdbctl end to end: the real binary against a real `vecdb serve` and
# against a vecdb-router over two real vecdb-node processes, all on free
# loopback ports. Also runs the session of docs/CTL.md. Every process it
# starts is stopped, and the temp dir removed, on any exit (trap).
#   ctl_test.sh VECDBCTL VECDB VECDB_NODE VECDB_ROUTER DOCS/CTL.md
set -euo pipefail
ctl_bin=$(realpath "$1")
vecdb_bin=$2
node_bin=$3
router_bin=$4
doc=$5
. "$(dirname "$0")/server.sh"
command -v jq >/dev/null || fail "jq is required (scripts/install-deps.sh)"

# Children besides server.sh's $pid: nodes and the router.
extra_pids=()
ctl_cleanup() {
	set +e   # a child already gone must not stop the cleanup
	for p in "${extra_pids[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	server_cleanup
}
trap ctl_cleanup EXIT

# vecdbctl with the caller's settings removed.
ctl() {
	env -u VECDB_URL -u VECDB_API_KEY "$ctl_bin" "$@"
}

# run WANT_STATUS CMD...: run, keep stdout/stderr in $out/$err, check status.
run() {
	local want=$1 rc=0
	shift
	"$@" >"$tmp/o" 2>"$tmp/e" || rc=$?
	out=$(cat "$tmp/o")
	err=$(cat "$tmp/e")
	if [ "$rc" -ne "$want" ]; then
		echo "--- stdout:" >&2; echo "$out" >&2
		echo "--- stderr:" >&2; echo "$err" >&2
		fail "'$*' exited $rc, expected $want"
	fi
}

# expect_eq WHAT GOT WANT
expect_eq() {
	[ "$2" = "$3" ] || fail "$1: got '$2', expected '$3'"
}

# expect_in WHAT TEXT PATTERN (grep -E)
expect_in() {
	grep -qE -- "$3" <<<"$2" || fail "$1: no '$3' in: $2"
}

# A REST call with curl: rest METHOD URL [BODY]; prints the body.
rest() {
	curl -sS -X "$1" -H "api-key: ${key:-}" "$2" ${3:+-d "$3"}
}

# n points: {"id": i, "vector": [i%10, i%7, i%3, i], payload {n, group}};
# odd lines use the "data"/"metadata" spelling.
points_file() {
	awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++) {
		v = "[" i % 10 "," i % 7 "," i % 3 "," i "]"
		p = "{\"n\":" i ",\"group\":\"g" i % 5 "\"}"
		if (i % 2) printf "{\"id\":%d,\"data\":%s,\"metadata\":%s}\n", i, v, p
		else printf "{\"id\":%d,\"vector\":%s,\"payload\":%s}\n", i, v, p
	} }'
}

# ===== Against vecdb serve =====

standalone() {
	server_start "$vecdb_bin" --data "$tmp/data"
	local u=$url
	key=

	run 0 ctl --url "$u" collections create items --dim 4 --metric euclidean
	expect_eq "create" "$out" "created collection 'items' (dimension 4, euclidean)"

	points_file 3000 >"$tmp/items.jsonl"
	run 0 ctl --url "$u" points import items "$tmp/items.jsonl" --batch 500
	expect_in "import summary" "$out" "^imported 3000 points into 'items' in [0-9.]+ s"
	expect_in "first progress line" "$err" "^imported 500/3000 points \(17%, [0-9]+ points/s\)$"
	expect_in "last progress line" "$err" "^imported 3000/3000 points \(100%"
	# it waited for the index: all 3000 are in it, none pending
	expect_in "indexed summary" "$out" "; all indexed after [0-9.]+ s$"
	expect_eq "nothing pending after the import" \
	    "$(rest GET "$u/collections/items" | jq -c '.data.stats | [.indexed_count, .pending_count]')" \
	    '[3000,0]'
	expect_eq "indexing rate" "$(rest GET "$u/collections/items" | jq '.data.stats.indexing_rate > 0')" true
	run 0 ctl --url "$u" collections info items
	expect_in "info pending" "$out" "^pending +0$"
	expect_in "info indexing_rate" "$out" "^indexing_rate +[0-9.]+"
	curl -sS "$u/metrics" >"$tmp/metrics"
	expect_in "pending metric" "$(cat "$tmp/metrics")" '^vecdb_collection_pending_points\{collection="items"\} 0$'
	expect_in "rate metric" "$(cat "$tmp/metrics")" '^vecdb_collection_indexing_rate\{collection="items"\} [0-9.]+$'
	expect_eq "count through REST" "$(rest POST "$u/collections/items/points/count" '{}')" \
	    '{"success":true,"data":{"count":3000}}'
	expect_eq "a point through REST" "$(rest GET "$u/collections/items/vectors/1234" | jq -c .data)" \
	    '{"id":1234,"data":[4,2,1,1234],"metadata":{"n":1234,"group":"g4"}}'
	expect_eq "an odd-line point" "$(rest GET "$u/collections/items/vectors/7" | jq -c .data.metadata)" \
	    '{"n":7,"group":"g2"}'

	# stdin, and ids already there: upsert replaces
	head -3 "$tmp/items.jsonl" >"$tmp/three.jsonl"
	run 0 ctl --url "$u" points import items - <"$tmp/three.jsonl"
	expect_in "stdin import" "$out" "^imported 3 points into 'items'"
	run 0 ctl --url "$u" points import items - --no-wait <"$tmp/three.jsonl"
	expect_in "--no-wait import" "$out" "^imported 3 points into 'items' in [0-9.]+ s \([0-9]+ points/s\)$"
	run 0 ctl --url "$u" --json points import items - <"$tmp/three.jsonl"
	expect_eq "--json import" "$(jq -c '[.imported, (.searchable_seconds | type)]' <<<"$out")" '[3,"number"]'

	# On a terminal (script(1) gives it one): a bar redrawn with \r.
	if command -v script >/dev/null; then
		script -qec "env -u VECDB_URL -u VECDB_API_KEY $ctl_bin --url $u points import items $tmp/three.jsonl" \
		    /dev/null >"$tmp/tty" </dev/null || fail "import on a tty failed: $(cat "$tmp/tty")"
		grep -q $'\r\\[#\\{30\\}\\] 3/3 points' "$tmp/tty" || fail "no progress bar: $(od -c "$tmp/tty" | head)"
		grep -q '^imported 3 points' "$tmp/tty" || fail "no summary on the tty: $(cat "$tmp/tty")"
	fi

	run 0 ctl --url "$u" collections list --json
	expect_eq "list --json" "$out" '["items"]'
	run 0 ctl --url "$u" collections list
	expect_eq "list header" "$(head -1 <<<"$out" | tr -s ' ')" "NAME DIMENSION METRIC VECTORS"
	expect_eq "list row" "$(sed -n 2p <<<"$out" | tr -s ' ')" "items 4 euclidean 3000"

	run 0 ctl --url "$u" --json collections info items
	expect_eq "info vector_count" "$(jq .stats.vector_count <<<"$out")" 3000
	expect_eq "info metric" "$(jq -r .config.distance_metric <<<"$out")" euclidean
	run 0 ctl --url "$u" collections info items
	expect_eq "info vectors row" "$(grep '^vectors ' <<<"$out" | tr -s ' ')" "vectors 3000"
	expect_eq "info dimension row" "$(grep '^dimension ' <<<"$out" | tr -s ' ')" "dimension 4"
	expect_eq "info dead row" "$(grep '^dead ' <<<"$out" | tr -s ' ')" "dead 0"

	run 0 ctl --url "$u" --json collections compact items
	expect_eq "compact name" "$(jq -r .name <<<"$out")" items
	run 0 ctl --url "$u" collections compact items
	grep -q "^compacting 'items': " <<<"$out" || fail "compact line: $out"
	run 1 ctl --url "$u" collections compact nope

	# 1234 is [4,2,1,1234]; 1233 and 1235 are 2 away (ties by id).
	run 0 ctl --url "$u" search items --vector 4,2,1,1234 --limit 3 --exact --json
	expect_eq "search ids" "$(jq -c '[.[].id]' <<<"$out")" '[1234,1233,1235]'
	expect_eq "search distances" "$(jq -c '[.[].distance]' <<<"$out")" '[0,2,2]'
	expect_eq "search payload" "$(jq -c '.[0].metadata' <<<"$out")" '{"n":1234,"group":"g4"}'
	run 0 ctl --url "$u" search items --vector 4,2,1,1234 --limit 3
	expect_eq "search table" "$(tr -s ' ' <<<"$out")" 'ID DISTANCE PAYLOAD
1234 0 {"n":1234,"group":"g4"}
1233 2 {"n":1233,"group":"g3"}
1235 2 {"n":1235,"group":"g0"}'
	run 0 ctl --url "$u" search items --vector 4,2,1,1234 --limit 1 \
	    --filter '{"must": [{"key": "group", "match": {"value": "g0"}}]}' --json
	expect_eq "filtered search" "$(jq -c '[.[].id]' <<<"$out")" '[1235]'

	# a payload's reals print as the server sends them, every digit
	# (not cut to the nine of a float32), in the table and as JSON
	rest POST "$u/collections" '{"name": "re", "dimension": 2}' >/dev/null
	rest POST "$u/collections/re/vectors" '{"id": 1, "data": [1, 2], "metadata": {"g": 1.23456789012345, "f": 0.1}}' >/dev/null
	run 0 ctl --url "$u" search re --vector 1,2 --json
	expect_eq "search payload reals" "$(jq -c '.[0].metadata' <<<"$out")" '{"g":1.23456789012345,"f":0.1}'
	expect_in "search payload reals as sent" "$out" '"metadata":{"g":1.23456789012345,"f":0.1}'
	run 0 ctl --url "$u" search re --vector 1,2
	expect_in "search table reals" "$out" '{"g":1.23456789012345,"f":0.1}'
	rest DELETE "$u/collections/re" >/dev/null

	# sparse and hybrid search
	rest POST "$u/collections" '{"name": "sp", "dimension": 2, "sparse_vectors": {"text": {}}}' >/dev/null
	rest POST "$u/collections/sp/vectors/upsert" '{"vectors": [{"id": 1, "data": [1, 0], "vectors": {"text": {"indices": [3, 9], "values": [1, 2]}}}, {"id": 2, "data": [0, 1], "vectors": {"text": {"indices": [9], "values": [0.5]}}}]}' >/dev/null
	run 0 ctl --url "$u" search sp --sparse text:9=2,3=1 --json
	expect_eq "sparse search" "$(jq -c '[.[] | [.id, .score]]' <<<"$out")" '[[1,5],[2,1]]'
	run 0 ctl --url "$u" search sp --sparse text:9=2
	expect_eq "sparse table" "$(tr -s ' ' <<<"$out" | cut -d' ' -f1,2)" 'ID SCORE
1 4
2 1'
	run 0 ctl --url "$u" search sp --vector 0,1 --sparse text:3=1 --fusion rrf --json
	expect_eq "hybrid search" "$(jq -c '[.[].id]' <<<"$out")" '[1,2]'
	run 2 ctl --url "$u" search sp --sparse 9=2
	expect_in "bad --sparse" "$err" "is not NAME:INDEX=VALUE"
	run 2 ctl --url "$u" search sp --sparse text:9=2 --fusion rrf
	expect_in "fusion alone" "$err" "give both"
	rest DELETE "$u/collections/sp" >/dev/null

	# a named dense vector
	rest POST "$u/collections" '{"name": "nv", "dimension": 2, "vectors": {"image": {"dimension": 3, "distance_metric": "euclidean"}}, "sparse_vectors": {"text": {}}}' >/dev/null
	rest POST "$u/collections/nv/vectors/upsert" '{"vectors": [{"id": 1, "data": [1, 0], "vectors": {"image": [0, 0, 1], "text": {"indices": [3], "values": [1]}}}, {"id": 2, "data": [0, 1], "vectors": {"image": [0, 0, 3]}}]}' >/dev/null
	run 0 ctl --url "$u" search nv --vector 0,0,2.5 --using image --json
	expect_eq "search using" "$(jq -c '[.[] | [.id, .distance]]' <<<"$out")" '[[2,0.5],[1,1.5]]'
	run 0 ctl --url "$u" search nv --vector 0,0,2.5 --using image --sparse text:3=1 --json
	expect_eq "hybrid using" "$(jq -c '[.[].id]' <<<"$out")" '[1,2]'
	run 2 ctl --url "$u" search nv --sparse text:3=1 --using image
	expect_in "using alone" "$err" "--using names the dense vector"
	rest DELETE "$u/collections/nv" >/dev/null

	run 0 ctl --url "$u" cluster status --json
	expect_eq "standalone status" "$(jq -c '[.role, (.shards[0].members[0] | .url, .reachable, .vectors, .collections)]' <<<"$out")" \
	    '["standalone","local",true,3000,[{"name":"items","vectors":3000}]]'

	# snapshots: create, list, delete points, restore
	run 0 ctl --url "$u" --json snapshot create items
	local snap
	snap=$(jq -r .name <<<"$out")
	expect_eq "snapshot count" "$(jq .vector_count <<<"$out")" 3000
	run 0 ctl --url "$u" snapshot list items
	expect_eq "snapshot table row" "$(sed -n 2p <<<"$out" | awk '{print $1, $4}')" "$snap 3000"
	rest POST "$u/collections/items/vectors/batch-delete" '{"ids": [0,1,2,3,4,5,6,7,8,9]}' >/dev/null
	expect_eq "count after delete" "$(rest POST "$u/collections/items/points/count" '{}' | jq .data.count)" 2990
	run 0 ctl --url "$u" snapshot restore items "$snap"
	expect_eq "restore" "$out" "restored 'items' from snapshot $snap (3000 points)"
	expect_eq "count after restore" "$(rest POST "$u/collections/items/points/count" '{}' | jq .data.count)" 3000

	# errors
	run 1 ctl --url "$u" collections info nope
	expect_eq "unknown collection" "$err" "vecdbctl: NOT_FOUND: collection 'nope' not found"
	run 1 ctl --url "$u" search nope --vector 1,2,3,4
	expect_eq "search unknown" "$err" "vecdbctl: NOT_FOUND: collection 'nope' not found"
	run 1 ctl --url "$u" search items --vector 1,2
	expect_in "wrong dimension" "$err" "^vecdbctl: INVALID_ARGUMENT: .*2 dimensions"
	run 2 ctl --url "$u" collections create x
	expect_in "no --dim" "$err" "--dim is required"
	run 2 ctl --url "$u" collections create x --dim 4 --metric nope
	expect_in "bad metric" "$err" "unknown metric 'nope'"
	run 2 ctl --url "$u" search items
	expect_in "no --vector" "$err" "--vector or --sparse is required"
	run 2 ctl --url "$u" search items --vector 1,x
	run 2 ctl --url "$u" frobnicate
	expect_in "unknown command" "$err" "unknown command 'frobnicate'"
	run 2 ctl --url "$u" collections
	run 2 ctl --url "$u" points import items
	run 2 ctl --url "$u" --timeout 0 collections list
	run 0 ctl --help
	expect_in "help" "$out" "^usage: vecdbctl"
	run 0 ctl search --help
	expect_in "search help" "$out" "^usage: vecdbctl search"

	# A malformed line 4 with batches of 2: lines 1-2 are in, 3 was not sent.
	run 0 ctl --url "$u" collections create bad --dim 4
	{ points_file 3; echo '{"id": 9, "vector": [1, 2, 3, 4'; points_file 2; } >"$tmp/bad.jsonl"
	run 1 ctl --url "$u" points import bad "$tmp/bad.jsonl" --batch 2
	expect_in "malformed line" "$err" "^vecdbctl: $tmp/bad.jsonl:4: malformed line: "
	expect_in "imported before" "$err" "^vecdbctl: imported 2 points into 'bad' before the error$"
	expect_eq "nothing of the bad batch" "$(rest POST "$u/collections/bad/points/count" '{}' | jq .data.count)" 2
	{ points_file 1; echo '{"id": 9, "vector": [1, 2]}'; } >"$tmp/dim.jsonl"
	run 1 ctl --url "$u" points import bad "$tmp/dim.jsonl"
	expect_in "wrong dimension line" "$err" "dim.jsonl:2: malformed line: the vector has 2 dimensions, collection 'bad' expects 4"
	run 1 ctl --url "$u" points import nope "$tmp/items.jsonl"
	expect_in "import unknown" "$err" "NOT_FOUND: collection 'nope' not found"

	# ids above INT64_MAX both ways (raw text: jq would round them)
	run 0 ctl --url "$u" collections create big --dim 2
	printf '%s\n' '{"id": 18446744073709551615, "vector": [1, 2]}' \
	    '{"id": 9223372036854775808, "vector": [5, 5]}' >"$tmp/big.jsonl"
	run 0 ctl --url "$u" points import big "$tmp/big.jsonl"
	run 0 ctl --url "$u" search big --vector 1,2 --limit 2 --json
	expect_in "big ids" "$(tr -d ' \n' <<<"$out")" \
	    '"id":18446744073709551615,.*"id":9223372036854775808,'
	run 0 ctl --url "$u" search big --vector 1,2 --limit 1
	expect_in "big id row" "$out" "^18446744073709551615 "
	rest DELETE "$u/collections/big" >/dev/null

	# quantization: set at create, changed by update, shown by info
	run 0 ctl --url "$u" collections create qp --dim 4 --metric euclidean \
	    --quantization product --segments 2 --always-ram
	expect_eq "create --quantization" "$out" \
	    "created collection 'qp' (dimension 4, euclidean, quantization product, 2 segments, always in RAM)"
	expect_eq "product in the config" \
	    "$(rest GET "$u/collections/qp" | jq -c '.data.config.quantization | [.type, .segments, .bits, .always_ram]')" \
	    '["product",2,8,true]'
	run 0 ctl --url "$u" collections create qs --dim 4 --quantization scalar --quantile 0.9
	expect_eq "scalar quantile" \
	    "$(rest GET "$u/collections/qs" | jq -c '.data.config.quantization | [.type, (.quantile * 100 | round)]')" \
	    '["scalar",90]'
	run 0 ctl --url "$u" --json collections update qp --quantization product
	expect_eq "update --json" "$(jq -c '.quantization | [.type, .segments, .always_ram]' <<<"$out")" \
	    '["product",1,false]'
	run 0 ctl --url "$u" collections update qp --quantization none
	expect_eq "update to none" "$out" \
	    "collection 'qp': quantization none (the index is rebuilt on it in the background)"
	expect_eq "none in the config" "$(rest GET "$u/collections/qp" | jq -r .data.config.quantization.type)" none
	run 1 ctl --url "$u" collections update qp --quantization binary
	expect_eq "binary on euclidean" "$err" \
	    "vecdbctl: INVALID_ARGUMENT: binary quantization needs a cosine or dot collection"
	run 1 ctl --url "$u" collections update qp --quantization product --segments 5
	expect_in "segments over the dimension" "$err" "^vecdbctl: INVALID_ARGUMENT: .*segments 5"
	expect_eq "refusals change nothing" "$(rest GET "$u/collections/qp" | jq -r .data.config.quantization.type)" none
	run 1 ctl --url "$u" collections update nope --quantization scalar
	expect_eq "update unknown" "$err" "vecdbctl: NOT_FOUND: collection 'nope' not found"
	run 2 ctl --url "$u" collections update qp
	expect_in "update without --quantization" "$err" "--quantization is required"
	run 2 ctl --url "$u" collections update qp --quantization scalar --quantile 0
	expect_in "bad quantile" "$err" "--quantile '0' is not a number in \(0, 1\]"
	run 2 ctl --url "$u" collections create x --dim 4 --quantization pq
	expect_in "bad quantization" "$err" "unknown quantization 'pq'"
	run 2 ctl --url "$u" collections create x --dim 4 --quantization scalar --segments 2
	expect_in "segments without product" "$err" "--segments goes with --quantization product"
	run 2 ctl --url "$u" collections create x --dim 4 --always-ram
	expect_in "a flag without --quantization" "$err" "go with --quantization"
	run 0 ctl --url "$u" collections info qs
	expect_eq "info quantization row" "$(grep '^quantization ' <<<"$out" | tr -s ' ')" "quantization scalar"
	expect_eq "info in force row" "$(grep '^quant_in_force ' <<<"$out" | tr -s ' ')" "quant_in_force none"
	expect_in "info code_bytes row" "$out" "^code_bytes +[0-9]+$"
	expect_in "info original_bytes row" "$out" "^original_bytes +[0-9]+$"
	rest DELETE "$u/collections/qp" >/dev/null
	rest DELETE "$u/collections/qs" >/dev/null

	server_stop
	run 1 ctl --url "$u" collections list
	expect_in "unreachable" "$err" "^vecdbctl: cannot reach $u: "

	# /cluster is a read route: the read-only key may call it.
	server_start "$vecdb_bin" --data "$tmp/data" --api-key rw --read-only-api-key ro
	run 1 ctl --url "$url" cluster status
	expect_in "status without a key" "$err" "^vecdbctl: UNAUTHENTICATED: "
	run 0 ctl --url "$url" --api-key ro cluster status --json
	expect_eq "status, read-only key" "$(jq -c '.shards[0].members[0].collections' <<<"$out")" \
	    '[{"name":"bad","vectors":2},{"name":"items","vectors":3000}]'
	VECDB_API_KEY=ro run 1 "$ctl_bin" --url "$url" collections delete items
	expect_in "read-only key cannot write" "$err" "^vecdbctl: PERMISSION_DENIED: "
	VECDB_API_KEY=ro run 1 "$ctl_bin" --url "$url" collections update items --quantization scalar
	expect_in "read-only key cannot update" "$err" "^vecdbctl: PERMISSION_DENIED: "
	server_stop
}

# ===== The docs/CTL.md session =====

doc_session() {
	local d=$tmp/doc n count=0
	mkdir -p "$d"
	server_start "$vecdb_bin" --data "$tmp/docdata"
	awk -v dir="$d" '
		/^<!-- run -->$/ { want_cmd = 1; next }
		want_cmd && /^```sh$/ { n++; f = dir "/cmd" n; in_cmd = 1; want_cmd = 0; next }
		in_cmd && /^```$/ { in_cmd = 0; after_cmd = 1; next }
		in_cmd { print > f; next }
		after_cmd && /^```(text|json)$/ { f = dir "/want" n; in_want = 1; after_cmd = 0; next }
		after_cmd && !/^$/ { after_cmd = 0 }
		in_want && /^```$/ { in_want = 0; next }
		in_want { print > f }
	' "$doc"
	for cmd in $(ls "$d"/cmd* | sort -V); do
		n=${cmd##*/cmd}
		count=$((count + 1))
		got=$(cd "$d" && env -u VECDB_API_KEY VECDB_URL="$url" \
		    PATH="$(dirname "$ctl_bin"):$PATH" bash -e "$cmd" 2>&1) ||
			fail "docs example $n failed: $(cat "$cmd"): $got"
		if [ -f "$d/want$n" ] && [ "$got" != "$(cat "$d/want$n")" ]; then
			diff <(cat "$d/want$n") <(echo "$got") >&2 || true
			fail "docs example $n: output differs: $(cat "$cmd")"
		fi
	done
	[ "$count" -ge 5 ] || fail "only $count examples found in $doc"
	server_stop
}

# ===== Against a router over two nodes =====

# node_start I: a vecdb-node on a free port; sets node_url[I], node_pid[I].
node_url=()
node_pid=()
router_pids=()
node_admin=()
node_start() {
	local i=$1 line=
	"$node_bin" --data "$tmp/node$i" --rpc tcp://127.0.0.1:0 --admin-port 0 \
	    --node-id "n$i" >"$tmp/node$i.out" 2>"$tmp/node$i.err" &
	node_pid[$i]=$!
	extra_pids+=("$!")
	for _ in $(seq 100); do
		line=$(grep -m1 '^vecdb-node' "$tmp/node$i.out" || true)
		[ -n "$line" ] && break
		kill -0 "${node_pid[$i]}" 2>/dev/null || fail "node $i died: $(cat "$tmp/node$i.err")"
		sleep 0.1
	done
	[ -n "$line" ] || fail "node $i printed no port line"
	node_url[$i]=$(sed 's|.* rpc \(tcp://[^ ]*\) .*|\1|' <<<"$line")
	node_admin[$i]=$(sed 's|.* admin \(http://[^ ]*\) .*|\1|' <<<"$line")
}

# router_start NAME TIMEOUT_MS: over the two nodes, with an api key;
# sets rurl. (A generous timeout: a loaded machine fsyncs slowly.)
router_start() {
	local line= r=$tmp/$1
	printf '{"shards": [{"id": 0, "primary": "%s"}, {"id": 1, "primary": "%s"}]}\n' \
	    "${node_url[0]}" "${node_url[1]}" >"$tmp/topology.json"
	"$router_bin" --topology "$tmp/topology.json" --host 127.0.0.1 --port 0 \
	    --timeout-ms "$2" --api-key secret >"$r.out" 2>"$r.err" &
	extra_pids+=("$!")
	router_pids+=("$!")
	for _ in $(seq 100); do
		line=$(grep -m1 'serving http' "$r.out" || true)
		[ -n "$line" ] && break
		sleep 0.1
	done
	[ -n "$line" ] || fail "router $1 printed no port line: $(cat "$r.err")"
	rurl=$(sed 's|.*serving \(http://[0-9.:]*\).*|\1|' <<<"$line")
}

# The node's own count of a collection, from its admin /metrics.
node_count() {
	curl -sS "${node_admin[$1]}/metrics" |
	    sed -n "s/^vecdb_vectors_total{collection=\"$2\"} \([0-9]*\)$/\1/p"
}

cluster() {
	node_start 0
	node_start 1
	router_start router 10000
	key=secret

	run 1 ctl --url "$rurl" cluster status
	expect_in "no key" "$err" "^vecdbctl: UNAUTHENTICATED: "
	export VECDB_URL=$rurl VECDB_API_KEY=secret
	run 0 "$ctl_bin" collections create items --dim 4 --metric euclidean
	points_file 2000 >"$tmp/c.jsonl"
	run 0 "$ctl_bin" points import items "$tmp/c.jsonl"
	expect_in "router import" "$out" "^imported 2000 points into 'items'"
	expect_eq "router count" "$(rest POST "$rurl/collections/items/points/count" '{}' | jq .data.count)" 2000
	expect_eq "router point" "$(rest GET "$rurl/collections/items/vectors/1999" | jq -c .data.metadata)" \
	    '{"n":1999,"group":"g4"}'

	local c0 c1
	c0=$(node_count 0 items)
	c1=$(node_count 1 items)
	[ -n "$c0" ] && [ -n "$c1" ] && [ "$c0" -gt 0 ] && [ "$c1" -gt 0 ] ||
		fail "node counts '$c0' '$c1'"
	expect_eq "node counts add up" "$((c0 + c1))" 2000

	run 0 "$ctl_bin" cluster status --json
	expect_eq "router status" "$(jq -c '[.role, (.shards[] | .id, (.members[] | .url, .role, .reachable, .node_id, .vectors, .collections, .error))]' <<<"$out")" \
	    "[\"router\",0,\"${node_url[0]}\",\"primary\",true,\"n0\",$c0,[{\"name\":\"items\",\"vectors\":$c0}],null,1,\"${node_url[1]}\",\"primary\",true,\"n1\",$c1,[{\"name\":\"items\",\"vectors\":$c1}],null]"
	expect_in "last_seq" "$(jq '.shards[0].members[0].last_seq' <<<"$out")" '^[1-9][0-9]*$'
	run 0 "$ctl_bin" cluster status
	expect_eq "status rows" "$(awk 'NR > 1 && $1 ~ /^[0-9]+$/ { print $1, $2, $4, $5 }' <<<"$out")" \
	    "0 ${node_url[0]} yes n0
1 ${node_url[1]} yes n1"
	expect_in "status footer" "$out" "^router: 2 of 2 members reachable$"

	run 0 "$ctl_bin" search items --vector 4,2,1,1234 --limit 3 --exact --json
	expect_eq "router search" "$(jq -c '[.[].id]' <<<"$out")" '[1234,1233,1235]'

	# quantization through the router: every shard's primary takes it
	run 0 "$ctl_bin" collections update items --quantization product --segments 2
	expect_eq "router update" "$out" \
	    "collection 'items': quantization product, 2 segments (the index is rebuilt on it in the background)"
	expect_eq "router config" \
	    "$(rest GET "$rurl/collections/items" | jq -c '.data.config.quantization | [.type, .segments]')" \
	    '["product",2]'
	run 1 "$ctl_bin" collections update items --quantization binary
	expect_in "router refusal" "$err" "^vecdbctl: INVALID_ARGUMENT: shard 0: binary quantization needs a cosine or dot collection"
	run 0 "$ctl_bin" collections info items
	expect_eq "router info quantization" "$(grep '^quantization ' <<<"$out" | tr -s ' ')" \
	    "quantization product, 2 segments"
	run 0 "$ctl_bin" search items --vector 4,2,1,1234 --limit 3 --exact --json
	expect_eq "router search, quantized" "$(jq -c '[.[].id]' <<<"$out")" '[1234,1233,1235]'
	run 0 "$ctl_bin" collections update items --quantization none

	kill -KILL "${node_pid[1]}"
	wait "${node_pid[1]}" 2>/dev/null || true
	run 0 "$ctl_bin" cluster status --json
	expect_eq "dead node" "$(jq -c '.shards[1].members[0] | [.reachable, .vectors]' <<<"$out")" '[false,null]'
	expect_in "dead node error" "$(jq -r '.shards[1].members[0].error' <<<"$out")" "cannot connect|no answer"
	expect_eq "live node" "$(jq -c '.shards[0].members[0] | [.reachable, .vectors, .error]' <<<"$out")" "[true,$c0,null]"
	run 0 "$ctl_bin" cluster status
	expect_in "dead row" "$out" "^1 +${node_url[1]} +primary +no "
	expect_in "status footer" "$out" "^router: 1 of 2 members reachable$"

	# A hung node (stopped: the kernel still accepts its connections) is
	# reported at the router's deadline, not waited for.
	router_start router2 500
	kill -STOP "${node_pid[0]}"
	local t0=$SECONDS
	run 0 "$ctl_bin" --url "$rurl" cluster status --json
	expect_eq "hung node" "$(jq -c '[.shards[].members[0].reachable]' <<<"$out")" '[false,false]'
	expect_in "hung node error" "$(jq -r '.shards[0].members[0].error' <<<"$out")" "no answer within 500 ms$"
	[ $((SECONDS - t0)) -le 5 ] || fail "status took $((SECONDS - t0)) s with a 500 ms timeout"
	unset VECDB_URL VECDB_API_KEY

	# The routers stop cleanly (under the sanitizers: no leak, no error),
	# router2 with its status worker still stuck dialling the hung node.
	local p rc
	for p in "${router_pids[@]}"; do
		rc=0
		kill -TERM "$p"
		wait "$p" || rc=$?
		[ "$rc" -eq 0 ] || fail "a router exited with status $rc after SIGTERM: $(cat "$tmp"/router*.err)"
	done
	kill -CONT "${node_pid[0]}"
}

standalone
doc_session
cluster
echo "vecdbctl: all checks passed"
