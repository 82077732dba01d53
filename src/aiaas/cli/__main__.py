"""``python -m aiaas.cli``: the same as the ``aiaas`` command."""

from aiaas.cli.main import main

main()
