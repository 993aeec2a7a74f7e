#!/usr/bin/env bash
# Checks tests/doc_routes.sh itself on a small route table and commands
# written to exercise its parsing: if it stopped finding calls, or found
# calls that are not there, doc_api would pass or fail for the wrong reason.
set -euo pipefail
check=$(dirname "$0")/doc_routes.sh
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vecdb-test-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

cat >"$tmp/routes.c" <<'EOF'
#define C "collections/:c"
const struct api_route api_routes[] = {
	{ "GET", "health", h_health, 0, API_BODY_NONE, 1 },
	{ "POST", "collections", h_create, 1, API_BODY_JSON, 0 },
	{ "GET", C, h_get, 0, API_BODY_NONE, 0 },
	{ "DELETE", C, h_delete, 1, API_BODY_NONE, 0 },
	{ "POST", C "/snapshots/upload", h_upload, 1, API_BODY_RAW, 0 },
	{ "POST", C "/snapshots/:s", h_snap_post, 1, API_BODY_NONE, 0 },
	{ "GET", C "/snapshots/:s", h_snap_get, 0, API_BODY_NONE, 0 },
	{ "POST", C "/snapshots/:s/restore", h_restore, 1,
	    API_BODY_NONE, 0 },
	{ "PUT", C "/vectors/:id", h_put, 1, API_BODY_JSON, 0 },
};
EOF

# Calls: GET health (quoted URL, query string), POST collections (-d
# implies POST), GET collections/:c inside $(...), POST upload (-XPOST,
# continued line; the upload route comes first, so snapshots/:s is not
# reached by it), PUT vectors/:id (-T). Not calls: a curl of another host,
# a $VECDB inside a JSON body, text after a pipe, another command.
cat >"$tmp/cmd1" <<'EOF'
curl -s "$VECDB/health?consistency=primary"
curl -s $VECDB/collections -d '{"name": "x | $VECDB/collections/x", "dimension": 2}'
name=$(curl -s ${VECDB}/collections/x | jq -r '.data.config.name')
curl -s -XPOST -H 'Content-Type: application/octet-stream' \
  --data-binary @f $VECDB/collections/x/snapshots/upload
curl -s -T point.json $VECDB/collections/x/vectors/7 | grep DELETE $VECDB/collections/x
curl -s http://example.com/collections/x -X DELETE
echo -X DELETE $VECDB/collections/x
EOF

rc=0
out=$("$check" "$tmp/routes.c" "$tmp/cmd1" 2>&1) || rc=$?
want='4 of 9 routes have no example:
  DELETE /collections/:c
  POST /collections/:c/snapshots/:s
  GET /collections/:c/snapshots/:s
  POST /collections/:c/snapshots/:s/restore'
[ "$rc" -eq 1 ] || fail "status $rc, want 1: $out"
[ "$out" = "$want" ] || fail "output differs:"$'\n'"$(diff <(echo "$want") \
    <(echo "$out"))"

# The rest of the routes: the check passes.
cat >"$tmp/cmd2" <<'EOF'
curl -s -X DELETE $VECDB/collections/x
s=$(curl -s $VECDB/collections/x/snapshots/$name)
curl -s --request POST "$VECDB/collections/x/snapshots/$s/restore"
curl -s -X POST $VECDB//collections/x/snapshots/nightly/
EOF
out=$("$check" "$tmp/routes.c" "$tmp/cmd1" "$tmp/cmd2" 2>&1) ||
	fail "all routes called, yet: $out"
[ "$out" = "all 9 routes have an example" ] || fail "unexpected: $out"

# An entry the parser cannot read is an error, not a route less.
sed 's/{ "GET", C,/{\n\t"GET", C,/' "$tmp/routes.c" >"$tmp/bad.c"
rc=0
out=$("$check" "$tmp/bad.c" "$tmp/cmd1" "$tmp/cmd2" 2>&1) || rc=$?
[ "$rc" -eq 2 ] || fail "unreadable table: status $rc: $out"
case $out in
*"cannot read the route table"*) ;;
*) fail "unreadable table: $out" ;;
esac
echo "doc_routes.sh: ok"
