#!/usr/bin/env bash
# dockerfile_test.sh SRCDIR: no container engine runs here, so this reads
# deploy/Dockerfile instead:
#  - every stage is FROM debian:12, and --from names an earlier stage;
#  - every COPY/ADD source from the build context exists in the repository;
#  - every repository path a RUN line uses was copied into its stage first;
#  - the build stage copies every directory the root CMakeLists.txt adds;
#  - the last stage runs as a non-root user with VECDB_DATA_DIR and the
#    volume on /var/lib/vecdb;
#  - what deploy/k8s runs in the image exists: the vecdb-* binaries as
#    CMake targets, any other command in install-deps.sh --runtime;
#  - with a build directory (BUILDDIR, optional second argument), every
#    library our binaries link directly is in that runtime list.
set -euo pipefail
src=${1:?usage: dockerfile_test.sh SRCDIR [BUILDDIR]}
builddir=${2:-}
df=$src/deploy/Dockerfile

passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

[ -f "$df" ] || { echo "FAIL: no $df" >&2; exit 1; }

# The instructions, one per line: comments dropped, continuations joined.
instructions=$(sed -e '/^[[:space:]]*#/d' "$df" |
    awk '{ if (sub(/\\[[:space:]]*$/, "")) { buf = buf $0 " "; next }
	   print buf $0; buf = "" }' | sed '/^[[:space:]]*$/d')

stage=-1
stages=()          # names of the stages so far
copied=()          # repository paths copied into the current stage
last_user=""
last_env=""
last_volume=""
has_repo_path() {  # is $1 (a path in the repository) covered by a COPY?
	local p
	for p in "${copied[@]}"; do
		case "$1" in "$p" | "$p"/*) return 0 ;; esac
	done
	return 1
}
while read -r op rest; do
	op=${op^^}
	case "$op" in
	FROM)
		stage=$((stage + 1))
		copied=()
		last_user=""
		set -- $rest
		[ "$1" = debian:12 ] && ok || bad "stage $stage is FROM $1," \
		    "not debian:12"
		[ "${2:-}" != "" ] && [ "${2^^}" = AS ] && stages+=("$3") ||
		    stages+=("")
		;;
	COPY | ADD)
		set -- $rest
		from=""
		while [ "${1#--}" != "$1" ]; do
			case "$1" in --from=*) from=${1#--from=} ;; esac
			shift
		done
		args=("$@")
		n=${#args[@]}
		if [ -n "$from" ]; then
			found=no
			for s in "${stages[@]:0:$stage}"; do
				[ "$s" = "$from" ] && found=yes
			done
			[ $found = yes ] && ok || bad "$op --from=$from names" \
			    "no earlier stage"
			continue
		fi
		for ((i = 0; i < n - 1; i++)); do
			p=${args[i]%/}
			[ "$p" = . ] && p=""
			if [ -e "$src/$p" ]; then
				ok
				copied+=("$p")
			else
				bad "$op $p: no such path in the repository"
			fi
		done
		;;
	RUN)
		# Words that name something under a top-level entry of the
		# repository (scripts/x.sh, tests/...).
		for w in $(echo "$rest" | tr ';&|()"'"'" '      '); do
			w=${w#/src/}
			top=${w%%/*}
			[ "$top" != "$w" ] && [ -n "$top" ] &&
			    [ -e "$src/$top" ] || continue
			[ "$top" = build ] && continue   # made by cmake
			if [ ! -e "$src/$w" ]; then
				bad "RUN uses $w: no such path in the repository"
			elif ! has_repo_path "$w"; then
				bad "RUN uses $w before a COPY brings it in"
			else
				ok
			fi
		done
		# install-deps.sh copied elsewhere (/tmp/install-deps.sh).
		case "$rest" in *install-deps.sh*) ok ;; esac
		;;
	USER) last_user=$rest ;;
	ENV) last_env="$last_env $rest" ;;
	VOLUME) last_volume=$rest ;;
	esac
done <<<"$instructions"

[ "${#stages[@]}" -ge 2 ] && ok || bad "not a multi-stage build"

# The build stage copies what the root CMakeLists.txt adds.
for d in $(sed -n 's/^add_subdirectory(\([^)]*\)).*/\1/p' \
    "$src/CMakeLists.txt"); do
	grep -qE "^COPY $d $d\$" "$df" && ok ||
	    bad "the build stage does not COPY $d (add_subdirectory)"
done

case "$last_user" in
"" | root | 0 | 0:* | root:*) bad "the image runs as root ($last_user)" ;;
*) ok ;;
esac
case "$last_env" in
*VECDB_DATA_DIR=/var/lib/vecdb*) ok ;;
*) bad "no ENV VECDB_DATA_DIR=/var/lib/vecdb in the last stage" ;;
esac
[ "$last_volume" = /var/lib/vecdb ] && ok ||
    bad "VOLUME is '$last_volume', not /var/lib/vecdb"

# What deploy/k8s runs: vecdb-* binaries are CMake targets, the rest comes
# from the runtime package list.
runtime=$(sed -n '/^runtime=(/,/^)/p' "$src/scripts/install-deps.sh" |
    sed -e 's/#.*//' -e '1d;$d' | tr -s ' \t\n' ' ')
# (only the manifests that run our image: etcd's has its own)
ours=$(grep -rlE 'image: vecdb:' "$src/deploy/k8s")
for cmd in $(grep -hoE '(command|args): \["[a-z-]+"' $ours |
    sed 's/.*\["//; s/"//' | sort -u); do
	case "$cmd" in
	vecdb*)
		grep -rqE "add_executable\\($cmd " --include=CMakeLists.txt \
		    "$src" && ok || bad "deploy/k8s runs $cmd: no such target"
		;;
	--*) ;;
	*)
		case " $runtime " in
		*" $cmd "*) ok ;;
		*) bad "deploy/k8s runs $cmd: not in install-deps --runtime" ;;
		esac
		;;
	esac
done

# Direct library dependencies of the built binaries.
if [ -n "$builddir" ] && [ -d "$builddir/bin" ]; then
	base="libc6 libgcc-s1 libstdc++6"   # in debian:12 already
	pkg_of() { dpkg -S "$1" 2>/dev/null | sed -n '1s/:.*//p' || true; }
	for lib in $(for b in "$builddir"/bin/vecdb*; do
	    readelf -d "$b" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p'; done |
	    sort -u); do
		path=$(ldconfig -p | awk -v l="$lib" \
		    '$1 == l && !p { print $NF; p = 1 }')
		pkg=$(pkg_of "$(readlink -f "$path")")
		[ -n "$pkg" ] || pkg=$(pkg_of "$path")
		case " $runtime $base " in
		*" $pkg "*) ok ;;
		*) case "$lib" in
			libc.so.* | libm.so.* | ld-linux*) ok ;;
			# A sanitizer build (build-asan) links gcc's runtimes;
			# the image is a RelWithDebInfo build.
			libasan.so.* | libubsan.so.* | libtsan.so.*) ok ;;
			*) bad "$lib (package '$pkg') is not in" \
			    "install-deps --runtime" ;;
			esac ;;
		esac
	done
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
