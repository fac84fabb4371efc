"""Helpers shared by the queue tests (a plain module: tests import it directly)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import update

from core.config import RunConfig
from core.queue import NewRun, Repo
from core.queue.repo import RUN


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


def beat_behind(repo: Repo, run_id: int, behind_s: float) -> None:
    """The run's beat as its worker's box writes it, that box's clock ``behind_s`` behind."""
    with repo._write() as conn:
        beat = time.time() - behind_s
        conn.execute(update(RUN).where(RUN.c.id == run_id).values(heartbeat_at=beat))


@contextmanager
def beating_behind(repo: Repo, run_id: int, behind_s: float) -> Iterator[None]:
    """A live worker of ``run_id`` on a box whose clock is ``behind_s`` behind this one's."""
    beating = threading.Event()
    beating.set()

    def beat() -> None:
        while beating.is_set():
            beat_behind(repo, run_id, behind_s)
            time.sleep(0.05)

    beat_behind(repo, run_id, behind_s)  # its beat that old here before any look
    beats = threading.Thread(target=beat)
    beats.start()
    try:
        yield
    finally:
        beating.clear()
        beats.join()
