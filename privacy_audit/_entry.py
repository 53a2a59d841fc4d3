"""The `privacy-audit` console script: Ctrl-C while the CLI is still importing exits 130 with one line.

Kept apart from `cli` so that nothing heavy is imported before the interrupt handling is in place.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Import the CLI and run it; an interrupt during start-up is an ordinary interruption, not a traceback."""
    try:
        from privacy_audit.cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None
    cli_main()
