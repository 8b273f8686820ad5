"""The server's counters, rendered in Prometheus' text exposition format for ``GET /metrics``."""

from __future__ import annotations

import bisect
import threading
from typing import Callable, Dict, List, Tuple

__all__ = ["BUCKETS", "Metrics"]

#: Latency histogram bucket bounds, seconds.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _label(value: str) -> str:
    """A label value escaped as the text format wants it."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    """Requests, errors and latency per model and endpoint; queue depth read when scraped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Dict[Tuple[str, str, int], int] = {}
        self._latency: Dict[Tuple[str, str], List[float]] = {}  # per bucket, over the last, count, sum
        self._gauges: Dict[str, Callable[[], int]] = {}

    def watch_queue(self, model: str, depth: Callable[[], int]) -> None:
        """Report ``depth()`` as the model's queue depth."""
        self._gauges[model] = depth

    def observe(self, model: str, endpoint: str, status: int, seconds: float) -> None:
        """Count one finished request (``model`` is ``""`` for requests about no model)."""
        with self._lock:
            key = (model, endpoint, status)
            self._requests[key] = self._requests.get(key, 0) + 1
            if not model:
                return
            row = self._latency.setdefault((model, endpoint), [0.0] * (len(BUCKETS) + 3))
            row[bisect.bisect_left(BUCKETS, seconds)] += 1
            row[-2] += 1
            row[-1] += seconds

    def render(self) -> str:
        """Everything, in the Prometheus text format (version 0.0.4)."""
        with self._lock:
            requests = sorted(self._requests.items())
            latency = sorted((key, list(row)) for key, row in self._latency.items())
        out = ["# HELP tfedge_requests_total Requests answered, by model, endpoint and HTTP status.",
               "# TYPE tfedge_requests_total counter"]
        out += [f'tfedge_requests_total{{model="{_label(m)}",endpoint="{e}",code="{c}"}} {n}'
                for (m, e, c), n in requests]
        out += ["# HELP tfedge_errors_total Requests answered with a 4xx or 5xx status.",
                "# TYPE tfedge_errors_total counter"]
        errors: Dict[Tuple[str, str], int] = {}
        for (m, e, c), n in requests:
            if c >= 400:
                errors[(m, e)] = errors.get((m, e), 0) + n
        out += [f'tfedge_errors_total{{model="{_label(m)}",endpoint="{e}"}} {n}' for (m, e), n in sorted(errors.items())]
        out += ["# HELP tfedge_request_duration_seconds Time from the request's body read to its response.",
                "# TYPE tfedge_request_duration_seconds histogram"]
        for (m, e), row in latency:
            labels = f'model="{_label(m)}",endpoint="{e}"'
            running = 0.0
            for bound, count in zip(BUCKETS, row):
                running += count
                out.append(f'tfedge_request_duration_seconds_bucket{{{labels},le="{bound:g}"}} {running:g}')
            out.append(f'tfedge_request_duration_seconds_bucket{{{labels},le="+Inf"}} {row[-2]:g}')
            out.append(f"tfedge_request_duration_seconds_count{{{labels}}} {row[-2]:g}")
            out.append(f"tfedge_request_duration_seconds_sum{{{labels}}} {row[-1]:.6f}")
        out += ["# HELP tfedge_queue_depth Requests waiting for a free interpreter.",
                "# TYPE tfedge_queue_depth gauge"]
        out += [f'tfedge_queue_depth{{model="{_label(m)}"}} {depth()}' for m, depth in sorted(self._gauges.items())]
        return "\n".join(out) + "\n"
