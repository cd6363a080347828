"""The `research-bench` command and its sub-commands, one module each (cli.py dispatches): they parse arguments,
call run/, analysis/ and report/ for the work, and choose the exit status."""
