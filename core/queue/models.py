"""The database tables (SQLModel). Only ``repo.py`` queries them.

Times are UNIX seconds (float, UTC by definition) so that SQLite and PostgreSQL
compare them the same way and heartbeat ages are one subtraction. Byte counts
are BIGINT: a GPU's memory does not fit in PostgreSQL's 32-bit INTEGER.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, LargeBinary, Text
from sqlmodel import Field, SQLModel

# Raised only by a change older code cannot live with. Columns that a table gains, with
# no value needed (NULL: not known), are added when a database is opened
# (``db.add_missing_columns``) and leave the version as it is: an older resconv-tui,
# which never names them, still works on the same database (boxes sharing a PostgreSQL
# queue need not all upgrade at once).
SCHEMA_VERSION = 1


class Meta(SQLModel, table=True):
    """Key/value facts about the database itself (``schema_version``)."""

    key: str = Field(primary_key=True)
    value: str


class Worker(SQLModel, table=True):
    id: str = Field(primary_key=True)  # host-pid-random: unique across restarts
    host: str
    pid: int
    device: str
    state: str = Field(default="idle")  # idle, running, stopping, stopped, lost
    started_at: float
    last_seen_at: float
    current_run_id: int | None = None
    runs_done: int = 0
    gpu_name: str | None = None
    gpu_util: float | None = None  # percent
    gpu_memory_used: int | None = Field(default=None, sa_column=Column(BigInteger))
    gpu_memory_total: int | None = Field(default=None, sa_column=Column(BigInteger))
    gpu_temperature: float | None = None  # degrees C
    # How it claims (``--stack``, ``--order``, ``--max-runs``), for the queue's forecast.
    # None: a worker of a resconv-tui from before these were recorded (added to older
    # databases when opened: ``db.add_missing_columns``).
    stack: int | None = None  # runs of one cell (seeds) trained at once
    largest_first: bool | None = None  # --order largest-first
    max_runs: int | None = None  # it exits after this many runs ended (None: no limit)


class Run(SQLModel, table=True):
    # AUTOINCREMENT: SQLite would hand a removed newest run's id to the next run queued,
    # and a result or checkpoint folder named after the old run would name the new one.
    # (PostgreSQL's sequences never reuse ids; databases made before keep their table.)
    __table_args__ = (
        Index("ix_run_claim", "status", "priority", "id"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    experiment: str = Field(index=True)
    name: str
    status: str = Field(default="queued", index=True)
    priority: int = 0  # higher trains sooner; ties go to the oldest
    config_json: str = Field(sa_column=Column(Text, nullable=False))
    config_hash: str = Field(index=True)
    seed: int
    swept_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    target_json: str | None = Field(default=None, sa_column=Column(Text))
    param_count: int
    total_inputs: int
    inputs_done: int = 0
    attempts: int = 0  # times claimed
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    worker_id: str | None = Field(default=None, foreign_key="worker.id", ondelete="SET NULL")
    heartbeat_at: float | None = None
    cancel_requested: bool = False
    error: str | None = None
    # final figures
    validation_loss: float | None = None
    train_seconds: float | None = None
    inputs_per_s: float | None = None
    # Seconds of this attempt its worker's process stood still, stopped (Ctrl-Z, docker
    # pause: ``core.pauses``), which the wall time since its claim holds and its ETA and
    # pace must not (``RunRow.active_seconds``). None: none seen, or a worker from before
    # it was recorded (added to older databases when opened: ``db.add_missing_columns``).
    paused_s: float | None = None
    peak_memory_bytes: int | None = Field(default=None, sa_column=Column(BigInteger))
    checkpoint_path: str | None = None
    path_used: str | None = None
    samples: bytes | None = Field(default=None, sa_column=Column(LargeBinary))


class Metric(SQLModel, table=True):
    # Incremental reads are "run_id = ? AND id > ?": one index serves them.
    __table_args__ = (Index("ix_metric_run_id_id", "run_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id", ondelete="CASCADE")
    step: int
    inputs: int
    name: str  # train_loss, val_loss, lr, inputs_per_s, memory_bytes
    value: float


TABLES = [Meta.__table__, Worker.__table__, Run.__table__, Metric.__table__]  # type: ignore[attr-defined]
