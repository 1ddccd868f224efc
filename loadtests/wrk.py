"""One wrk run against a JSON endpoint, pinned to CPUs, as the benchmarks use it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path


def missing_tools() -> str | None:
    """Why wrk cannot run here, or None."""
    if shutil.which("wrk") is None or shutil.which("taskset") is None:
        return "error: the benchmark needs wrk and taskset (apt-get install wrk util-linux)"
    return None


def run_wrk(
    url: str,
    body: str,
    *,
    connections: int,
    duration: float,
    cpus: str,
    work: Path,
    threads: int = 1,
) -> dict[str, float]:
    """POST `body` (JSON text) for `duration` seconds from `threads` wrk threads pinned
    to `cpus` (taskset syntax): requests/s, p50 and p99 in ms, and failed requests
    (non-2xx answers and socket errors)."""
    script = work / "post.lua"
    payload = body.replace("\\", "\\\\").replace('"', '\\"')
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.body = "{payload}"\n'
    )
    out = subprocess.run(
        ["taskset", "-c", cpus, "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s",
         "--timeout", "10s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if found is None:
        raise RuntimeError(f"wrk printed no request rate:\n{out}")

    def percentile(p: str) -> float:
        match = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if match is None:
            raise RuntimeError(f"wrk printed no {p}th percentile:\n{out}")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors += sum(int(n) for n in re.findall(r"Socket errors: .*?(\d+)", out))
    return {"rps": float(found.group(1)), "p50": percentile("50"), "p99": percentile("99"),
            "errors": errors}  # fmt: skip
