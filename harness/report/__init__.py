"""report/ -- one printer per output format, reading records and analysis: the terminal summary, Markdown,
JUnit properties, the HTML report and its SVG charts, exports (Bencher, github-action-benchmark), and the
`research-bench` commands (compare, report, export)."""
