"""Table 6: threads and interpreter pools (``tfedge.InterpreterPool``, once it exists)."""

from __future__ import annotations

from tables import Context, Section

import tfedge

TITLE = "Threads and pools"


def table(ctx: Context) -> Section:
    """A one-line note until ``tfedge.InterpreterPool`` exists and this table measures it."""
    if not hasattr(tfedge, "InterpreterPool"):
        return Section(TITLE, "Not built yet: this tfedge has no `tfedge.InterpreterPool`.")
    return Section(TITLE, "Not measured yet: `tfedge.InterpreterPool` exists; add its measurement here.")
