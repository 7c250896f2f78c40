complete -c llmsh -l socket -d 'The kernel\'s socket [default: $XDG_RUNTIME_DIR/llmkernel.sock]' -r -F
complete -c llmsh -s c -d 'Run COMMANDS and exit' -r
complete -c llmsh -l vi -d 'Edit with vi keys instead of emacs keys (interactive only)'
complete -c llmsh -s h -l help -d 'Print help (see more with \'--help\')'
complete -c llmsh -s V -l version -d 'Print version'
