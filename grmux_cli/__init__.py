"""The ``grmux`` command line: the top layer, over the core, the tasks, the flow and the sandbox.

``main.py`` wires the subcommands; each ``*_cmd.py`` module adds its parsers with
``register(subparsers)`` and imports what it drives only when the command runs, so ``grmux
--help`` stays light. Every command returns an :class:`~grmux_cli.exit_codes.ExitCode`.
"""
