_syscontainer_tools_completion() {
    local IFS=$'
'
    COMPREPLY=( $( env COMP_WORDS="${COMP_WORDS[*]}" \
                   COMP_CWORD=$COMP_CWORD \
                   _SYSCONTAINER_TOOLS_COMPLETE=complete_bash $1 ) )
    return 0
}

complete -o default -F _syscontainer_tools_completion syscontainer-tools

