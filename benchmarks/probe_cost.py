"""What the default crash probe costs a second load and a pool: python benchmarks/probe_cost.py MODEL.

Loads alternate (the order rotates every round) so the machine's drift hits each kind
alike; the guard's own cost on a cache hit (identity, cache read, and the SHA-256 it
replaces) is also timed alone, being far below a load's noise.
"""

from __future__ import annotations

import hashlib
import statistics
import sys
import time

import tfedge
from tfedge import isolate

path = sys.argv[1]
backend = tfedge.Interpreter(path, num_threads=1)  # first load: the child probe (cached on disk)
label = (backend.backend, backend.backend_version)
kinds = ["no probe", "memo hit", "disk hit"]
t: dict[str, list[float]] = {k: [] for k in kinds}
for r in range(15):
    for k in kinds[r % 3:] + kinds[: r % 3]:
        if k == "disk hit":  # a later process: nothing remembered in memory, the disk cache only
            isolate._verdicts.clear()
        s = time.perf_counter()
        tfedge.Interpreter(path, num_threads=1, probe=(False if k == "no probe" else None))
        t[k].append(time.perf_counter() - s)
base = statistics.median(t["no probe"])
for k, v in t.items():
    print(f"{k:10s} median {statistics.median(v)*1e3:7.2f} ms  ratio {statistics.median(v)/base:.3f}")


def guard(clear: bool) -> float:
    """Seconds the probe step of a load takes on a cache hit."""
    with open(path, "rb") as f:
        data = f.read()
    if clear:
        isolate._verdicts.clear()
    s = time.perf_counter()
    isolate.probe_model(data, backend=label[0], backend_version=label[1], identity=isolate.file_identity(path))
    return time.perf_counter() - s


with open(path, "rb") as f:
    content = f.read()
s = time.perf_counter()
hashlib.sha256(content).hexdigest()
sha = time.perf_counter() - s
memo = statistics.median(guard(False) for _ in range(15))
disk = statistics.median(guard(True) for _ in range(15))
print(f"guard alone: memo hit {memo*1e3:.3f} ms ({memo/base:.2%} of a load), disk hit {disk*1e3:.3f} ms "
      f"({disk/base:.2%}); the SHA-256 it skips: {sha*1e3:.1f} ms ({sha/base:.1%})")
s = time.perf_counter()
p = tfedge.InterpreterPool(path, size=2, num_threads=1)
pt = time.perf_counter() - s
p.close()
s = time.perf_counter()
p = tfedge.InterpreterPool(path, size=2, num_threads=1, probe=False)
pf = time.perf_counter() - s
p.close()
print(f"pool of 2: probed {pt*1e3:.1f} ms, probe=False {pf*1e3:.1f} ms")
