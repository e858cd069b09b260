#!/usr/bin/env bash
#
# install.sh — does the library install and work as a package?
#
# What a user of the library sees is not the build tree but what
# `make install` leaves behind: headers, libseshatraft.a, the versioned .so
# with its symlinks, and seshatraft.pc.  This script installs into a scratch
# DESTDIR and then behaves like such a user:
#
#   - the installed files, symlinks, SONAME and version agree with
#     SR_VERSION_* in seshat/types.h;
#   - the .so exports only functions declared SR_API in a public header
#     (and, once the engine exists, every one of them); the static archive
#     defines no global symbol outside the sr_ namespace, so linking it
#     into a program cannot collide with the program's own names;
#   - every installed header compiles alone as strict C11 and as C++11,
#     and its functions keep C linkage under C++ (extern "C");
#   - examples/embed/embed.c, built outside the tree with nothing but
#     `pkg-config --cflags --libs seshatraft`, links and runs against the
#     shared library and, with `pkg-config --static`, against the archive;
#   - examples/counter/counter.c (seshat/server.h) built the same way runs
#     as a three-process cluster (test/server/counter.sh);
#   - `make uninstall` removes what install put there.
#
# It runs from `make test` (test/install/build.mk hands over the build
# directory and flags in SR_TEST_*) or alone from the top of the tree.  The
# make it calls must see the same BUILD, or it would rebuild the library
# elsewhere.  Each check prints "ok"/"FAIL"/"skip"; the last line is
# "N passed, N failed" and the exit status is non-zero on any failure.

set -u
cd "$(dirname "$0")/../.." || exit 1

BUILD=${SR_TEST_BUILD:-build}
CC=${SR_TEST_CC:-cc}
SAN=${SR_TEST_SAN:-}
OPT=${SR_TEST_OPT:--O2 -g}
URING=${SR_TEST_URING:-}
PREFIX=${SR_TEST_PREFIX:-/usr/local}
CXX=${SR_TEST_CXX:-g++}

passed=0
failed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
fail() {
	echo "FAIL $1"
	shift
	for l in "$@"; do echo "  $l"; done
	failed=$((failed + 1))
}
skip() { echo "skip $1 ($2)"; }
finish() {
	echo "$passed passed, $failed failed"
	[[ $failed -eq 0 ]]
	exit
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sr-install.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
D=$tmp/root
W=$tmp/work
mkdir -p "$D" "$W"
LIBDIR=$PREFIX/lib
INCDIR=$PREFIX/include

# The version the headers claim; the file names and the .pc must agree.
ver_part() {
	sed -En "s/^#define[[:space:]]+SR_VERSION_$1[[:space:]]+([0-9]+).*/\1/p" \
		include/seshat/types.h
}
MAJOR=$(ver_part MAJOR)
VERSION=$MAJOR.$(ver_part MINOR).$(ver_part PATCH)

# The engine and the memory store are what embed.c needs to link.
have_engine=0 have_embed=0
[[ -f lib/node.c ]] && have_engine=1
[[ $have_engine -eq 1 && -f backends/mem/mem.c ]] && have_embed=1

# Run make with the caller's build directory and flags, and without the
# caller's MAKEFLAGS (its jobserver is not ours to use).
submake() {
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory \
		BUILD="$BUILD" CC="$CC" SAN="$SAN" OPT="$OPT" \
		${URING:+URING=$URING} PREFIX="$PREFIX" DESTDIR="$D" "$@"
}

# ---------------------------------------------------------------- install
if submake install >"$W/install.log" 2>&1; then
	ok install
else
	fail install "make install failed:" "$(tail -n 15 "$W/install.log")"
	finish
fi

missing=()
for h in include/seshat/*.h; do
	cmp -s "$h" "$D$INCDIR/seshat/${h##*/}" || missing+=("$h")
