"""The command line: one module per subcommand, each with ``register(subparsers)``."""

COMMANDS = ("predict", "saliency", "segment", "localise", "classviz")  # modules of this package, in help order
