"""RelayAPI's domain core and the facades over it.

The core is this package's top level: `models` (the VirtualMTA store), `validators` (field
rules), `services` (every write), `references` (the reference graph), `resolution` (effective
delivery paths), `errors`, `tokens`. It imports no facade. The facades, `greenarrow/`,
`mailmanager/` and `admin`, each call the core and never one another; `management/commands/` is
the command-line front end.
"""
