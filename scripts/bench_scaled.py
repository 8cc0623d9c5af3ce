#!/usr/bin/env python3
"""What the scaled mode adds to one process's p99, as medians of alternating runs.

The scaled mode's target is a difference: N processes on PostgreSQL + Redis may add at most
10 ms to the p99 of one process on SQLite. Two full tables measured one after the other say
little about 10 ms, since a shared machine's speed drifts within the hour (docs/performance.md).
This runs `scripts/bench.py --only coedit fanout --fanout 500` for one process and for the scaled
mode in turn, `--rounds` times each, in the order one, scaled, scaled, one, one, scaled, … so that
a drift weighs on both alike; prints each run's figures and the medians, and writes them to
docs/performance.md (between the bench:compare markers). Usage:

    .venv/bin/python scripts/bench_scaled.py --postgres URL --redis URL [--processes 2] [--rounds 3]
"""

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "scripts" / "bench.py"
DOC = ROOT / "docs" / "performance.md"
ADDED_MAX_MS = 10.0
# The figures compared, as scripts/bench.py --json names them, and how the table names them.
MEASURES = {
    "coedit_p99": "co-editing: edit → teammate p99",
    "inject500_p99": "inject to 500: request → receipt p99",
    "coedit_p50": "co-editing: edit → teammate p50",
    "inject500_p50": "inject to 500: request → receipt p50",
}
COMPARED = ("coedit_p99", "inject500_p99")


def order(rounds: int) -> list[str]:
    """The modes' runs, alternating in pairs (one, scaled, scaled, one, …): a machine that
    speeds up or slows down during the runs favours neither mode."""
    pairs = [("one", "scaled") if r % 2 == 0 else ("scaled", "one") for r in range(rounds)]
    return [mode for pair in pairs for mode in pair]


def summary(runs: dict[str, list[dict[str, float]]]) -> list[tuple[str, str, str, str, str]]:
    """One row per measure: both modes' runs, their medians, what the scaled mode adds, and the
    verdict for the p99s."""
    rows = []
    for key, name in MEASURES.items():
        one = [r[key] for r in runs["one"]]
        scaled = [r[key] for r in runs["scaled"]]
        added = statistics.median(scaled) - statistics.median(one)
        verdict = ""
        if key in COMPARED:
            verdict = "met" if added <= ADDED_MAX_MS else "**missed**"
        rows.append(
            (
                name,
                " / ".join(f"{x:.1f}" for x in one) + f" (median {statistics.median(one):.1f})",
                " / ".join(f"{x:.1f}" for x in scaled)
                + f" (median {statistics.median(scaled):.1f})",
                f"{added:+.1f} ms",
                verdict,
            )
        )
    return rows


def table(rows: list[tuple[str, str, str, str, str]], processes: int) -> str:
    lines = [
        f"| Measure (ms) | one process, SQLite | {processes} processes, PostgreSQL + Redis "
        f"| added | ≤ +{ADDED_MAX_MS:.0f} ms on p99 |",
        "|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def one_run(args: argparse.Namespace, mode: str, workdir: Path, number: int) -> dict[str, float]:
    """One run of scripts/bench.py; its figures."""
    out = workdir / f"{number:02d}-{mode}.json"
    command = [
        sys.executable,
        str(BENCH),
        "--only",
        "coedit",
        "fanout",
        "--fanout",
        "500",
        "--no-write",
        "--json",
        str(out),
    ]
    if mode == "scaled":
        command += ["--postgres", args.postgres, "--redis", args.redis]
        command += ["--processes", str(args.processes)]
    log = workdir / f"{number:02d}-{mode}.log"
    print(f"run {number}: {mode} … (log: {log})", flush=True)
    with log.open("w") as sink:
        done = subprocess.run(command, stdout=sink, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"scripts/bench.py failed ({done.returncode}); see {log}")
    figures: dict[str, float] = json.loads(out.read_text())
    print("  " + ", ".join(f"{k} {figures[k]:.1f}" for k in MEASURES), flush=True)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", required=True, help="PostgreSQL server URL")
    parser.add_argument("--redis", required=True, help="Redis URL")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each mode")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args()
    sys.path.insert(0, str(BENCH.parent))
    import bench  # its sections in docs/performance.md, with the machine and versions lines

    workdir = Path(tempfile.mkdtemp(prefix="tabletop-compare-"))
    runs: dict[str, list[dict[str, float]]] = {"one": [], "scaled": []}
    for number, mode in enumerate(order(args.rounds), start=1):
        runs[mode].append(one_run(args, mode, workdir, number))
    command = "python scripts/bench_scaled.py " + shlex.join(sys.argv[1:])
    heading = f"What {args.processes} processes add, in alternating runs"
    body = (
        "Each run: `scripts/bench.py --only coedit fanout --fanout 500`, the runs in the order "
        "one, scaled, scaled, one, …\n\n" + table(summary(runs), args.processes)
    )
    print()
    print(f"### {heading}\n\n{body}")
    if not args.no_write:
        bench.write_section("compare", heading=heading, command=command, body=body)
        print(f"\nwritten to {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
