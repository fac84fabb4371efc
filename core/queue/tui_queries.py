"""Read-only queries the dashboard needs beyond ``repo``'s verbs (torch-free, SQL here).

The runs view polls every second. Reading 10,000 runs each tick costs hundreds of
milliseconds, yet only running runs change on their own (progress, heartbeats);
queued and finished runs change when someone acts. So the dashboard reads running
runs every tick, plus a one-row fingerprint of all the others, and re-reads those
only when the fingerprint changes.
"""

from __future__ import annotations

from sqlalchemy import case, func, select

from core.queue import db
from core.queue.repo import RUN, Repo
from core.queue.status import RunStatus

Signature = tuple[object, ...]
SETTLED = frozenset(RunStatus) - {RunStatus.RUNNING}


def settled_signature(repo: Repo) -> Signature:
    """Changes when a run that is not running is added, removed, changes status or priority.

    Sums weighted by id catch what plain sums miss (priority +1 on one run and -1
    on another; one run leaving a status as another enters). Every column used is
    in the claim index (status, priority, id), so SQLite never reads the table.
    """
    weighted = {
        status: func.coalesce(func.sum(case((RUN.c.status == status.value, RUN.c.id), else_=0)), 0)
        for status in sorted(SETTLED)
    }
    query = select(
        func.count(),
        func.coalesce(func.sum(RUN.c.priority * RUN.c.id), 0),
        *weighted.values(),
    ).where(RUN.c.status.in_([s.value for s in SETTLED]))
    with db.translated(repo.url, repo.busy_timeout_s), repo.engine.connect() as conn:
        row = conn.execute(query).one()
    return tuple(row)
