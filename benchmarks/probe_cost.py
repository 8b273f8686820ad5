"""What the default crash probe costs a second load and a pool: python benchmarks/probe_cost.py MODEL."""

from __future__ import annotations

import statistics
import sys
import time

import tfedge
from tfedge import isolate
path = sys.argv[1]
tfedge.Interpreter(path, num_threads=1)  # first load: the child probe (cached on disk)
t = {"no probe": [], "memo hit": [], "disk hit": []}
for _ in range(15):
    for k in t:
        if k == "disk hit":
            isolate._verdicts.clear()
        s = time.perf_counter()
        tfedge.Interpreter(path, num_threads=1, probe=(False if k == "no probe" else None))
        t[k].append(time.perf_counter() - s)
base = statistics.median(t["no probe"])
for k, v in t.items():
    print(f"{k:10s} median {statistics.median(v)*1e3:7.2f} ms  ratio {statistics.median(v)/base:.3f}")
s = time.perf_counter(); p = tfedge.InterpreterPool(path, size=2, num_threads=1); pt = time.perf_counter() - s; p.close()
s = time.perf_counter(); p = tfedge.InterpreterPool(path, size=2, num_threads=1, probe=False); pf = time.perf_counter() - s; p.close()
print(f"pool of 2: probed {pt*1e3:.1f} ms, probe=False {pf*1e3:.1f} ms")
