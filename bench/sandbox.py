"""The sandbox's cost: environment start (cold) and warm invoke, namespace backend vs process backend.

    python bench/sandbox.py [--n 40] [--warm 2000] [--json bench/results/sandbox.json]

Drives ``Environment`` directly (no HTTP), so the difference between the two backends is the isolation tax:
namespaces, pivot_root, cgroup, uid drop, freeze/thaw. Prints medians and p99 and writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from shoal.core.types import FunctionConfig
from shoal.environments.environment import Environment, Invocation, Settings
from shoal.logs.store import FileLogStore
from shoal.runtimes.python import PythonFamily
from shoal.sandbox import namespace
from shoal.sandbox.namespace import NamespaceBackend
from shoal.sandbox.process import ProcessBackend

SHA = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "p99": pct(values, 0.99),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


async def measure(
    backend,
    runtime,
    code: Path,
    work: Path,
    n: int,
    warm: int,
    *,
    fork_server: bool = False,
    pace: float = 0.0,
) -> dict[str, dict[str, float]]:
    logs = FileLogStore(work / "logs")
    settings = Settings(
        region="us-east-1", init_timeout=10, endpoint="http://127.0.0.1:1", fork_server=fork_server
    )
    config = FunctionConfig(
        account_id="123456789012",
        name="bench",
        runtime=runtime.id,
        role="r",
        handler="app.handler",
        code_sha256=SHA,
        code_size=1,
        last_modified="x",
        revision_id="r",
        memory_size=1769,
    )
    cold, init = [], []
    for i in range(n):
        if pace:
            await asyncio.sleep(pace)  # lets the stem-cell pool refill between cold starts
        env = Environment(config, runtime, backend, code, work / "envs", logs.emit, settings)
        t0 = time.perf_counter()
        await env.start()
        out = await env.invoke(
            Invocation(f"c{i}", b"{}", "arn:aws:lambda:us-east-1:123456789012:function:bench")
        )
        cold.append((time.perf_counter() - t0) * 1000)
        init.append(out.init_ms or 0.0)
        await env.shutdown()
        logs.flush()
    env = Environment(config, runtime, backend, code, work / "envs", logs.emit, settings)
    await env.start()
    lat = []
    for i in range(warm + 100):
        t0 = time.perf_counter()
        await env.invoke(Invocation(f"w{i}", b"{}", "arn:aws:lambda:us-east-1:123456789012:function:bench"))
        if i >= 100:
            lat.append((time.perf_counter() - t0) * 1000)
        if i % 500 == 0:
            logs.flush()
    await env.shutdown()
    return {"cold_start_ms": summary(cold), "init_duration_ms": summary(init), "warm_invoke_ms": summary(lat)}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--warm", type=int, default=2000)
    parser.add_argument("--json", default="bench/results/sandbox.json")
    args = parser.parse_args()
    runtime = PythonFamily().discover({}).get("python3.12") or PythonFamily.runtime(
        f"python{sys.version_info[0]}.{sys.version_info[1]}",
        os.path.realpath(sys.executable),
        sys.version.split()[0],
    )
    results: dict[str, object] = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "kernel": platform.release(),
            "python": platform.python_version(),
            "runtime": runtime.id,
        },
        "command": " ".join(["python", *sys.argv]),
    }
    with tempfile.TemporaryDirectory(prefix="shoal-bench-") as tmp:
        code = Path(tmp) / "code"
        code.mkdir()
        (code / "app.py").write_text("def handler(event, context):\n    return None\n")
        # process: exec, no isolation; namespace: exec inside the full sandbox (the isolation tax is the
        # difference); namespace-forked: the default, forked from a preloaded zygote via stem cells, paced
        runs = [("process", ProcessBackend, False, 0.0)]
        ok, why = namespace.available()
        if ok:
            runs += [
                ("namespace", NamespaceBackend, False, 0.0),
                ("namespace-forked", NamespaceBackend, True, 0.1),
            ]
        else:
            print(f"namespace backend unavailable: {why}")
        for name, make, fork_server, pace in runs:
            backend = make()
            results[name] = await measure(
                backend,
                runtime,
                code,
                Path(tmp) / name,
                args.n,
                args.warm,
                fork_server=fork_server,
                pace=pace,
            )
            closer = getattr(backend, "close", None)
            if closer:
                closer()
    print(f"{'backend':<10} {'metric':<18} {'median':>9} {'p99':>9}")
    for name in ("process", "namespace", "namespace-forked"):
        if name in results:
            for metric, s in results[name].items():  # type: ignore[union-attr]
                print(f"{name:<10} {metric:<18} {s['median']:>8.2f}ms {s['p99']:>8.2f}ms")
    if "namespace" in results:
        tax = results["namespace"]["cold_start_ms"]["median"] - results["process"]["cold_start_ms"]["median"]  # type: ignore[index]
        results["isolation_tax_cold_ms"] = tax
        print(f"isolation tax on a cold start (median difference): {tax:.2f} ms")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
