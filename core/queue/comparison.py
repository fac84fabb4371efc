"""Runs side by side (``resconv-tui compare``): what differs between their configs, and
their figures, as a ``views.Table`` (markdown, CSV or JSON like the results table).

Unlike the results table (one experiment's swept parameters, succeeded runs), a
comparison takes any runs in any status, from any experiments, in the order given,
and shows the config keys whose values differ between them: two runs of different
sweeps differ in what neither swept.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from core.config import PER_LAYER_KEYS, RunConfig
from core.errors import ConfigError
from core.queue.rows import NewRun, RunFilter, RunRow
from core.queue.status import RunStatus
from core.queue.views import (
    DIFF,
    EXPERIMENT,
    LOSS,
    MEMORY,
    METER,
    MINUTES,
    NAME,
    PARAMS,
    RATE,
    RUN,
    STATUS,
    Table,
    config_keys_named,
    config_of,
    distinct_values,
    keys_in_order,
    meters_of,
    run_figures,
    with_targets,
)
from core.sweep import value_text

if TYPE_CHECKING:
    from core.queue.repo import Repo


def comparison_table(runs: Sequence[RunRow], every_key: bool = False) -> Table:
    """One row per run of ``runs``, in their order: id, experiment, name, status, the
    config keys whose values differ between them (``every_key``: all of them), then the
    results table's figures (the logbook's target and our difference to it too, where a
    run has one). A figure a run has not reached yet (a queued run's
    validation loss) is None."""
    configs = [config_of(run.config_json) for run in runs]
    keys = keys_in_order(configs) if every_key else differing_keys(runs)
    columns = (RUN, EXPERIMENT, NAME, STATUS, *keys, LOSS, PARAMS, MINUTES, RATE, MEMORY, METER)
    meters = meters_of([run.validation_loss for run in runs])
    rows = tuple(
        (run.id, run.experiment, run.name, run.status.value,
         *(config.get(key) for key in keys), *run_figures(run), meter)
        for run, config, meter in zip(runs, configs, meters, strict=True)
    )  # fmt: skip
    full = Table(columns, rows, tuple(keys), tuple((run.id,) for run in runs))
    # The published figures as the results table gives them, where a run has a target:
    # the target loss and our difference to it, the logbook's minutes, a differing count.
    full = with_targets(full, [run.target for run in runs], after=LOSS)
    # A column of dashes says nothing: no meter where no run has a bar (fewer than two
    # losses, or all equal: as the results table), no peak memory on a CPU, no time or
    # pace before any run has trained, no difference to a target before a run with one
    # has a loss. The loss column stays: it is what is compared.
    empty = {c for c in (MINUTES, RATE, MEMORY, METER, DIFF)
             if c in full.columns and all(v is None for v in full.column(c))}  # fmt: skip
    kept = [i for i, column in enumerate(full.columns) if column not in empty]
    return Table(
        tuple(full.columns[i] for i in kept),
        tuple(tuple(row[i] for i in kept) for row in full.rows),
        full.swept, full.runs,
    )  # fmt: skip


def differing_keys(runs: Sequence[RunRow]) -> list[str]:
    """The config keys whose values are not the same in all of ``runs``, in order."""
    configs = [config_of(run.config_json) for run in runs]
    return [key for key in keys_in_order(configs) if len(distinct_values(key, configs)) > 1]


def unnamed_differences(run: RunRow, keys: Sequence[str]) -> str:
    """``run``'s values of ``keys`` (differing between compared runs) that its name does
    not show (its name shows what its sweep swept): ``"lr 0.003, batch_size 32"``. Two
    runs of different sweeps, or queued alone, differ in what their names leave out."""
    named = config_keys_named(run.swept)
    config = config_of(run.config_json)
    return ", ".join(f"{key} {_in_legend(config.get(key))}" for key in keys if key not in named)


def _in_legend(value: Any) -> str:
    """A value as the legend writes it: none (no batch norm, or a key the run's version
    did not have) as "—", as the same line writes a run's loss of none."""
    return "—" if value is None else value_text(value)


def settings_apart_note(
    existing: Sequence[RunRow], runs: Sequence[NewRun], queued: bool = True
) -> str | None:
    """A note where ``runs`` (a sweep being queued, or with ``queued`` False about to be)
    hold a key fixed that the ``existing`` runs of their experiment, those queued, running
    or done, hold fixed at another value: a name queued again for another sweep (3 layers
    there, 2 here), whose results then mix the two. None otherwise."""
    if not runs:
        return None
    experiment = runs[0].experiment
    kept = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.SUCCEEDED)  # results to come
    before = [config_of(run.config_json) for run in existing
              if run.experiment == experiment and run.status in kept]  # fmt: skip
    now = [config_of(run.config_json) for run in runs]
    if not before:
        return None
    apart = []
    for key in keys_in_order(now):
        there, here = _one_value(key, before), _one_value(key, now)
        if key == "seed" or there is None or here is None or there == here:
            continue
        said = f"{key} {value_text(json.loads(there))} there, {value_text(json.loads(here))} here"
        if key in PER_LAYER_KEYS and _layers_alike(key, [*before, *now]):
            # channels 8 and [8, 8]: the same model, but results show them apart (a column,
            # two cells), and the same config written twice is not skipped as a repeat.
            said += " (the same layers, written another way)"
        apart.append(said)
    if not apart:
        return None
    shown = apart[:3] + ([f"{len(apart) - 3} more keys"] if len(apart) > 3 else [])
    held = f"{len(before):,} run{'s' if len(before) > 1 else ''}"
    mix = "mix" if queued else "would mix"
    return (f"experiment '{experiment}' already holds {held} of other settings "
            f"({'; '.join(shown)}): its results {mix} the two sweeps; another name for this "
            "one keeps them apart")  # fmt: skip


def settings_apart_in(repo: Repo, runs: Sequence[NewRun], queued: bool = True) -> str | None:
    """``settings_apart_note`` against the runs ``repo`` holds of their experiment (read
    before they are queued)."""
    if not runs:
        return None
    existing = repo.list_runs(RunFilter(experiment=runs[0].experiment))
    return settings_apart_note(existing, runs, queued)


def _layers_alike(key: str, configs: Sequence[dict[str, Any]]) -> bool:
    """Whether a per-layer ``key`` gives every one of ``configs`` the same layers (one list
    of channels, kernels or paddings), however each config writes it: ``channels: 8`` and
    ``[8, 8]`` at two layers, ``padding: same`` and ``[1, 1]`` beside 3x3 kernels."""
    layer_values = {
        "channels": RunConfig.channel_list,
        "kernel_size": RunConfig.kernel_list,
        "padding": RunConfig.padding_list,
    }[key]
    built, seen = set(), set()
    for config in configs:
        # Only these keys make the lists: a 10,000-seed sweep is read once, not 10,000 times.
        made_of = json.dumps([config.get(k) for k in ("layers", "kernel_size", key)])
        if made_of in seen:
            continue
        seen.add(made_of)
        try:
            built.add(tuple(layer_values(RunConfig.from_dict(config))))
        except ConfigError:
            return False  # a stored config this version cannot build: not known alike
        if len(built) > 1:
            return False
    return True


def _one_value(key: str, configs: Sequence[dict[str, Any]]) -> str | None:
    """``key``'s one value in every config of ``configs`` (as JSON); None where it varies."""
    values = distinct_values(key, configs)
    return values.pop() if len(values) == 1 else None
