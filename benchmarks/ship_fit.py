"""Ship a calibrated fit: a copy for fits/ with the calibration's timings in its provenance.

`advisor calibrate` leaves times out of the fit file, so that a resumed calibration writes the
same file as an uninterrupted one. A shipped fit says what it cost (issue 8): each stage's span
from its first population's start to its last one's end, member-updates/s, devices and time
by phase, read from the out-dir's unit manifests. A fit that fails its checks
(calibration.checks) is not shipped.

  python benchmarks/ship_fit.py CALIB/bro-torch-Hopper-v5.json --out-dir CALIB \\
      -o fits/bro-torch/Hopper-v5.json [--note "why this fit borrows a prior" ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import advisor  # noqa: E402
from advisor.errors import AdvisorError  # noqa: E402
from advisor.fitfile import write_fit_file  # noqa: E402
from calibration.calibrate import stage_summary  # noqa: E402
from calibration.checks import fit_checks  # noqa: E402
from calibration.grid import load_grid_dict  # noqa: E402
from calibration.outdir import read_spec  # noqa: E402


class ShipError(AdvisorError):
    pass


SHIPPED = "shipped with its timings: "


def timing_notes(out_dir: Path) -> list[str]:
    """A line per stage, with times, from the unit manifests under `out_dir`/units."""
    records: dict[int, list[dict]] = {}
    for path in sorted((out_dir / "units").glob("*.json")):
        record = json.loads(path.read_text())
        records.setdefault(int(record["unit"]["stage"]), []).append(record)
    if sorted(records) != [1, 2]:
        raise ShipError(f"{out_dir}/units holds stages {sorted(records)}, not both 1 and 2: "
                        "not a finished calibration")
    return [f"{SHIPPED}{stage_summary(f'stage {s}', records[s])}" for s in (1, 2)]


def ship(fit_path: Path, out_dir: Path, output: Path, notes: list[str] = ()) -> list[str]:
    """Write the shipped copy, with `notes` (what the out-dir cannot say, e.g. why a prior)
    added to its provenance; returns the fit's check lines. ShipError if it fails one."""
    fit = advisor.load_fit(str(fit_path)).model
    spec = read_spec(out_dir / "grid.json")
    grid = load_grid_dict(spec["grid"])
    if not fit.provenance.command.startswith("advisor calibrate ") or not any(
            n.startswith(f"grid {grid.name} ({spec.get('digest')})") for n in fit.provenance.notes):
        raise ShipError(f"{fit_path} was not made by advisor calibrate from {out_dir} (its "
                        f"grid {grid.name}, digest {spec.get('digest')}): its timings would not "
                        "be its own")
    if any(n.startswith(SHIPPED) for n in fit.provenance.notes):
        raise ShipError(f"{fit_path} is already shipped (its notes hold the timings); ship the "
                        "fit advisor calibrate wrote")
    checks = fit_checks(fit, batch_sizes=list(grid.batch_sizes))
    failed = [str(c) for c in checks if not c.ok]
    if failed:
        raise ShipError(f"{fit_path} fails its checks, not shipped: {'; '.join(failed)}")
    if any(not str(n).strip() for n in notes):
        raise ShipError("a --note is empty")
    notes = (*fit.provenance.notes, *timing_notes(out_dir), *notes)
    shipped = fit.model_copy(update={"provenance": fit.provenance.model_copy(
        update={"notes": notes})})
    write_fit_file(shipped, output)
    advisor.load_fit(str(output))  # reads back, content hash and schema
    return [str(c) for c in checks]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("fit", type=Path, help="the fit file advisor calibrate wrote")
    ap.add_argument("--out-dir", type=Path, required=True, help="that calibration's out-dir")
    ap.add_argument("-o", "--output", type=Path, required=True,
                    help="where the shipped copy goes (fits/<algorithm>/<env>.json)")
    ap.add_argument("--note", action="append", default=[],
                    help="a line for the provenance's notes (repeat the option)")
    args = ap.parse_args(argv)
    try:
        lines = ship(args.fit, args.out_dir, args.output, args.note)
    except (AdvisorError, OSError, KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
