#!/usr/bin/env bash
# Fails, listing them, when a route of the REST route table is called by none
# of the given example commands, so a new route cannot ship without an
# example in docs/API.md.
#   doc_routes.sh ROUTES.c CMD...
# The routes are the method and pattern of each entry of api_routes[] in
# ROUTES.c (string literals and #define'd string macros). A call is a `curl`
# of a URL starting with $VECDB; its method is the one given with
# -X/--request, else PUT for -T, POST when it sends data (-d, --data*, -F,
# --form, --json), else GET. As in the server's dispatcher, a call reaches
# the first route in table order with its method whose pattern matches the
# path segment by segment, a `:param` matching any one segment.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: doc_routes.sh ROUTES.c CMD..." >&2; exit 2; }

awk '
FNR == 1 { file++ }

# ----- the route table (first file) -----
file == 1 && /^#define [A-Za-z_][A-Za-z0-9_]* "[^"]*"[ \t]*$/ {
	v = $0
	sub(/^#define [A-Za-z_][A-Za-z0-9_]* "/, "", v)
	sub(/"[ \t]*$/, "", v)
	macro[$2] = v
	next
}
file == 1 && /api_routes\[\][ \t]*=[ \t]*\{/ { in_table = 1; next }
file == 1 && in_table && /^};/ { in_table = 0; next }
file == 1 && in_table {
	# Every entry opens with a brace: counting them catches an entry
	# written in a shape this parser does not read.
	braces += gsub(/\{/, "{")
	if (match($0, /\{[ \t]*"[A-Z]+"[ \t]*,[^,]*,/))
		add_route(substr($0, RSTART + 1, RLENGTH - 2))
	next
}
file == 1 { next }

# ----- the example commands (other files) -----
{
	line = line $0
	if (line ~ /\\$/) {        # a continued line
		sub(/\\$/, " ", line)
		next
	}
	scan(line)
	line = ""
}

END {
	if (fatal)                 # an exit in a rule still runs END
		exit 2
	if (nroutes == 0 || nroutes != braces) {
		printf "cannot read the route table: %d entries parsed, %d " \
		    "braces\n", nroutes, braces > "/dev/stderr"
		exit 2
	}
	missing = 0
	for (r = 1; r <= nroutes; r++)
		if (!covered[r])
			missing++
	if (missing == 0) {
		printf "all %d routes have an example\n", nroutes
		exit 0
	}
	printf "%d of %d routes have no example:\n", missing, nroutes \
	    > "/dev/stderr"
	for (r = 1; r <= nroutes; r++)
		if (!covered[r])
			printf "  %s /%s\n", rmethod[r], rpat[r] > "/dev/stderr"
	exit 1
}

# "GET", C "/vectors/:id"  ->  method GET, pattern collections/:c/vectors/:id
function add_route(entry,    m, rest, pat, tok) {
	m = entry
	sub(/^[ \t]*"/, "", m)
	sub(/".*/, "", m)
	rest = entry
	sub(/^[ \t]*"[A-Z]+"[ \t]*,[ \t]*/, "", rest)
	pat = ""
	while (rest != "") {
		if (match(rest, /^"[^"]*"/)) {
			pat = pat substr(rest, 2, RLENGTH - 2)
		} else if (match(rest, /^[A-Za-z_][A-Za-z0-9_]*/)) {
			tok = substr(rest, 1, RLENGTH)
			if (!(tok in macro)) {
				printf "route table: unknown macro %s\n", tok \
				    > "/dev/stderr"
				fatal = 1
				exit 2
			}
			pat = pat macro[tok]
		} else if (match(rest, /^[ \t]+/)) {
		} else {
			printf "route table: cannot read %s\n", entry \
			    > "/dev/stderr"
			fatal = 1
			exit 2
		}
		rest = substr(rest, RLENGTH + 1)
	}
	nroutes++
	rmethod[nroutes] = m
	rpat[nroutes] = pat
}

# Split a shell line into words, honouring quotes; | ; & ( ) and newlines
# become the word "|", which ends a command.
function words(s,    i, c, q, w, n, inw) {
	n = 0; w = ""; q = ""; inw = 0
	for (i = 1; i <= length(s); i++) {
		c = substr(s, i, 1)
		if (q != "") {
			if (c == q)
				q = ""
			else if (q == "\"" && c == "\\" && i < length(s))
				w = w substr(s, ++i, 1)
			else
				w = w c
		} else if (c == "'\''" || c == "\"") {
			q = c; inw = 1
		} else if (c == " " || c == "\t") {
			if (inw) { wd[++n] = w; w = ""; inw = 0 }
		} else if (c ~ /[|;&()]/) {
			if (inw) { wd[++n] = w; w = ""; inw = 0 }
			wd[++n] = "|"
		} else {
			w = w c; inw = 1
		}
	}
	if (inw)
		wd[++n] = w
	return n
}

# Record every curl of $VECDB in a line.
function scan(s,    n, i, m, data, put, nurl, u, k) {
	n = words(s)
	for (i = 1; i <= n; i++) {
		if (wd[i] != "curl")
			continue
		m = ""; data = 0; put = 0; nurl = 0
		for (i++; i <= n && wd[i] != "|"; i++) {
			if (wd[i] == "-X" || wd[i] == "--request")
				m = wd[++i]
			else if (wd[i] ~ /^-X[A-Z]+$/)
				m = substr(wd[i], 3)
			else if (wd[i] ~ /^(-d|-F|--data.*|--form|--json)$/)
				{ data = 1; i++ }
			else if (wd[i] == "-T" || wd[i] == "--upload-file")
				{ put = 1; i++ }
			else if (wd[i] ~ /^\$(VECDB|\{VECDB\})/)
				url[++nurl] = wd[i]
		}
		if (m == "")
			m = put ? "PUT" : data ? "POST" : "GET"
		for (k = 1; k <= nurl; k++) {
			u = url[k]
			sub(/^\$(VECDB|\{VECDB\})/, "", u)
			sub(/[?#].*/, "", u)
			call(m, u)
		}
	}
}

# Mark the route a request reaches, the way the server picks it.
function call(m, path,    ns, seg, np, pseg, r, j, ok) {
	ns = split(path, seg, "/")
	np = 0
	for (j = 1; j <= ns; j++)          # drop empty segments, like strtok
		if (seg[j] != "")
			seg[++np] = seg[j]
	for (r = 1; r <= nroutes; r++) {
		if (rmethod[r] != m || split(rpat[r], pseg, "/") != np)
			continue
		ok = 1
		for (j = 1; j <= np && ok; j++)
			if (substr(pseg[j], 1, 1) != ":" && pseg[j] != seg[j])
				ok = 0
		if (ok) {
			covered[r] = 1
			return
		}
	}
}
' "$@"
