"""The command line: one module per subcommand, each with ``register(subparsers)``."""

COMMANDS = ("predict", "saliency", "segment", "segment_folder", "localise", "noc", "classviz", "spectrum", "import_segmentations",
            "export_coco", "gallery")  # modules of this package, in help order
