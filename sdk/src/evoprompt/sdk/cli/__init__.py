"""The `evoprompt` command's entry point and the SDK's own subcommands (evaluate, tasks, info)."""
