"""The composition layer: the ``telemon`` command, the demo and the demo's invented cohort.

The only code that imports every component (the layers are checked by import-linter, see
``[tool.importlinter]`` in pyproject.toml): each service below it speaks to the others only
through the contract, ``telemon``.
"""
