"""Results tables: logbook markdown, CSV, JSON, sorting, columns, meter."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace

import pytest

from core.queue.errors import UsageError
from core.queue.rows import RunRow
from core.queue.samples import decode_samples, encode_samples
from core.queue.status import RunStatus
from core.queue.views import (
    ALL_COLUMNS,
    LOSS,
    SCREEN_LABELS,
    count_of,
    format_age,
    format_bytes,
    render,
    results_by_cell,
    results_table,
)

BASE = RunRow(
    id=0, experiment="t1", name="", status=RunStatus.SUCCEEDED, priority=0, config_json="{}",
    config_hash="", seed=0, swept={}, target=None, param_count=0, total_inputs=1, inputs_done=1,
    attempts=1, created_at=0, started_at=0, finished_at=0, worker_id=None, heartbeat_at=0,
    cancel_requested=False, error=None, validation_loss=None, train_seconds=None,
    inputs_per_s=2000.0, peak_memory_bytes=2**20, checkpoint_path=None, path_used=None,
    has_samples=False,
)  # fmt: skip
# (layers, loss, params, minutes) from the logbook's T1
T1 = [(2, 0.124805, 19299, 0.52), (11, 0.057229, 186915, 3.02), (15, 0.054141, 261411, 4.17)]


def runs() -> list[RunRow]:
    return [
        replace(
            BASE,
            id=i + 1,
            swept={"l": layers},
            validation_loss=v,
            param_count=p,
            train_seconds=m * 60,
        )
        for i, (layers, v, p, m) in enumerate(T1)
    ]


def test_markdown_is_the_logbook_table_sorted_by_loss() -> None:
    out = render(results_table(runs()), "markdown").splitlines()
    assert out[0].split("|")[1:-1] == [
        " run ", "  l ", " validation loss ", " model params ", " train time (minutes) ",
        " meter                 ",
    ]  # fmt: skip
    assert out[1].startswith("|----:|---:|")
    assert (
        out[2]
        == "|   3 | 15 |        0.054141 |      261,411 |                 4.17 | *" + " " * 21 + "|"
    )
    assert out[4].endswith("| " + "*" * 21 + " |")  # the worst run: int(20 + 1) stars
    assert len(out) == 5


def test_sort_descending_several_keys_and_substrings() -> None:
    table = results_table(runs(), sort=["-params"])
    assert table.column("run") == [3, 2, 1]
    table = results_table(runs(), sort=["valid"])
    assert table.column("run") == [3, 2, 1]
    table = results_table(runs(), sort=["-l"])
    assert table.column("l") == [15, 11, 2]
    doubled = runs() + [replace(runs()[0], id=9, validation_loss=0.2)]
    assert results_table(doubled, sort=["l", "-validation loss"]).column("run") == [9, 1, 2, 3]


def test_columns_choose_or_hide() -> None:
    table = results_table(runs(), columns=["l", "loss", "inputs/s", "memory"])
    assert table.columns == ("l", "validation loss", "inputs/s", "peak memory (MiB)")
    assert table.rows[0] == (15, 0.054141, 2000.0, 1.0)
    hidden = results_table(runs(), columns=["-meter", "-run"])
    assert hidden.columns == ("l", "validation loss", "model params", "train time (minutes)")
    every = ["-meter", "-run", "-l", "-loss", "-params", "-time"]  # printed rows of "|  |"
    with pytest.raises(UsageError, match="--columns: that hides every column"):
        results_table(runs(), columns=every)


def test_all_columns_adds_rate_and_memory_and_keeps_a_meter_only_with_bars() -> None:
    every = results_table(runs(), columns=ALL_COLUMNS).columns
    assert every[-3:] == ("inputs/s", "peak memory (MiB)", "meter")
    same = [replace(r, validation_loss=0.1) for r in runs()]
    assert results_table(same, columns=ALL_COLUMNS).columns[-1] == "peak memory (MiB)"


def test_unknown_or_ambiguous_column_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="'nope' is not a column"):
        results_table(runs(), sort=["nope"])
    with pytest.raises(UsageError, match="ambiguous"):
        results_table(runs(), columns=["m"])
    with pytest.raises(UsageError, match="unknown format"):
        render(results_table(runs()), "xml")


def test_a_column_is_named_by_the_start_of_it_or_of_one_of_its_words() -> None:
    # `--columns id` showed "validation loss" ("id" inside "validation"), silently.
    with pytest.raises(UsageError, match="'id' is not a column"):
        results_by_cell(runs(), runs(), columns=["id"])
    assert results_table(runs(), columns=["time", "mem"]).columns == (
        "train time (minutes)", "peak memory (MiB)",
    )  # fmt: skip
    # A word after an underscore is a word too: `position` for bn_position.
    positions = [replace(r, swept={"bn_position": i}) for i, r in enumerate(runs())]
    assert results_table(positions, columns=["position"]).columns == ("bn_position",)
    # The JSON keys of the seeds column name it too, as the help says JSON keys do.
    assert results_by_cell(runs(), runs(), columns=["seeds_done"]).columns == ("seeds",)
    assert results_by_cell(runs(), runs(), columns=["seeds_total"]).columns == ("seeds",)
    # and its names before, as scripts may give them (the JSON key of 1.x, the CSV header)
    assert results_by_cell(runs(), runs(), columns=["seeds_queued"]).columns == ("seeds",)
    assert results_by_cell(runs(), runs(), columns=["seeds queued"]).columns == ("seeds",)


def test_hiding_a_column_this_table_lacks_is_no_error_but_a_typo_is() -> None:
    # One command for experiments with and without targets: `-logbook` failed on the latter.
    table = results_table(runs(), columns=["-meter", "-logbook", "-delta", "-target"])
    assert table.columns == ("run", "l", "validation loss", "model params", "train time (minutes)")
    with pytest.raises(UsageError, match="'lgobook' is not a column"):
        results_table(runs(), columns=["-lgobook"])
    # Ambiguous where both are present: said, not silently nothing hidden (review).
    target = [replace(r, target={"validation_loss": 0.05, "minutes": 1.0}) for r in runs()]
    with pytest.raises(UsageError, match="'min' is ambiguous"):
        results_table(target, columns=["-min"])


def test_an_ambiguous_column_names_the_columns_it_could_be() -> None:
    # `results --sort t` said "'t' is ambiguous" and listed every column, leaving the
    # user to work out which few it matched.
    target = [replace(r, target={"validation_loss": 0.05, "minutes": 1.0}) for r in runs()]
    with pytest.raises(UsageError) as refused:
        results_table(target, sort=["t"])
    said = str(refused.value)
    assert "'t' is ambiguous: it could be target, Δ target, train time (minutes)" in said
    assert "give more of its name" in said


def test_json_of_the_meter_alone_is_refused_not_empty_objects() -> None:
    with pytest.raises(UsageError, match="JSON leaves the meter out"):
        render(results_table(runs(), columns=["meter"]), "json")
    with pytest.raises(UsageError, match="CSV leaves the meter out"):
        render(results_table(runs(), columns=["meter"]), "csv")
    assert json.loads(render(results_table(runs(), columns=["meter", "l"]), "json"))[0] == {"l": 15}


def test_csv_and_json_keep_raw_numbers() -> None:
    table = results_table(runs())
    csv_lines = render(table, "csv").splitlines()
    # No meter: a column of asterisks no spreadsheet can sort or plot (JSON leaves it out).
    assert csv_lines[0] == "run,l,validation loss,model params,train time (minutes)"
    assert csv_lines[1].startswith("3,15,0.054141,261411,4.17")
    data = json.loads(render(table, "json"))
    # JSON keys are ls --json's where both hold a figure; swept keys keep their names.
    assert data[0] == {
        "id": 3, "l": 15, "validation_loss": 0.054141, "param_count": 261411,
        "train_minutes": data[0]["train_minutes"],
    }  # fmt: skip
    assert round(data[0]["train_minutes"], 2) == 4.17


def test_json_of_cells_gives_seeds_as_numbers() -> None:
    seeds = [replace(r, id=10 + i, swept={**r.swept, "seed": i}, config_hash=f"seed-{i}",
                     validation_loss=0.05 + i / 100)
             for i, r in enumerate([runs()[0]] * 2)]  # fmt: skip
    cell = json.loads(render(results_by_cell(seeds, seeds), "json"))
    assert len(cell) == 1
    assert cell[0]["seeds_done"] == 2 and cell[0]["seeds_total"] == 2
    assert cell[0]["validation_loss_std"] > 0 and "seeds" not in cell[0]
    # CSV the same way: "2/2" in a spreadsheet read as 2 February.
    csv_lines = render(results_by_cell(seeds, seeds, columns=["l", "seeds"]), "csv")
    assert csv_lines.splitlines() == ["l,seeds done,seeds total", "2,2,2"]
    header_only = render(replace(results_by_cell(seeds, seeds), rows=()), "csv")
    assert header_only.startswith("l,seeds done,seeds total,validation loss,")


def test_a_cells_seed_count_beside_those_done_is_every_seed_not_those_queued() -> None:
    # Both seeds done, none queued: the JSON said "seeds_queued": 2, the CSV "seeds queued" 2.
    seeds = [replace(r, id=10 + i, swept={**r.swept, "seed": i}, config_hash=f"seed-{i}",
                     validation_loss=0.05 + i / 100)
             for i, r in enumerate([runs()[0]] * 2)]  # fmt: skip
    queued = replace(seeds[0], id=12, status=RunStatus.QUEUED, config_hash="seed-2")
    cell = json.loads(render(results_by_cell(seeds, [*seeds, queued]), "json"))[0]
    assert (cell["seeds_done"], cell["seeds_total"]) == (2, 3)
    assert not {key for key in cell if "queued" in key}
    csv_lines = render(results_by_cell(seeds, [*seeds, queued], columns=["seeds"]), "csv")
    assert csv_lines.splitlines() == ["seeds done,seeds total", "2,3"]


def test_meter_is_left_out_when_all_losses_are_equal_and_none_sorts_last() -> None:
    same = [replace(r, validation_loss=0.1) for r in runs()]
    assert "meter" not in results_table(same).columns
    missing = [replace(runs()[0], validation_loss=None), *runs()[1:]]
    assert results_table(missing).column("run")[-1] == 1


def test_sorting_by_the_meter_sorts_by_the_loss_it_draws() -> None:
    # 0.43988 and 0.45143 both drew 20 stars, and a descending meter sort kept them in
    # ascending loss order, in both tables (the results screen sorts the same way).
    losses = [0.110046, 0.43988, 0.45143, 0.45574]  # tied bars in ascending order
    close = [
        replace(BASE, id=i + 1, validation_loss=v, swept={"l": i + 1}, config_hash=str(i),
                config_json=json.dumps({"layers": i + 1}))
        for i, v in enumerate(losses)
    ]  # fmt: skip
    for table in (results_table, results_by_cell):
        assert table(close, sort=["-meter"]).column(LOSS) == sorted(losses, reverse=True)
        assert table(close, sort=["meter"]).column(LOSS) == sorted(losses)


def test_several_experiments_get_a_column_and_swept_values_render() -> None:
    mixed = [
        replace(runs()[0], experiment="a", swept={"bnp-e": None, "ch": [16, 32]}),
        replace(runs()[1], experiment="b", swept={"bnp-e": 0}),
    ]
    table = results_table(mixed)
    assert table.columns[:4] == ("run", "experiment", "bnp-e", "ch")
    md = render(table, "markdown")
    assert "|     – | [16, 32] |" in md


def test_samples_round_trip_and_small_formatters() -> None:
    import numpy as np

    grid = np.arange(3 * 2 * 4 * 4, dtype=np.uint8).reshape(3, 2, 4, 4)
    data = encode_samples(grid)
    assert data is not None and (decode_samples(data, 1) == grid).all()
    assert encode_samples(None) is None
    assert [format_age(s) for s in (None, 3, 600, 7200)] == ["—", "3 s", "10 min", "2.0 h"]
    assert format_bytes(3 * 2**30) == "3.0 GiB" and format_bytes(None) == "—"


def test_by_cell_averages_seeds_and_counts_seeds_done() -> None:
    from core.queue.views import results_by_cell

    def seeded(run_id: int, layers: int, seed: int, loss: float | None, status: RunStatus):
        return replace(
            BASE, id=run_id, status=status, seed=seed, swept={"l": layers, "seed": seed},
            validation_loss=loss, param_count=layers * 100, train_seconds=60.0,
            config_hash=f"l{layers}-s{seed}",
            config_json=json.dumps({"layers": layers, "seed": seed}),
        )  # fmt: skip

    done = RunStatus.SUCCEEDED
    every = [
        seeded(1, 2, 0, 0.10, done),
        seeded(2, 2, 1, 0.12, done),
        seeded(3, 2, 2, None, RunStatus.RUNNING),
        seeded(4, 5, 0, 0.05, done),
        seeded(5, 5, 0, None, RunStatus.CANCELLED),  # a --force copy of seed 0: no new seed
        seeded(7, 5, 1, None, RunStatus.CANCELLED),  # seed 1, cancelled: none to come
        seeded(8, 2, 3, None, RunStatus.FAILED),  # seed 3 failed: a retry may bring it
    ]
    succeeded = [r for r in every if r.status == done]
    table = results_by_cell(succeeded, every)
    assert table.columns[:4] == ("l", "seeds", "validation loss", "± std")
    assert table.column("l") == [5, 2]  # sorted by mean loss
    assert table.column("seeds") == ["1/1", "2/4"]
    assert table.column("validation loss") == pytest.approx([0.05, 0.11])
    std = table.column("± std")
    assert std[0] is None and std[1] == pytest.approx(0.0141421, rel=1e-4)  # sample std
    markdown = render(table, "markdown")
    assert "| 2/4 " in markdown and "0.0141421" in markdown
    assert results_by_cell(succeeded, every, sort=["-seeds"]).column("seeds") == ["2/4", "1/1"]
    # A --force copy that succeeded too is seed 0 again, not a second seed: "2/2" with a
    # std of 0 said two seeds agreed exactly. The latest of the two counts.
    again = seeded(6, 5, 0, 0.07, done)
    table = results_by_cell([*succeeded, again], [*every, again])
    five = table.column("l").index(5)
    assert table.column("seeds")[five] == "1/1" and table.column("± std")[five] is None
    assert table.column("validation loss")[five] == pytest.approx(0.07)
    assert table.runs[five] == (6,)


def test_a_cell_is_one_config_not_one_set_of_swept_values() -> None:
    # The same swept value (act relu) from a 2-layer sweep and a 3-layer form run: two
    # cells, never one mean over a 5,000- and a 21,000-parameter model.
    from core.queue.views import results_by_cell

    def run(run_id: int, layers: int, loss: float) -> RunRow:
        return replace(
            BASE, id=run_id, swept={"act": "relu"}, validation_loss=loss, config_hash=str(run_id),
            config_json=json.dumps({"layers": layers, "activation": "relu", "seed": 0}),
        )  # fmt: skip

    both = [run(1, 2, 0.10), run(2, 3, 0.05)]
    table = results_by_cell(both, both)
    assert table.column("validation loss") == [0.05, 0.10]
    assert table.runs == ((2,), (1,))
    # The two rows read "act relu" alike: the key that tells them apart is a column.
    assert table.columns[:2] == ("act", "layers") and table.column("layers") == [3, 2]
    assert results_table(both).columns[:3] == ("run", "act", "layers")
    assert "layers" not in results_table([both[0]]).columns  # nothing to tell apart


def test_only_runs_shown_alike_add_a_column() -> None:
    # Runs whose swept values already differ add none, and seeds are a cell's own.
    def run(run_id: int, act: str, layers: int, seed: int) -> RunRow:
        config = {"layers": layers, "activation": act, "seed": seed}
        return replace(BASE, id=run_id, swept={"act": act, "seed": seed}, validation_loss=0.1,
                       config_hash=str(run_id), config_json=json.dumps(config))  # fmt: skip

    apart = [run(1, "relu", 2, 0), run(2, "gelu", 3, 0), run(3, "relu", 2, 1)]
    assert results_table(apart).columns[:4] == ("run", "act", "seed", "validation loss")
    assert results_by_cell(apart, apart).columns[:2] == ("act", "seeds")
    # Cells of other layers, their first runs of other seeds: no "seed" column by cell.
    cells = [run(4, "relu", 3, 0), run(5, "relu", 3, 1), run(6, "relu", 2, 1)]
    assert results_by_cell(cells, cells).columns[:3] == ("act", "layers", "seeds")
    # Another experiment's runs alike are told apart by the experiment column.
    other = replace(run(4, "relu", 3, 0), experiment="t2")
    assert "layers" not in results_table([apart[0], other]).columns


def test_seeds_sort_as_numbers_not_text() -> None:
    from core.queue.views import Table, sorted_by

    table = Table(("seeds",), (("10/10",), ("2/3",), ("2/10",)), ())
    assert sorted_by(table, ["seeds"]).column("seeds") == ["2/3", "2/10", "10/10"]


def test_targets_sit_beside_our_figures_in_both_tables() -> None:
    # The logbook's published figures (a sweep file's targets) next to what we measured.
    from core.queue.views import (
        DIFF,
        LOGBOOK_MINUTES,
        MINUTES,
        PARAMS,
        TARGET,
        TARGET_PARAMS,
        results_by_cell,
    )

    target = {"validation_loss": 0.1, "params": 321, "minutes": 2.5}
    seeds = [
        replace(BASE, id=i + 1, seed=i, swept={"l": 2, "seed": i}, config_hash=f"s{i}",
                config_json=json.dumps({"layers": 2, "seed": i}),
                validation_loss=loss, train_seconds=30.0, target=target)
        for i, loss in enumerate((0.11, 0.13))
    ]  # fmt: skip
    plain = replace(BASE, id=3, swept={"l": 5, "seed": 0}, validation_loss=0.2, config_hash="x",
                    config_json=json.dumps({"layers": 5, "seed": 0}))  # fmt: skip
    runs_table = results_table([*seeds, plain])
    assert runs_table.columns[:6] == ("run", "l", "seed", "validation loss", TARGET, DIFF)
    assert runs_table.column(TARGET) == [0.1, 0.1, None]
    assert runs_table.column(DIFF) == pytest.approx([0.01, 0.03, None])
    assert runs_table.column(LOGBOOK_MINUTES) == [2.5, 2.5, None]
    assert runs_table.columns.index(LOGBOOK_MINUTES) == runs_table.columns.index(MINUTES) + 1
    assert "| +0.010000 |" in render(runs_table, "markdown")
    cells = results_by_cell([*seeds, plain], [*seeds, plain])
    assert cells.columns[:6] == ("l", "seeds", "validation loss", "± std", TARGET, DIFF)
    assert cells.column(DIFF) == pytest.approx([0.02, None])
    assert TARGET not in results_table([plain]).columns  # no targets: no empty columns
    # A params target equal to the model's count adds nothing; one that differs, a column.
    matching = [replace(r, param_count=321) for r in seeds]
    assert TARGET_PARAMS not in results_table(matching).columns
    differing_runs = [*matching, replace(matching[0], id=9, param_count=999)]
    differing = results_table(differing_runs)
    at = differing.columns.index(PARAMS)
    assert differing.columns[at + 1] == TARGET_PARAMS
    assert differing.column(TARGET_PARAMS) == [321, 321, 321]
    assert results_table(differing_runs, sort=["-params"]).column(PARAMS)[0] == 999  # unambiguous


def test_count_of_says_one_without_a_plural() -> None:
    assert [count_of(n, "finished run") for n in (0, 1, 2, 1200)] == [
        "0 finished runs", "1 finished run", "2 finished runs", "1,200 finished runs",
    ]  # fmt: skip


def test_a_stored_target_that_is_no_figure_is_left_out() -> None:
    # Queued before targets were checked: results crashed subtracting "0.2O".
    bad = [replace(r, target={"validation_loss": "0.2O", "minutes": 1.0}) for r in runs()]
    table = results_table(bad)
    assert "target" not in table.columns and "logbook minutes" in table.columns
    assert json.loads(render(table, "json"))[0]["logbook_minutes"] == 1.0


def test_columns_that_both_show_and_hide_say_so() -> None:
    # Was "'-meter' is not a column", naming the wrong mistake.
    with pytest.raises(UsageError) as caught:
        results_table(runs(), columns=["-meter", "l"])
    assert str(caught.value) == (
        "--columns: -meter hides while l shows: give the columns to show, or only -COL "
        "entries to hide some"
    )


def test_columns_named_with_symbols_can_be_typed() -> None:
    # "Δ target" and "± std" could only be picked by typing Δ or ±.
    target = [replace(r, target={"validation_loss": 0.05}) for r in runs()]
    assert results_table(target, columns=["run", "delta"]).columns == ("run", "Δ target")
    assert results_table(target, columns=["target_diff"]).columns == ("Δ target",)
    assert results_table(target, columns=["param_count"]).columns == ("model params",)
    cells = results_by_cell(target, target, columns=["std"])
    assert cells.columns == ("± std",)


def test_markdown_lines_up_wide_characters() -> None:
    from rich.cells import cell_len

    # Padding counted characters: a column of 実験 was two cells short per character.
    mixed = [
        replace(r, experiment=name) for r, name in zip(runs(), ["実験", "ab", "x"], strict=True)
    ]
    lines = render(results_table(mixed), "markdown").splitlines()
    assert len({cell_len(line) for line in lines}) == 1, lines


@pytest.mark.parametrize(
    "text",
    ["\U0001f469\u200d\U0001f52c-lab", "\U0001f468\u200d\U0001f469\u200d\U0001f467",
     "\U0001f44d\U0001f3fd", "\U0001f3f3\ufe0f\u200d\U0001f308", "\u2764\ufe0f", "1\ufe0f\u20e3",
     "\u2764", "実験", "e\u0301x", "\U0001f1eb\U0001f1f7", "plain",
     "\U0001f3c3\u200d\u2640\ufe0f", "\U0001f469\u200d\u2764\ufe0f\u200d\U0001f468",
     "\U0001f43b\u200d\u2744\ufe0f", "#\ufe0f\u20e3", "\u00a9\ufe0f",
     "\U0001f441\ufe0f\u200d\U0001f5e8\ufe0f", "\U0001f408\u200d\u2b1b"],
)  # fmt: skip
def test_cell_len_counts_an_emoji_sequence_as_rich_does(text: str) -> None:
    # 👩‍🔬 counted 5 cells (each emoji 2, the joiner 1) where rich, which draws the
    # dashboard and the terminal's output, counts 2: ls and results padded its rows 3
    # cells short, and the columns after it ran out of line.
    from rich.cells import cell_len as rich_cell_len

    from core.queue.views import cell_len

    assert cell_len(text) == rich_cell_len(text)


@pytest.mark.parametrize(
    ("text", "cells"),
    [("\u200dabc", 3), ("a\u200db", 2), ("\u5b9f\u200dx", 3), ("\u200d\U0001f469", 2),
     ("ab\u200d", 2), ("\U0001f469\U0001f3fd\u200d\U0001f52c", 2)],
)  # fmt: skip
def test_cell_len_joins_only_after_an_emoji(text: str, cells: int) -> None:
    # A joiner joined whatever came after it: a name starting with one (or one between
    # letters, 実‍x) lost its next character's cells (\u200dabc: 2), and its ls row was
    # padded short; a terminal draws those characters. rich counts them so too, but ls
    # and results print without rich, and only an emoji sequence joins into one glyph.
    from core.queue.views import cell_len

    assert cell_len(text) == cells


@pytest.mark.parametrize(
    ("text", "cells"),
    [("40\u00b0\u200dC", 4), ("\u2500\u200d\u2500", 2), ("\u2f00\u200dx", 3),
     ("\u3012\u200dx", 3), ("\u00a9\u200dx", 2), ("\U0001f469\u200dx", 3),
     ("a\ufe0f", 1), ("\u00b0\ufe0f-a", 3), ("\u5b9f\U0001f3fd", 4), ("a\U0001f3fd", 3),
     ("\u2b50\u200d1", 3), ("1\u20e3", 1)],
)  # fmt: skip
def test_cell_len_joins_only_an_emoji_sequence(text: str, cells: int) -> None:
    # A joiner after any "So" character joined the next one to it (40°‍C: 3, ─‍─: 1,
    # the radical ⼀‍x: 2), U+FE0F drew any character before it wide (a️: 2) and a skin
    # tone after 実 added nothing: ls padded those rows short or long, where a terminal
    # draws each character (tmux: 40°‍C takes 4 cells). A joiner joins an emoji to an
    # emoji, U+FE0F makes a text symbol an emoji (©️, ❤️, 1️⃣), a skin tone follows one.
    from core.queue.views import cell_len

    assert cell_len(text) == cells


def test_markdown_lines_up_an_emoji_sequence() -> None:
    from rich.cells import cell_len

    mixed = [replace(r, experiment=name) for r, name in
             zip(runs(), ["\U0001f469\u200d\U0001f52c", "ab", "x"], strict=True)]  # fmt: skip
    lines = render(results_table(mixed), "markdown").splitlines()
    assert len({cell_len(line) for line in lines}) == 1, lines


def test_a_column_another_experiment_swept_shows_this_run_s_fixed_value() -> None:
    # Experiment a swept ch with activation fixed, b swept act with 8 channels fixed:
    # b's channels read "–" (null in JSON) though they are known.
    a = replace(runs()[0], experiment="a", swept={"ch": 4},
                config_json='{"channels": 4, "activation": "relu"}')  # fmt: skip
    b = replace(runs()[1], experiment="b", swept={"act": "gelu"},
                config_json='{"channels": 8, "activation": "gelu"}')  # fmt: skip
    table = results_table([a, b])
    assert table.column("ch") == [8, 4] and table.column("act") == ["gelu", "relu"]


def test_one_parameter_swept_under_two_names_is_one_column() -> None:
    # a wrote `act`, b wrote `activation`: two columns, each filled for every run.
    a = replace(runs()[0], experiment="a", swept={"act": "gelu"},
                config_json='{"activation": "gelu"}')  # fmt: skip
    b = replace(runs()[1], experiment="b", swept={"activation": "tanh"},
                config_json='{"activation": "tanh"}')  # fmt: skip
    table = results_table([a, b], sort=["-activation"])
    assert table.columns[:3] == ("run", "experiment", "act")
    assert table.column("act") == ["tanh", "gelu"]
    cells = results_by_cell([a, b], [a, b], columns=["activation", "loss"])
    assert cells.columns == ("act", "validation loss")


def test_markdown_escapes_text_that_would_split_a_row_or_style_it() -> None:
    from markdown_it import MarkdownIt

    # A name with | split its row into an extra column; *x* and `y` rendered as emphasis
    # and code. Underscores inside a word (run names, bn_position) stay as written.
    odd = "../odd/na|me *x* `y` ü"
    named = [
        replace(runs()[0], experiment=odd, swept={"act": "_gelu_"}),
        replace(runs()[1], experiment="t1", swept={"act": "l-1_ch-4"}),
        replace(runs()[2], experiment="back\\slash ~~gone~~ <b>"),
    ]
    markdown = render(results_table(named), "markdown")
    assert "| ../odd/na\\|me \\*x\\* \\`y\\` ü " in markdown
    assert "| \\_gelu\\_ " in markdown and "| l-1_ch-4 " in markdown
    gfm = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    tokens = gfm.parse(markdown)
    rows = [t for t in tokens if t.type == "tr_open"]
    cells = [t.content for t in tokens if t.type == "inline"]
    width = len(results_table(named).columns)
    assert len(cells) == len(rows) * width  # no row split into an extra column
    html = gfm.render(markdown)
    assert "<em>" not in html and "<code>" not in html and "<s>" not in html
    assert "<b>" not in html and "../odd/na|me *x* `y` ü" in html
    assert "back\\slash ~~gone~~ &lt;b&gt;" in html and "_gelu_" in html


def test_markdown_of_ordinary_names_is_as_before() -> None:
    # The logbook's tables: no escape where nothing needs one (a keyed name, the meter).
    plain = [replace(r, experiment=f"t1-layers_{i}") for i, r in enumerate(runs())]
    lines = render(results_table(plain), "markdown").splitlines()
    assert lines[2].startswith("|   3 | t1-layers_2 | 15 |        0.054141 |")
    assert lines[4].endswith("| " + "*" * 21 + " |")


def test_the_results_screen_s_headers_name_their_columns() -> None:
    # `--columns in/s` was "not a column" and `minutes` (the screen's train time)
    # "ambiguous" beside logbook minutes.
    target = {"validation_loss": 0.05, "params": 1, "minutes": 1.0}
    table = [replace(r, target=target) for r in runs()]
    for column, label in SCREEN_LABELS.items():
        assert results_table(table, columns=[label]).columns == (column,), label
        assert results_table(table, columns=[label.upper()]).columns == (column,), label
        ordered = results_table(table, columns=ALL_COLUMNS, sort=[f"-{label}"])
        assert ordered.rows == results_table(table, columns=ALL_COLUMNS, sort=[f"-{column}"]).rows
    hidden = results_table(table, columns=["-minutes", "-meter"]).columns
    assert "train time (minutes)" not in hidden and "logbook minutes" in hidden
    # The names that worked before still do.
    assert results_table(table, columns=["params", "time", "logbook"]).columns == (
        "model params", "train time (minutes)", "logbook minutes",
    )  # fmt: skip


def test_the_results_screen_s_narrow_headers_name_their_columns() -> None:
    # At 80 columns the screen's headers read "lb min" and "tgt par", its legend "lb min:
    # logbook minutes": `results --sort "lb min"` was "not a column", though the README
    # says the screen's headers name their columns. ("min" stays ambiguous beside
    # logbook minutes: test_hiding_a_column_this_table_lacks_is_no_error_but_a_typo_is.)
    target = {"validation_loss": 0.05, "params": 1, "minutes": 1.0}
    table = [replace(r, target=target) for r in runs()]
    shown = {"loss": LOSS, "lb min": "logbook minutes", "tgt par": "target param count",
             "MiB": "peak memory (MiB)"}  # fmt: skip
    for label, column in shown.items():
        assert results_table(table, columns=[label]).columns == (column,), label
        ordered = results_table(table, columns=ALL_COLUMNS, sort=[f"-{label}"])
        assert ordered.rows == results_table(table, columns=ALL_COLUMNS, sort=[f"-{column}"]).rows


def test_batch_norm_off_is_one_value_however_the_sweep_file_wrote_it() -> None:
    # `bnp-e: none` and `bnp-e: null` both queue a run without encoder BN: results showed
    # the first as the text "none", sorted first by -bnp-e, the second as "–", sorted
    # last. Runs queued before keep their stored spelling and read alike too.
    written = [0, "none", None, 2, "off", False, "–"]
    rows = [
        replace(runs()[0], id=i + 1, swept={"bnp-e": value}, validation_loss=0.1 + i / 100,
                config_hash=f"hash-{i}",
                config_json=json.dumps({"bn_encoder": value if type(value) is int else None}))
        for i, value in enumerate(written)
    ]  # fmt: skip
    for sort in (["bnp-e"], ["-bnp-e"]):
        table = results_table(rows, columns=["bnp-e"], sort=sort)
        values = table.column("bnp-e")
        assert values == ([0, 2] if sort == ["bnp-e"] else [2, 0]) + [None] * 5
        assert render(table, "markdown").count("– |") == 5
        csv_cells = [row[0] for row in csv.reader(io.StringIO(render(table, "csv")))]
        assert csv_cells[1:] == [str(v) for v in values[:2]] + [""] * 5
        assert [row["bnp-e"] for row in json.loads(render(table, "json"))] == values
    cells = results_by_cell(rows, rows, columns=["bnp-e"], sort=["-bnp-e"])
    assert cells.column("bnp-e") == [2, 0, None]
