"""``python -m executors.node ...``: the same as ``llmops node ...``."""

from __future__ import annotations

import argparse
import sys

from executors.node.cli import add_arguments, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llmops node", description="The llmops data-plane node agent.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
