#!/usr/bin/env bash
# Regenerate the shell completion files in completion/ (or in the directory
# given as $1) from typer, for syscontainer-tools and lxcfs-toolkit. The scripts
# call the program back to complete, so they only change when typer changes
# its completion scripts; tests/unit/test_completion.py checks they are current.
# BIN: directory holding the console scripts (default .venv/bin).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-completion}
bin=${BIN:-.venv/bin}
mkdir -p "$out"

gen() {  # gen PROGRAM SHELL FILE
    local var
    var="_$(echo "$1" | tr 'a-z-' 'A-Z_')_COMPLETE"
    # typer spells the instruction source_<shell> (click's own is <shell>_source);
    # zsh wants "#compdef" on the first line, so leading blank lines go.
    env "$var=source_$2" "$bin/$1" | sed '/./,$!d' > "$out/$3"
}

for prog in syscontainer-tools lxcfs-toolkit; do
    gen "$prog" bash "$prog.bash"
    gen "$prog" zsh "_$prog"
    # Installed in $fpath the file is autoloaded as the completion function:
    # its body only defines typer's function and rebinds the command to it, so
    # the first Tab would complete nothing. Call it then too (not when sourced).
    fn="_$(echo "$prog" | tr - _)_completion"
    printf 'if (( ${+compstate} )); then %s "$@"; fi\n' "$fn" >> "$out/_$prog"
    gen "$prog" fish "$prog.fish"
done
