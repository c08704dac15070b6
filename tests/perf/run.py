"""Run the benchmarks and write docs/benchmarks.json and docs/benchmarks.md.

`python -m tests.perf.run [--runs N] [--quick] [--only NAME ...] [--frozen PATH] [--keep]
[--report-only]`; scripts/bench
runs it with a private D-Bus and keyring (the client keeps its tokens there).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.perf import (
    bench_acks,
    bench_alerts,
    bench_board,
    bench_content,
    bench_failover,
    bench_fanout,
    bench_front_door,
    bench_incidents,
    bench_scale,
    bench_signin,
    bench_startup,
    bench_stream_end,
)
from tests.perf.context import BenchContext
from tests.perf.machine import describe
from tests.perf.procs import REPO, stop_all
from tests.perf.report import render

DEFAULT_FROZEN = REPO / "dist" / "vigil" / "vigil"


def benchmarks(frozen: Path) -> dict[str, Callable[[BenchContext], dict[str, Any]]]:
    """Every benchmark by name, in the order they run (some measure two numbered figures)."""
    return {
        "cold_start": lambda ctx: bench_startup.cold_start(ctx, frozen),
        "idle_memory": bench_startup.idle_memory,
        "alert_latency": bench_alerts.alert_latency,
        "reconnect": bench_alerts.reconnect,
        "failover": bench_failover.failover,
        "acks": bench_acks.ack_sync_and_record,
        "content": bench_content.sync_and_search,
        "fan_out": bench_fanout.fan_out,
        "stream_end": bench_stream_end.stream_end,
        "signin_flood": bench_signin.signin_flood,
        "report": bench_incidents.report,
        "update_fanout": bench_incidents.update_fanout,
        "board": bench_board.board,
        "scale": bench_scale.scale,
        "front_door": bench_front_door.front_door_failover,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="repetitions of each benchmark")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, to try the suite")
    parser.add_argument("--only", nargs="*", help="run only these benchmarks")
    parser.add_argument("--frozen", type=Path, default=DEFAULT_FROZEN, help="frozen app to time")
    parser.add_argument("--out", type=Path, default=REPO / "docs", help="where to write results")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder and logs")
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite benchmarks.md from benchmarks.json"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    chosen = benchmarks(args.frozen)
    names = args.only or list(chosen)
    json_path = args.out / "benchmarks.json"
    if args.report_only:
        (args.out / "benchmarks.md").write_text(render(json.loads(json_path.read_text())))
        return 0
    previous = json.loads(json_path.read_text()) if json_path.exists() and args.only else {}
    results: dict[str, Any] = dict(previous.get("results", {}))
    work = Path(tempfile.mkdtemp(prefix="vigil-bench-"))
    try:
        for name in names:
            print(f"== {name}", flush=True)
            started = time.monotonic()
            ctx = BenchContext(work / name, runs=args.runs, quick=args.quick)
            ctx.work_dir.mkdir()
            try:
                results[name] = chosen[name](ctx)
            except Exception as exc:
                traceback.print_exc()
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            finally:
                stop_all()
            results[name]["wall_seconds"] = round(time.monotonic() - started, 1)
            print(json.dumps(results[name], indent=1)[:3000], flush=True)
    finally:
        stop_all()
        if args.keep:
            print(f"scratch folder and logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    report = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": describe(),
        "runs": args.runs,
        "quick": args.quick,
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "benchmarks.md").write_text(render(report))
    print(f"wrote {json_path} and {args.out / 'benchmarks.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
