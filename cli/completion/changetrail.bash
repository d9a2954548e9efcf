# bash completion for changetrail and changetrail-consumer.
# Installed as share/bash-completion/completions/{changetrail,changetrail-consumer};
# or: source cli/completion/changetrail.bash
#
# Commands and options come from the programs' own --help at completion time,
# so they are never out of date (tests/completion/check_completion.sh).

_changetrail_words_of_help() { # prints the --options a help text names
	"$@" --help 2>/dev/null | grep -o -- '--[a-z][a-z-]*' | sort -u
}

_changetrail() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} prog=${COMP_WORDS[0]}
	local cmd="" i
	# the command is the first word that is not an option (or an option's value)
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		--config | --uri | --db) ((i++)) ;;
		-*) ;;
		*) cmd=${COMP_WORDS[i]}; break ;;
		esac
	done
	case $prev in
	--config | --from-file | --anchor-key-file | --auth-file)
		COMPREPLY=($(compgen -f -- "$cur")); return ;;
	--format)
		COMPREPLY=($(compgen -W "dictdiffer jsonpatch" -- "$cur")); return ;;
	--from)
		COMPREPLY=($(compgen -W "earliest" -- "$cur")); return ;;
	--anchors)
		COMPREPLY=($(compgen -W "kafka" -f -- "$cur")); return ;;
	--uri | --db | --since | --until | --at | --to | --version | --limit | --older-than | --actor | \
		--collection | --into | --topic | --idle-ms | --batch | --max-records | --from-db | --from-collection | \
		--id-field | --anchor-topic | --listen | --metrics-listen)
		return ;; # a value of the user's
	esac
	local commands
	commands=$("$prog" --help 2>/dev/null | sed -n 's/^  \([a-z][a-z-]*\)  .*/\1/p')
	if [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--help --version --config --uri --db --json" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$commands help" -- "$cur"))
		fi
		return
	fi
	if [[ $cmd == help ]]; then
		[[ $COMP_CWORD -eq $((i + 1)) ]] && COMPREPLY=($(compgen -W "$commands" -- "$cur"))
		return
	fi
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$(_changetrail_words_of_help "$prog" "$cmd") --help" -- "$cur"))
	else
		case $cmd in
		diff | patch | revert-diff | revert) COMPREPLY=($(compgen -f -- "$cur")) ;; # JSON files
		esac
	fi
}

_changetrail_consumer() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	if [[ $prev == --config ]]; then
		COMPREPLY=($(compgen -f -- "$cur"))
		return
	fi
	COMPREPLY=($(compgen -W "$(_changetrail_words_of_help "${COMP_WORDS[0]}") --help" -- "$cur"))
}

complete -F _changetrail changetrail
complete -F _changetrail_consumer changetrail-consumer
