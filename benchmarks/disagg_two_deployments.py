"""Two `--disagg` deployments on one host at once (their workers are named alike: prefill-0, ...):
every KV hand-off of both must succeed. Prints each deployment's decode-side transfer totals.

    python benchmarks/disagg_two_deployments.py   # ~80 s on 2 cores

Before the shm connector kept a live namesake's directory, the deployment whose prefill-0 started
first lost its directory: its loads failed after --kv-transfer-timeout and were recomputed."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import httpx

_spec = importlib.util.spec_from_file_location("disagg_bench", Path(__file__).with_name("disagg.py"))
disagg = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(disagg)


def main() -> int:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = {}
    for port, config in ((8761, "2P1D"), (8762, "1P2D")):
        command = [
            *disagg.SERVE, "--port", str(port), "--disagg", config, "--kv-connector", "shm",
            "--router-policy", "least-load",
        ]  # fmt: skip
        procs[config] = (port, subprocess.Popen(command, env=env))
    failed = 0
    try:
        for port, process in procs.values():
            disagg.wait_healthy(f"http://127.0.0.1:{port}", process)
        for config, (port, _) in procs.items():
            url = f"http://127.0.0.1:{port}"
            for i in range(6):
                prompt = [3 + (i * 131 + k + port) % 600 for k in range(200)]
                body = {"model": "ponder", "prompt": prompt, "max_tokens": 4, "ignore_eos": True}
                httpx.post(url + "/v1/completions", json=body, timeout=120).raise_for_status()
            totals = disagg.decode_transfer_share(url)
            failed += int(totals["loads_failed"])
            print(config, totals, flush=True)
    finally:
        for _, process in procs.values():
            process.terminate()
        for _, process in procs.values():
            process.wait(60)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
