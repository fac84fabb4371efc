"""The dashboard command's exit status says when the app crashed."""

from __future__ import annotations

import argparse
from typing import Any

import pytest
from textual.app import App

import resconv_tui.app
from resconv_tui.commands import dashboard


class Crashing(App[None]):
    def on_mount(self) -> None:
        raise RuntimeError("boom")

    def run(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        super().run(headless=True)


def test_a_crash_in_the_dashboard_exits_non_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    # A crash (a bad stored target, say) printed its traceback and still exited 0.
    monkeypatch.setattr(resconv_tui.app, "make_app", lambda *a, **k: Crashing())
    assert dashboard.run(argparse.Namespace(db=None)) == 1
