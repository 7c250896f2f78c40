complete -c llmkernel -l config -d 'Config file [default: ~/.config/llmkernel/config.toml]' -r -F
complete -c llmkernel -l socket -d 'Unix socket to listen on [default: $XDG_RUNTIME_DIR/llmkernel.sock]' -r -F
complete -c llmkernel -l backend -d 'OpenAI-compatible base URL [default: http://127.0.0.1:5001/v1]; give it more than once for several backends scheduled as one machine' -r
complete -c llmkernel -l model -d 'Model name to request [default: the first the backend lists]' -r
complete -c llmkernel -l cpus -d 'Generation slots to time-share (match the server\'s parallel slots) [default: 1]' -r
complete -c llmkernel -l quantum -d 'Tokens per time slice [default: 32]' -r
complete -c llmkernel -l policy -d 'Scheduling policy [default: priority]' -r -f -a "priority\t'Type priorities, nice and aging (the default)'
rr\t'Round robin by quantum'
fair\t'A weighted fair share of tokens across users and processes'
mlfq\t'A multi-level feedback queue: short work stays high, long work sinks, periodic boost'
edf\t'Earliest deadline first within each priority level'"
complete -c llmkernel -l state-dir -d 'Directory for the durable process table [default: ~/.local/state/llmkernel]' -r -F
complete -c llmkernel -l pidfile -d 'With --daemon: write (and lock) the daemon\'s pid here' -r -F
complete -c llmkernel -l log-file -d 'Append the log to this file [default: the journal under systemd, else stderr; with --daemon, llmkernel.log in the state directory]' -r -F
complete -c llmkernel -l log-level -d 'Log filter (error, warn, info, debug, trace) [default: info, or RUST_LOG]' -r
complete -c llmkernel -l check-config -d 'Check a config file (default: the one the kernel would read) and exit: 0 valid, 1 not' -r -F
complete -c llmkernel -l daemon -d 'Fork into the background once the socket accepts connections'
complete -c llmkernel -s h -l help -d 'Print help (see more with \'--help\')'
complete -c llmkernel -s V -l version -d 'Print version'
