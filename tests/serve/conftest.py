"""Fixtures of the serve tests (the helpers are in serve_support.py)."""

from __future__ import annotations

from typing import Iterator

import pytest

from serve_support import ADD, ADD_Q, FACES, MULTI, ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """add, add_q, multi and faces (the DeepStack detector), 2 workers each."""
    log = tmp_path_factory.mktemp("serve") / "server.log"
    srv = ServerProcess([f"add={ADD}", f"add_q={ADD_Q}", f"multi={MULTI}", f"faces={FACES}", "--detect", "faces",
                         "--workers", "2"], log)
    yield srv
    assert srv.stop() == 0, srv.text()
    assert "Traceback" not in srv.text(), srv.text()
