#!/usr/bin/env bash
# check_install.sh BUILD_DIR: installs that build of changetrail into a fresh
# temporary prefix (cmake --install --prefix) and builds tests/install/user.c
# against the installed tree as users do, both ways:
#   1. an out-of-tree CMake project: find_package(changetrail CONFIG), the
#      shared and the static library (tests/install/CMakeLists.txt);
#   2. pkg-config: cc user.c $(pkg-config --cflags --libs changetrail), the
#      program calling jansson itself with no other flag.
# Each program must run and print the expected diff. Also checks that every
# installed header compiles alone and that no header is installed without the
# library that provides it (history.h).
set -euo pipefail
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
cc=${CC:-cc}

step() { printf 'check_install: %s\n' "$*"; }
fail() { printf 'check_install: FAIL: %s\n' "$*" >&2; exit 1; }

step "cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; fail "install"; }

pcdir=$(dirname "$(find "$prefix" -name changetrail.pc -print -quit)")
[ -n "$pcdir" ] && [ "$pcdir" != . ] || fail "no changetrail.pc installed"
libdir=$(dirname "$pcdir")
[ -e "$libdir/libchangetrail.so" ] || fail "no libchangetrail.so beside the .pc file ($libdir)"

step "headers: each compiles alone, none without a library"
[ ! -e "$prefix/include/changetrail/history.h" ] || fail "history.h installed, but no installed library provides ct_history_*"
export PKG_CONFIG_PATH="$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
# shellcheck disable=SC2207
cflags=($(pkg-config --cflags changetrail))
for h in "$prefix"/include/changetrail/*.h; do
	printf '#include <changetrail/%s>\nint ct_header_alone;\n' "$(basename "$h")" >"$tmp/h.c"
	"$cc" -std=c11 -Wall -Wextra -Werror "${cflags[@]}" -c "$tmp/h.c" -o "$tmp/h.o" ||
		fail "$(basename "$h") does not compile alone against the installed tree"
done

step "pkg-config: $(pkg-config --modversion changetrail), $(pkg-config --libs changetrail)"
# shellcheck disable=SC2046
"$cc" -std=c11 -Wall -Wextra -Werror "$here/user.c" -o "$tmp/user_pc" $(pkg-config --cflags --libs changetrail) ||
	fail "a program using json_t builds with pkg-config --cflags --libs changetrail alone"
LD_LIBRARY_PATH="$libdir" "$tmp/user_pc" || fail "the pkg-config build does not run"

step "CMake: find_package(changetrail CONFIG) in an out-of-tree project"
cmake -S "$here" -B "$tmp/user" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" \
	>"$tmp/cmake.log" 2>&1 || { cat "$tmp/cmake.log"; fail "find_package(changetrail CONFIG REQUIRED)"; }
cmake --build "$tmp/user" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; fail "building against changetrail::changetrail"; }
"$tmp/user/user_shared" || fail "the CMake build (changetrail::changetrail) does not run"
"$tmp/user/user_static" || fail "the CMake build (changetrail::changetrail_static) does not run"
if ldd "$tmp/user/user_static" | grep -q libchangetrail; then
	fail "user_static loads libchangetrail.so"
fi
step "PASS"
