#!/usr/bin/env bash
# check_completion.sh SOURCE_DIR BUILD_DIR: the bash completion of
# cli/completion/changetrail.bash completes, with the built programs on PATH,
# every command of `changetrail --help`, every option each command's --help
# names, option values (--format), `help CMD`, and the consumer's options;
# the zsh completion parses (zsh -n) when zsh is installed.
set -uo pipefail
src=$1
build=$2
export PATH="$build/cli:$build/consumer:$PATH"
fails=0
fail() { echo "FAIL  $*"; fails=$((fails + 1)); }
ok() { echo "ok    $*"; }

bash -n "$src/cli/completion/changetrail.bash" || fail "bash -n changetrail.bash"
# shellcheck source=/dev/null
source "$src/cli/completion/changetrail.bash"

complete_words() { # words...: the completions of the last word
	COMP_WORDS=("$@")
	COMP_CWORD=$(($# - 1))
	COMPREPLY=()
	if [[ $1 == changetrail-consumer ]]; then _changetrail_consumer; else _changetrail; fi
	printf '%s\n' "${COMPREPLY[@]}" | sort -u
}

has_all() { # what want got
	local missing
	missing=$(comm -23 <(printf '%s\n' $2 | sort -u) <(printf '%s\n' "$3"))
	if [[ -n $missing ]]; then fail "$1: missing $(echo $missing)"; else ok "$1"; fi
}

commands=$(changetrail --help | sed -n 's/^  \([a-z][a-z-]*\)  .*/\1/p')
[[ $(echo "$commands" | wc -w) -ge 10 ]] || fail "changetrail --help lists its commands"
has_all "changetrail <TAB>: every command" "$commands help" "$(complete_words changetrail '')"
has_all "changetrail help <TAB>: every command" "$commands" "$(complete_words changetrail help '')"
has_all "changetrail --config F <TAB>: commands after a global option" "$commands" \
	"$(complete_words changetrail --config /etc/x.ini '')"
for c in $commands; do
	want=$(changetrail "$c" --help | grep -o -- '--[a-z][a-z-]*' | sort -u)
	has_all "changetrail $c --<TAB>: the options its --help names" "$want --help" \
		"$(complete_words changetrail "$c" --)"
done
got=$(complete_words changetrail log --l)
[[ $got == "--limit" ]] && ok "changetrail log --l<TAB>: --limit" || fail "changetrail log --l<TAB>: '$got'"
has_all "changetrail log d1 x --format <TAB>" "dictdiffer jsonpatch" "$(complete_words changetrail log d x --format '')"
has_all "changetrail-consumer --<TAB>" "--config --check-config --no-write --help --version" \
	"$(complete_words changetrail-consumer --)"

if command -v zsh >/dev/null; then
	zsh -n "$src/cli/completion/_changetrail" && ok "zsh -n _changetrail" || fail "zsh -n _changetrail"
else
	echo "skip  zsh -n _changetrail (no zsh)"
fi
echo "$fails failed"
[[ $fails -eq 0 ]]
