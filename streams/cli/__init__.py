"""The `hedger` command line: one module per command group on `streams.cli.common`.

`main` builds the parser from the groups (`replay`, `worker`, `tools`, `ops`,
`demo`); each group parses its arguments, builds the adapters and calls them.
No business rule lives here, and no group imports `main`.
"""
