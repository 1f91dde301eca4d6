"""What the benchmark scripts that read the archives share: their command line's start."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def data_parser(doc: str) -> argparse.ArgumentParser:
    """A parser with DATA_DIR (default: $ADVISOR_DATA_DIR, else ../shared/data beside the
    repository) and --only ID ..., described by the first paragraph of `doc`."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("data_dir", nargs="?", default=os.environ.get("ADVISOR_DATA_DIR") or str(
        Path(__file__).resolve().parent.parent.parent / "shared" / "data"))
    ap.add_argument("--only", nargs="*", help="these fit ids only")
    return ap


def selected_archives(ap: argparse.ArgumentParser, args: argparse.Namespace):
    """(spec, archive path) of each shipped archive fit `--only` keeps, in catalogue order; a
    missing archive ends the script with a one-line usage error."""
    from calibration.catalogue import catalogue

    for spec in catalogue():
        if args.only and spec.id not in args.only:
            continue
        path = Path(args.data_dir) / spec.archive
        if not path.exists():
            ap.error(f"{path} does not exist: give the folder of the archives")
        yield spec, path
