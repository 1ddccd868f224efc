"""Seaway's runtime serving a PyTorch model on a GPU: device choice, correctness, throughput.

    python loadtests/bench_gpu.py [--rounds 3] [--duration 8] [--connections 1,64]
                                  [--batch-sizes 1,32,64] [--devices cuda,cpu] [--json FILE]

Run it on a machine with a CUDA GPU, in an environment with Seaway's runtime
dependencies, PyTorch and wrk (the same load tool as bench_runtime.py). One run:

1. saves a float32 MLP from CPU weights (`--features` inputs, `--layers` hidden layers of `--width`,
   8 outputs; 4096-wide by default, about 200 MB of weights, so the GPU matters)
   with `mlflow.pytorch.save_model`, with a tensor signature and input example, in
   MLflow's `pickle` format (MLflow 3's default `pt2`, torch.export, binds the program to
   the CPU it was saved from: such a model serves on the CPU, see step 2);
2. loads it in-process through the runtime's own `model.load` with device=auto,
   cuda and cpu, and compares the runtime's call (the native fast path when it was
   taken) with `mlflow.pyfunc` on the same device on 64 random rows, and the
   CUDA answer with the CPU one; then loads a small `pt2` model saved from CPU with each
   device setting and says where it was served or why it was refused;
3. serves it with `seaway serve` (a real runtime process, gRPC off) once per device
   and max batch size (1 means batching off), and for each connection count runs wrk
   for 2 s of warm-up, then `--rounds` measurements of `--duration` seconds, each
   POSTing one row per request to /invocations. The server is pinned to the first
   half of the CPUs, wrk (4 threads) to the other half. Rows per model call come from
   the runtime's own `seaway_batch_size` histogram.

It prints one line per measurement and a Markdown table of medians over rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loadtests.wrk import missing_tools, run_wrk

OUTPUTS = 8
MODEL_NAME = "mlp"


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def save_mlp(path: Path, features: int, width: int, layers: int, form: str) -> np.ndarray[Any, Any]:
    """Save the MLP (from CPU weights, in MLflow's `form`) as a model directory; a row to send."""
    import mlflow.pytorch
    import torch
    from mlflow.models import infer_signature

    torch.manual_seed(0)
    parts: list[torch.nn.Module] = [torch.nn.Linear(features, width), torch.nn.ReLU()]
    for _ in range(layers - 1):
        parts += [torch.nn.Linear(width, width), torch.nn.ReLU()]
    parts.append(torch.nn.Linear(width, OUTPUTS))
    model = torch.nn.Sequential(*parts).eval()
    rng = np.random.default_rng(0)
    example = rng.normal(size=(5, features)).astype(np.float32)
    with torch.no_grad():
        out = model(torch.from_numpy(example)).numpy()
    mlflow.pytorch.save_model(
        model,
        str(path),
        input_example=example,
        signature=infer_signature(example, out),
        serialization_format=form,
        pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
    )
    return rng.normal(size=(features,)).astype(np.float32)


def check_devices(path: Path, features: int) -> list[dict[str, Any]]:
    """Load through the runtime with each device setting; compare with pyfunc and across devices."""
    import mlflow.pyfunc
    import torch

    from seaway.serving_runtime.inputs import Frame, conform
    from seaway.serving_runtime.model import load

    rows = np.random.default_rng(1).normal(size=(64, features)).astype(np.float32)
    settings = ["auto", "cuda", "cpu"] if torch.cuda.is_available() else ["auto", "cpu"]
    found: list[dict[str, Any]] = []
    answers: dict[str, np.ndarray[Any, Any]] = {}
    for setting in settings:
        before = torch.cuda.memory_allocated() if torch.cuda.is_available() else 0
        loaded = load(path, name=MODEL_NAME, version=None, device=setting)
        on_gpu = (torch.cuda.memory_allocated() - before) if torch.cuda.is_available() else 0
        got = np.asarray(loaded.predict(conform(Frame(rows=rows), loaded.schema, 10**6)))
        reference = mlflow.pyfunc.load_model(str(path), model_config={"device": loaded.device})
        expected = np.asarray(reference.predict(rows))
        answers[loaded.device] = got
        found.append(
            {
                "setting": setting,
                "device": loaded.device,
                "path": loaded.path_taken,
                "batchable": loaded.batchable,
                "load_seconds": round(loaded.load_seconds, 2),
                "weights_on_gpu_mb": round(on_gpu / 2**20, 1),
                "equal_to_pyfunc": bool(np.array_equal(got, expected)),
                "max_abs_diff_to_pyfunc": float(np.max(np.abs(got - expected))),
            }
        )
        _say(f"device={setting}: {json.dumps(found[-1])}")
        del loaded, reference
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    exported = path.with_name("mlp-pt2")
    save_mlp(exported, features, 64, 2, "pt2")
    for setting in settings:
        try:
            loaded = load(exported, name=MODEL_NAME, version=None, device=setting)
            outcome = f"served on {loaded.device} via {loaded.path_taken}"
        except Exception as error:
            outcome = f"refused: {str(error)[:160]}"
        found.append({"pt2_saved_from_cpu": setting, "outcome": outcome})
        _say(f"pt2 model saved from CPU, device={setting}: {outcome}")
    if "cuda" in answers and "cpu" in answers:
        diff = float(np.max(np.abs(answers["cuda"] - answers["cpu"])))
        scale = float(np.max(np.abs(answers["cpu"])))
        _say(
            f"cuda vs cpu on the same 64 rows: max abs diff {diff:.3g} (outputs up to {scale:.3g})"
        )
        found.append({"cuda_vs_cpu_max_abs_diff": diff, "output_scale": scale})
    return found


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cpu_halves() -> tuple[str, str]:
    cpus = sorted(os.sched_getaffinity(0))
    half = max(1, len(cpus) // 2)
    server, load = cpus[:half], cpus[half:] or cpus[:half]
    return ",".join(map(str, server)), ",".join(map(str, load))


class Served:
    """One `seaway serve` process for the model, on one device and max batch size."""

    def __init__(self, path: Path, device: str, batch: int, cpus: str, log: Path) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        batching = ["--no-batching"] if batch == 1 else ["--max-batch-size", str(batch)]
        command = [
            "taskset", "-c", cpus, sys.executable, "-c", "from seaway.cli import main; main()",
            "serve", str(path), "--http-port", str(self.port), "--grpc-port", "0",
            "--name", MODEL_NAME, *batching,
        ]  # fmt: skip
        env = {**os.environ, "SEAWAY_RUNTIME_DEVICE": device}
        with log.open("w") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)

    def wait_ready(self, timeout: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"seaway serve exited:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.base}/v2/health/ready", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"seaway serve not ready:\n{self.log.read_text()[-3000:]}")
        for line in self.log.read_text().splitlines():
            if '"message": "ready"' in line:
                ready: dict[str, Any] = json.loads(line)
                return ready
        return {}

    def batch_totals(self) -> tuple[float, float]:
        """Model calls so far, and rows they carried (the runtime's batch-size histogram)."""
        with urllib.request.urlopen(f"{self.base}/metrics", timeout=5) as answer:
            text = answer.read().decode()
        calls = rows = 0.0
        for line in text.splitlines():
            if line.startswith("seaway_batch_size_count"):
                calls += float(line.split()[-1])
            elif line.startswith("seaway_batch_size_sum"):
                rows += float(line.split()[-1])
        return calls, rows

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def wrk(
    url: str, body: str, connections: int, duration: int, cpus: str, work: Path
) -> dict[str, float]:
    """One wrk run: requests/s, p50 and p99 in ms, and failed requests."""
    return run_wrk(
        url, body, connections=connections, duration=duration, cpus=cpus, work=work,
        threads=min(4, connections),
    )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8, help="seconds per measurement")
    parser.add_argument("--connections", default="1,64")
    parser.add_argument("--batch-sizes", default="1,32,64", help="1 = batching off")
    parser.add_argument("--devices", default="cuda,cpu")
    parser.add_argument("--features", type=int, default=256)
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument(
        "--serialization-format",
        default="pickle",
        choices=["pickle", "pt2"],
        help="how the served model is saved (pt2 from CPU weights serves on the CPU only)",
    )
    parser.add_argument("--skip-check", action="store_true", help="skip the in-process checks")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    problem = missing_tools()
    if problem is not None:
        _say(problem)
        return 2
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import torch

    _say(
        f"torch {torch.__version__}, CUDA {torch.version.cuda}, GPU "
        f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}, "
        f"{len(os.sched_getaffinity(0))} CPUs"
    )
    work = Path(tempfile.mkdtemp(prefix="seaway-bench-gpu-"))
    path = work / "mlp"
    row = save_mlp(path, args.features, args.width, args.layers, args.serialization_format)
    _say(
        f"saved a {args.features}->{args.layers}x{args.width}->{OUTPUTS} MLP "
        f"({args.serialization_format}) at {path}"
    )
    report: dict[str, Any] = {
        "checks": [] if args.skip_check else check_devices(path, args.features)
    }
    body = json.dumps({"instances": [[float(v) for v in row]]})
    server_cpus, load_cpus = _cpu_halves()
    results: list[dict[str, Any]] = []
    for device in args.devices.split(","):
        for batch in [int(b) for b in args.batch_sizes.split(",")]:
            served = Served(path, device, batch, server_cpus, work / f"serve-{device}-{batch}.log")
            try:
                ready = served.wait_ready()
                shown = ("path", "device", "batching", "max_batch_size")
                _say(f"serving: {json.dumps({k: ready.get(k) for k in shown})}")
                url = f"{served.base}/invocations"
                for connections in [int(c) for c in args.connections.split(",")]:
                    wrk(url, body, connections, 2, load_cpus, work)  # warm-up
                    result: dict[str, Any] = {
                        "device": device, "max_batch_size": batch, "connections": connections,
                        "rps": [], "p50": [], "p99": [], "rows_per_call": [], "errors": 0,
                    }  # fmt: skip
                    for round_index in range(args.rounds):
                        calls, rows = served.batch_totals()
                        measured = wrk(url, body, connections, args.duration, load_cpus, work)
                        calls_after, rows_after = served.batch_totals()
                        per_call = (rows_after - rows) / max(calls_after - calls, 1)
                        for key in ("rps", "p50", "p99"):
                            result[key].append(measured[key])
                        result["rows_per_call"].append(per_call)
                        result["errors"] += int(measured["errors"])
                        _say(
                            f"round {round_index + 1} {device:4} batch<={batch:<3} "
                            f"conns {connections:<3} {measured['rps']:8.0f} req/s  "
                            f"p50 {measured['p50']:7.2f} ms  p99 {measured['p99']:7.2f} ms  "
                            f"{per_call:5.1f} rows/call  errors {int(measured['errors'])}"
                        )
                    results.append(result)
            finally:
                served.stop()
    report["results"] = results
    _say("")
    _say("| device | max batch | connections | req/s | p50 ms | p99 ms | rows/call |")
    _say("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        med = {k: statistics.median(r[k]) for k in ("rps", "p50", "p99", "rows_per_call")}
        _say(
            f"| {r['device']} | {r['max_batch_size']} | {r['connections']} | {med['rps']:.0f} | "
            f"{med['p50']:.2f} | {med['p99']:.2f} | {med['rows_per_call']:.1f} |"
            + (f" ({r['errors']} errors)" if r["errors"] else "")
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
