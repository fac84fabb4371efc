"""fold_at_separators: where a name folds, for the run detail and the form's preview."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.table import Table

from resconv_tui.widgets.folded_name import FoldedName, fold_at_separators


@pytest.mark.parametrize(
    ("text", "width", "lines"),
    [
        ("l-3_ks-5_seed-0", 20, ["l-3_ks-5_seed-0"]),
        # Between key-value parts first: "seed-" / "0" only where a part alone is too wide.
        ("layers-3_kernel-5_seed-0", 14, ["layers-3_", "kernel-5_", "seed-0"]),
        ("layers-3_kernel-5_seed-0", 20, ["layers-3_kernel-5_", "seed-0"]),
        ("t1-layers-sweep-max-inputs-300", 22, ["t1-layers-sweep-max-", "inputs-300"]),
        ("runs/t1 sweep", 8, ["runs/t1", "sweep"]),  # the space is not drawn at the end
        # One token wider than the space: cut where it must, as Rich's fold does.
        ("l-1_convolutional", 6, ["l-1_", "convol", "utiona", "l"]),
        ("", 5, [""]),
    ],
)
def test_fold_at_separators(text: str, width: int, lines: list[str]) -> None:
    assert fold_at_separators(text, width) == lines


def test_a_folded_name_in_a_table_takes_the_lines_for_its_cell() -> None:
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True)
    table.add_column()
    table.add_row("experiment", FoldedName("t1-layers-sweep-max-inputs-300"))
    console = Console(width=33, file=io.StringIO(), record=True)
    console.print(table)
    assert [line.rstrip() for line in console.export_text().splitlines()] == [
        "experiment t1-layers-sweep-max-",
        "           inputs-300",
    ]
