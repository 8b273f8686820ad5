"""``python -m tfedge``: the same as the ``tfedge`` command."""

from tfedge.cli import main

raise SystemExit(main())
