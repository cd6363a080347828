"""The `research-bench` sub-commands, one module each (cli.py dispatches), over run/, analysis/ and report/."""
