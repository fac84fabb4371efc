"""Helpers shared by the queue tests (a plain module: tests import it directly)."""

from __future__ import annotations

from core.config import RunConfig
from core.queue import NewRun


def tiny_run(seed: int = 0, experiment: str = "exp", **changes: object) -> NewRun:
    """A 2-layer, 4-channel, 512-input run; ``changes`` become swept values too."""
    config = RunConfig(layers=2, channels=4, max_inputs=512, seed=seed).replace(**changes)
    swept = {"seed": seed, **changes}
    name = "_".join(f"{k}-{v}" for k, v in swept.items())
    return NewRun.from_config(
        config, experiment=experiment, name=name, param_count=321, swept=swept
    )


def tiny_runs(n: int, experiment: str = "exp", **changes: object) -> list[NewRun]:
    return [tiny_run(seed, experiment, **changes) for seed in range(n)]
