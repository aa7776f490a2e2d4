"""``python -m telemon`` is the ``telemon`` command."""

from telemon.cli import main

main()