done
for f in libseshatraft.a "libseshatraft.so.$VERSION" pkgconfig/seshatraft.pc; do
	[[ -f $D$LIBDIR/$f ]] || missing+=("$LIBDIR/$f")
done
extra=$(cd "$D$INCDIR/seshat" && ls | while read -r h; do
	[[ -f $OLDPWD/include/seshat/$h ]] || echo "$h"; done)
if [[ ${#missing[@]} -eq 0 && -z $extra ]]; then
	ok installed_files_match_tree
else
	fail installed_files_match_tree "missing or different: ${missing[*]}" \
		"installed but not in include/seshat: $extra"
fi

so_link=$(readlink "$D$LIBDIR/libseshatraft.so.$MAJOR")
dev_link=$(readlink "$D$LIBDIR/libseshatraft.so")
if [[ $so_link == "libseshatraft.so.$VERSION" &&
	$dev_link == "libseshatraft.so.$MAJOR" ]]; then
	ok so_symlinks
else
	fail so_symlinks "libseshatraft.so.$MAJOR -> '$so_link'" \
		"libseshatraft.so -> '$dev_link'" \
		"(want the chain .so -> .so.$MAJOR -> .so.$VERSION)"
fi

soname=$(readelf -d "$D$LIBDIR/libseshatraft.so.$VERSION" 2>/dev/null |
	sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
if [[ $soname == "libseshatraft.so.$MAJOR" ]]; then
	ok soname
else
	fail soname "SONAME is '$soname', want libseshatraft.so.$MAJOR"
fi

# ---------------------------------------------------------------- symbols
# Functions the given headers declare: every "SR_API <type> <name>(",
# wherever the lines break (preprocessor lines, the SR_API definition
# among them, left out).
api_functions() {
	grep -hv '^[[:space:]]*#' "$@" | tr '\n' ' ' |
		grep -o 'SR_API[^;(]*(' |
		sed -E 's/.*[^A-Za-z0-9_]([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*\($/\1/' |
		sort -u
}
api=$(api_functions include/seshat/*.h)
is_tool_symbol() {
	[[ $1 == _init || $1 == _fini ]] && return 0
	# sanitizer instrumentation adds its own globals
	[[ -n $SAN && $1 =~ ^(__asan|___asan|__odr_asan|__ubsan|__sanitizer|__sancov|\.) ]]
}

exported=$(nm -D --defined-only "$D$LIBDIR/libseshatraft.so.$VERSION" |
	awk '{print $NF}' | sort -u)
bad=()
for s in $exported; do
	is_tool_symbol "$s" && continue
	grep -qx "$s" <<<"$api" || bad+=("$s")
done
if [[ ${#bad[@]} -eq 0 ]]; then
	ok so_exports_only_public_api
else
	fail so_exports_only_public_api \
		"exported but not declared SR_API in include/seshat: ${bad[*]}"
fi

if [[ $have_engine -eq 1 ]]; then
	unexported=$(comm -23 <(echo "$api") <(echo "$exported") | tr '\n' ' ')
	if [[ -z ${unexported// /} ]]; then
		ok so_exports_every_public_function
	else
		fail so_exports_every_public_function \
			"declared SR_API but not exported: $unexported"
	fi
else
	skip so_exports_every_public_function "engine not in the tree yet"
fi

# Hidden visibility protects the .so, not the archive: a static link sees
# every global.  They must all live in the sr_ namespace.
bad=()
for s in $(nm -g --defined-only "$D$LIBDIR/libseshatraft.a" 2>/dev/null |
	awk 'NF >= 3 {print $NF}' | sort -u); do
	is_tool_symbol "$s" && continue
	[[ $s == sr_* ]] || bad+=("$s")
done
if [[ ${#bad[@]} -eq 0 ]]; then
	ok archive_globals_prefixed_sr
else
	fail archive_globals_prefixed_sr "globals outside sr_: ${bad[*]}"
fi

# ---------------------------------------------------------------- headers
CWARN="-Wall -Wextra -Werror -pedantic -Wshadow -Wstrict-prototypes"
CWARN="$CWARN -Wmissing-prototypes -Wundef"
bad=()
for h in "$D$INCDIR"/seshat/*.h; do
	n=${h##*/}
	# twice: the include guard must hold
	printf '#include <seshat/%s>\n#include <seshat/%s>\n' "$n" "$n" \
		>"$W/h_$n.c"
	if ! $CC -std=c11 $CWARN -I"$D$INCDIR" -fsyntax-only "$W/h_$n.c" \
		>"$W/h_$n.log" 2>&1; then
		bad+=("$n: $(head -n 3 "$W/h_$n.log")")
	fi
done
if [[ ${#bad[@]} -eq 0 ]]; then
	ok headers_compile_alone_c11
else
	fail headers_compile_alone_c11 "${bad[@]}"
fi

if command -v "$CXX" >/dev/null; then
	bad=()
	for h in "$D$INCDIR"/seshat/*.h; do
		n=${h##*/}
		fns=$(api_functions "$h")
		# Take the address of every function so that the object
		# file references it: under extern "C" the reference is the
		# plain C name, otherwise a mangled _Z... one.
		{
			echo "#include <seshat/$n>"
			echo "void *sr_test_refs[] = {"
			for f in $fns; do
				echo "	reinterpret_cast<void *>(&$f),"
			done
			echo "	nullptr };"
		} >"$W/h_$n.cc"
		if ! $CXX -std=c++11 -Wall -Wextra -Werror -pedantic \
			-I"$D$INCDIR" -c "$W/h_$n.cc" -o "$W/h_$n.o" \
			>"$W/h_$n.cxx.log" 2>&1; then
			bad+=("$n: $(head -n 3 "$W/h_$n.cxx.log")")
			continue
		fi
		undef=$(nm -u "$W/h_$n.o" | awk '{print $NF}')
		for f in $fns; do
			grep -qx "$f" <<<"$undef" ||
				bad+=("$n: $f has no C linkage under C++")
		done
	done
	if [[ ${#bad[@]} -eq 0 ]]; then
		ok headers_compile_as_cxx11_with_c_linkage
	else
		fail headers_compile_as_cxx11_with_c_linkage "${bad[@]}"
	fi
else
	skip headers_compile_as_cxx11_with_c_linkage "no $CXX"
fi

# ---------------------------------------------------------------- pkg-config
export PKG_CONFIG_PATH=$D$LIBDIR/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=$D
export PKG_CONFIG_LIBDIR=$D$LIBDIR/pkgconfig # ignore the system's copy
pcver=$(pkg-config --modversion seshatraft 2>&1)
if [[ $pcver == "$VERSION" ]]; then
	ok pkgconfig_version
else
	fail pkgconfig_version "pkg-config says '$pcver', headers say $VERSION"
fi

if [[ $have_embed -eq 1 ]]; then
	# Outside the tree: only pkg-config knows where things are.
	cp examples/embed/embed.c "$W/embed.c"
	cflags=$(pkg-config --cflags seshatraft)
	libs=$(pkg-config --libs seshatraft)
	slibs=$(pkg-config --static --libs seshatraft)
	want=$(sed -n 's/^.*Prints: \(.*\) \*\/$/\1/p' \
		examples/embed/embed.c)

	if (cd "$W" && $CC -std=c11 $SAN $cflags embed.c -o embed_shared \
		$libs) >"$W/shared.log" 2>&1; then
		out=$(LD_LIBRARY_PATH=$D$LIBDIR "$W/embed_shared" 2>&1)
		rc=$?
		lib=$(LD_LIBRARY_PATH=$D$LIBDIR ldd "$W/embed_shared" |
			awk '/libseshatraft/ {print $3}')
		if [[ $rc -eq 0 && $(tail -n 1 <<<"$out") == "$want" &&
			$lib == "$D$LIBDIR/libseshatraft.so.$MAJOR" ]]; then
			ok embed_links_shared_via_pkgconfig
		else
			fail embed_links_shared_via_pkgconfig "exit $rc," \
				"resolved libseshatraft to '$lib'," \
				"last line '$(tail -n 1 <<<"$out")'," \
				"want '$want'"
		fi
	else
		fail embed_links_shared_via_pkgconfig "$(head -n 5 "$W/shared.log")"
	fi

	# A fully static program when we can (checks Libs.private lists
	# everything the archive needs); sanitizer runtimes cannot link
	# -static, so then only libseshatraft is taken from the archive.
	if [[ -z $SAN ]]; then
		sflags="-static"
	else
		sflags="$SAN"
		slibs=${slibs/-lseshatraft/-l:libseshatraft.a}
	fi
	if (cd "$W" && $CC -std=c11 $sflags $cflags embed.c -o embed_static \
		$slibs) >"$W/static.log" 2>&1; then
		out=$(env -u LD_LIBRARY_PATH "$W/embed_static" 2>&1)
		rc=$?
		needed=$(readelf -d "$W/embed_static" | grep -c 'NEEDED.*libseshatraft')
		if [[ $rc -eq 0 && $(tail -n 1 <<<"$out") == "$want" &&
			$needed -eq 0 ]]; then
			ok embed_links_static_via_pkgconfig
		else
			fail embed_links_static_via_pkgconfig "exit $rc," \
				"NEEDED libseshatraft entries: $needed," \
				"last line '$(tail -n 1 <<<"$out")', want '$want'"
		fi
	else
		fail embed_links_static_via_pkgconfig "$(head -n 5 "$W/static.log")"
	fi
else
	skip embed_links_shared_via_pkgconfig "engine or mem store not in tree"
	skip embed_links_static_via_pkgconfig "engine or mem store not in tree"
fi

# The tutorial's counter (examples/counter, on seshat/server.h), built the
# same way outside the tree, then run as three processes.
if [[ $have_embed -eq 1 && -f examples/counter/counter.c ]]; then
	cp examples/counter/counter.c "$W/counter.c"
	if (cd "$W" && $CC -std=c11 $SAN $cflags counter.c -o counter \
		$libs) >"$W/counter.log" 2>&1; then
		if out=$(LD_LIBRARY_PATH=$D$LIBDIR bash test/server/counter.sh \
			"$W/counter" 2>&1); then
			ok counter_links_via_pkgconfig_and_replicates
		else
			fail counter_links_via_pkgconfig_and_replicates \
				"$(tail -n 12 <<<"$out")"
		fi
	else
		fail counter_links_via_pkgconfig_and_replicates \
			"$(head -n 5 "$W/counter.log")"
	fi
else
	skip counter_links_via_pkgconfig_and_replicates "no examples/counter"
fi

# The in-tree build (examples/build.mk; with the caller's flags, so under
# the sanitizers in an ASan run) must print the same.
if [[ $have_embed -eq 1 && -x $BUILD/examples/embed ]]; then
	out=$("$BUILD/examples/embed" 2>&1)
	rc=$?
	if [[ $rc -eq 0 && $(tail -n 1 <<<"$out") == "$want" ]]; then
		ok embed_in_tree_runs
	else
		fail embed_in_tree_runs "exit $rc, output:" "$(tail -n 20 <<<"$out")"
	fi
else
	skip embed_in_tree_runs "$BUILD/examples/embed not built"
fi

# ---------------------------------------------------------------- uninstall
if submake uninstall >"$W/uninstall.log" 2>&1; then
	left=$(cd "$D" && find . -type f -o -type l)
	if [[ -z $left ]]; then
		ok uninstall_removes_everything
	else
		fail uninstall_removes_everything "left behind:" $left
	fi
else
	fail uninstall_removes_everything "$(tail -n 5 "$W/uninstall.log")"
fi

finish
