"""``python -m console`` is the ``telemon`` command."""

from console.cli import main

main()
