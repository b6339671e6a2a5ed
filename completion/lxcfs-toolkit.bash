_lxcfs_toolkit_completion() {
    local IFS=$'
'
    COMPREPLY=( $( env COMP_WORDS="${COMP_WORDS[*]}" \
                   COMP_CWORD=$COMP_CWORD \
                   _LXCFS_TOOLKIT_COMPLETE=complete_bash $1 ) )
    return 0
}

complete -o default -F _lxcfs_toolkit_completion lxcfs-toolkit

