"""How a directory of database CIFs fares at the door: each one read, checked and typed as ``mofsnap structures``
does it, tallied by outcome.

Every CIF goes through :func:`mofsnap.structures.prepare_structure` with the reference's own checks (elements,
electron count, spin state) and the SNAP-ready cell is built, as ``mofsnap structures FILE --snap-ready`` does.
Each outcome is one of: ``ok``; a refusal, the one-line :class:`~mofsnap.exceptions.MofsnapError` the command
prints, tallied by its kind (the message up to its first colon or parenthesis, numbers and the file name left
out); or an *unexpected* failure, any other exception or a file that takes longer than ``--timeout`` seconds.
Unexpected failures are listed and make the exit status 1: every CIF must end in a result or in one line naming
the fix.

    python benchmarks/cif_intake.py CIF_DIR [CIF_DIR ...] --json intake.json
    python benchmarks/cif_intake.py CIF_DIR --list          # one line per file: outcome and message

docs/structures_and_types.md gives the tally for the DFT-minimised CoRE MOF 1.0 set.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from mofsnap.exceptions import MofsnapError
from mofsnap.executors import worker_pool
from mofsnap.model import SNAPModel
from mofsnap.reference import DEFAULT_REFERENCE, REFERENCES, reference_by_name
from mofsnap.structures import prepare_structure, snap_ready_cell


def try_cif(path: Path, reference: str, timeout: int) -> tuple[str, str, str, list[int] | None]:
    """``(file name, outcome, detail, sizes)``: outcome ``ok``, ``refused`` or ``unexpected``; the detail is the
    message (with the file's name for its path), and for ``ok`` the sizes: atoms and atom types of the cell and
    atoms of its SNAP-ready cell."""

    def too_long(*_) -> None:
        raise TimeoutError(f"took longer than {timeout} s")

    signal.signal(signal.SIGALRM, too_long)
    signal.alarm(timeout)
    try:
        atoms, _ = prepare_structure(path, reference=reference_by_name(reference))
        types = sorted(set(atoms.arrays["atom_types"]))
        ready, _ = snap_ready_cell(atoms, SNAPModel(types).cutoff)
        return path.name, "ok", "", [len(atoms), len(types), len(ready)]
    except MofsnapError as error:
        return path.name, "refused", str(error).splitlines()[0].replace(str(path), path.name), None
    except Exception as error:  # noqa: BLE001 - the point is to find them
        return path.name, "unexpected", f"{type(error).__name__}: {error}".replace(str(path), path.name), None
    finally:
        signal.alarm(0)


def refusal_kind(message: str, path_name: str) -> str:
    """The kind of a refusal: its message up to the first colon or parenthesis, without the file's name and
    with numbers as N."""
    head = message.split(path_name + ":", 1)[-1].strip()
    return re.sub(r"\d+", "N", re.split(r":| \(", head, maxsplit=1)[0])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directories", nargs="+", type=Path, metavar="CIF_DIR", help="directories of .cif files")
    parser.add_argument("--reference", choices=REFERENCES, default=DEFAULT_REFERENCE,
                        help="the reference whose checks run (default %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="local processes (default %(default)s)")
    parser.add_argument("--timeout", type=int, default=120, help="seconds per file before it counts as unexpected")
    parser.add_argument("--list", action="store_true", help="print one line per file")
    parser.add_argument("--json", type=Path, help="also write the tally and every outcome to this JSON file")
    args = parser.parse_args(argv)
    files = sorted(p for d in args.directories for p in d.glob("*.cif") if not p.name.startswith("."))
    if not files:
        raise SystemExit(f"cif_intake: no .cif files in {', '.join(map(str, args.directories))}")
    start = time.perf_counter()
    outcomes = []
    with worker_pool(args.workers) as pool:
        jobs = [pool.submit(try_cif, path, args.reference, args.timeout) for path in files]
        for done, job in enumerate(jobs, 1):
            outcomes.append(job.result())
            if args.list:
                name, outcome, detail, sizes = outcomes[-1]
                print(f"{name}\t{outcome}\t{detail or 'atoms, types, SNAP-ready atoms: %s' % sizes}", flush=True)
            elif done % 50 == 0 or done == len(jobs):
                print(f"{done}/{len(jobs)} files", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - start
    tally = Counter(outcome for _, outcome, _, _ in outcomes)
    kinds = Counter(refusal_kind(detail, name) for name, outcome, detail, _ in outcomes if outcome == "refused")
    unexpected = [(name, detail) for name, outcome, detail, _ in outcomes if outcome == "unexpected"]
    sizes = np.array([size for *_, size in outcomes if size is not None]).reshape(-1, 3)
    print(f"{len(files)} CIFs in {seconds:.0f} s on {args.workers} workers: {tally['ok']} ok, {tally['refused']} "
          f"refused with one line, {len(unexpected)} unexpected")
    if len(sizes):
        low, median, high = np.percentile(sizes, [0, 50, 100], axis=0).astype(int)
        print(f"the {len(sizes)} ok: atoms {median[0]} (median; {low[0]}-{high[0]}), atom types {median[1]} "
              f"({low[1]}-{high[1]}); {np.count_nonzero(sizes[:, 2] > sizes[:, 0])} need a supercell for SNAP")
    for kind, count in kinds.most_common():
        print(f"  {count:4d}  {kind}")
    for name, detail in unexpected:
        print(f"unexpected: {name}: {detail}")
    results = {"files": len(files), "seconds": seconds, "workers": args.workers, "reference": args.reference,
               "ok": tally["ok"], "refused": tally["refused"], "unexpected": len(unexpected),
               "refusals": dict(kinds.most_common()),
               "outcomes": [{"file": name, "outcome": outcome, "detail": detail}
                            | ({"atoms": size[0], "atom_types": size[1], "snap_ready_atoms": size[2]} if size else {})
                            for name, outcome, detail, size in outcomes]}
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if unexpected:
        sys.exit(1)
    return results


if __name__ == "__main__":
    main()
