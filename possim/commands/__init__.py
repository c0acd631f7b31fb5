"""Sub-commands of ``possim``: each module has ``register(subparsers)`` and sets ``func`` on its parser."""
