"""``python -m simulator``: the simulator without the ``llmops`` CLI."""

from __future__ import annotations

import argparse

from simulator.cli import add_arguments, run


def main() -> None:
    parser = argparse.ArgumentParser(prog="llmops-sim", description="OpenAI-compatible model simulator")
    add_arguments(parser)
    run(parser.parse_args())


if __name__ == "__main__":
    main()
