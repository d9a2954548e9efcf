#!/usr/bin/env bash
# check_man.sh SOURCE_DIR BUILD_DIR: the man pages built from man/*.scd render
# without warnings, and they name every command of `changetrail --help` and
# every option each command's --help names, and every option of
# `changetrail-consumer --help`: a command or option added to a program
# without its man page fails here. Exit 77 when scdoc did not build them.
set -uo pipefail
src=$1
build=$2
fails=0
fail() { echo "FAIL  $*"; fails=$((fails + 1)); }
ok() { echo "ok    $*"; }
for page in changetrail.1 changetrail-consumer.1; do
	if [[ ! -s $build/man/$page ]]; then
		echo "no $build/man/$page (scdoc missing at configure time)"
		exit 77
	fi
	warn=$(groff -man -Tutf8 -ww -z "$build/man/$page" 2>&1)
	[[ -z $warn ]] && ok "$page renders without warnings" || fail "$page: $warn"
done
page=$src/man/changetrail.1.scd
commands=$("$build/cli/changetrail" --help | sed -n 's/^  \([a-z][a-z-]*\)  .*/\1/p')
for c in $commands; do
	grep -q "^\*$c\*" "$page" && ok "changetrail(1) has the command $c" || fail "changetrail(1) lacks the command $c"
	for o in $("$build/cli/changetrail" "$c" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
		grep -q -- "\*$o\*" "$page" || fail "changetrail(1) lacks $c's option $o"
	done
done
page=$src/man/changetrail-consumer.1.scd
for o in $("$build/consumer/changetrail-consumer" --help | grep -o -- '--[a-z][a-z-]*' | sort -u) --help --version; do
	grep -q -- "\*$o\*" "$page" && ok "changetrail-consumer(1) has $o" || fail "changetrail-consumer(1) lacks $o"
done
echo "$fails failed"
[[ $fails -eq 0 ]]
