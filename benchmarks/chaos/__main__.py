"""`python -m benchmarks.chaos [resume|crash|load|soak ...]` (all four by default) at full size;
each writes var/bench/chaos-<name>.json and prints its report. `--quick` runs the CI sizes."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.chaos import crash, load, resume, soak

FULL: dict[str, Callable[[], list[dict[str, Any]]]] = {
    "resume": lambda: resume.run_all(messages=1000),
    "crash": lambda: crash.run_all(runs=200),
    "load": lambda: load.run_all(sockets=10_000, step=500, rate=200, dead=200),
    # The soak runs on the zero-config default; PostgreSQL gets the kill -9 runs.
    "soak": lambda: [soak.run("sqlite", minutes=30, window_s=300)],
}
QUICK: dict[str, Callable[[], list[dict[str, Any]]]] = {
    "resume": lambda: resume.run_all(messages=150, reset_p=0.1),
    "crash": lambda: crash.run_all(runs=3),
    "load": lambda: load.run_all(
        sockets=200, step=100, rate=50, seconds=3, dead=20, ping_interval_s=1, ping_timeout_s=1
    ),
    "soak": lambda: soak.run_all(minutes=1, window_s=20),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenarios", nargs="*", default=list(FULL), choices=list(FULL))
    parser.add_argument("--quick", action="store_true", help="CI sizes")
    parser.add_argument("--out", type=Path, default=Path("var/bench"))
    args = parser.parse_args()
    # Each kill, step and window is logged as it happens, so a run cut short still tells.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise here
    sizes = QUICK if args.quick else FULL
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.scenarios:
        report = sizes[name]()
        text = json.dumps(report, indent=2)
        print(f"== {name}\n{text}", flush=True)
        (args.out / f"chaos-{name}.json").write_text(text)


if __name__ == "__main__":
    main()
