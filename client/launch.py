"""The `vigil` program: the tray app when run alone (or as `vigil gui`), else a terminal command.

It chooses before importing either. The terminal commands load the whole core at once (HTTP,
keyring, cryptography, SQLite); the tray app shows its icon first and loads the core on worker
threads after, so going through client.cli would delay the icon by about 90 ms.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Start the tray app or run one command; returns the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if os.name == "posix":
        # Everything Vigil writes (settings, cache, outbox, their WAL/SHM, downloads) is for this
        # account alone; set for the whole process, before any file is made.
        os.umask(0o077)
    if not arguments or arguments == ["gui"]:
        from client.app import main as run_tray_app

        return run_tray_app()
    from client.cli import main as run_command

    return run_command(arguments)


if __name__ == "__main__":
    sys.exit(main())
