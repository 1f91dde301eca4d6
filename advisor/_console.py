"""The `advisor` command's entry point. It imports the CLI (click, the commands) only once it
can catch Ctrl-C, so an interrupt while the command starts is the same one line as later."""

from __future__ import annotations

import sys


def main():
    try:
        from advisor.cli import main as cli
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        sys.exit(130)
    return cli()
