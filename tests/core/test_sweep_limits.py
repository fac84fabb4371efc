"""Whole numbers beyond what a run can use or the queue can store: refused when the
sweep is read, naming the key and the range (they were a traceback at queueing)."""

from __future__ import annotations

import pytest

from core.config import MAX_WHOLE, whole_from_text
from core.errors import SweepError
from core.sweep import expand_sweep_text

HUGE = "99999999999999999999999"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (f"seed: {HUGE}", f"key 'seed': must be 0 to 2,147,483,647 (got {HUGE})"),
        # Torch seeds its generators with seed * 16 + stream: this one failed every run.
        ("seed: 9223372036854775807", "key 'seed': must be 0 to 2,147,483,647"),
        (f"max_inputs: {HUGE}", f"key 'max_inputs': must be 1 to 1,000,000,000 (got {HUGE})"),
        (f"channels: {HUGE}", "key 'channels': must be 1 to 4,096"),
        (f"kernel_size: {HUGE}", "key 'kernel_size': must be 1 to 127"),
        (f"ch: [1, {HUGE}]", "key 'channels': must be 1 to 4,096"),  # no float overflow
        (f"ch: [4, -{HUGE}]", "key 'channels': must be 1 to 4,096"),
        (f"padding: {HUGE}", "key 'padding': must be 0 to 63"),
        (f"stride: {HUGE}", "key 'stride': must be 1 to 64"),
        (f"bs: {HUGE}", "key 'batch_size': must be 1 to 1,000,000,000"),
        ("max_inputs: 2e9", "key 'max_inputs': must be 1 to 1,000,000,000 (got 2000000000)"),
        ("matrix:\n  seed: [1, 2147483648]", "run 'seed-2147483648': key 'seed'"),
        ("seeds: [1, 2147483648]", "key 'seeds': a seed must be 0 to 2,147,483,647"),
        ("ch: 4096\nks: 127", "parameters, at most 2,147,483,647 (the queue's"),
        # AdamW's first float32 step overflowed: a traceback out of `train`.
        ("lr: 1.0e+38", "key 'lr': lr must be at most 1e+30 (got 1e+38): AdamW's float32"),
        ("lr: 1.0e+20\nweight_decay: 1.0e+20", "lr x weight_decay must be at most 1e+30"),
    ],
)
def test_numbers_beyond_the_limits_are_refused(line: str, message: str) -> None:
    with pytest.raises(SweepError) as info:
        expand_sweep_text(f"name: x\nlayers: 2\n{line}\n", source="s.yml")
    assert message in str(info.value) and str(info.value).startswith("s.yml: ")


def test_the_limits_themselves_are_accepted() -> None:
    text = "name: x\nlayers: 2\nseed: 2147483647\nmax_inputs: 1e9\nch: 4096\nks: 5\n"
    (run,) = expand_sweep_text(text)
    assert run.config.seed == 2147483647 and run.config.max_inputs == 10**9
    (run,) = expand_sweep_text("name: x\nlayers: 2\nch: 1\nks: 127\nseeds: [2147483647]\n")
    assert run.config.seed == 2147483647


def test_whole_numbers_from_text_have_one_limit_however_written() -> None:
    assert whole_from_text(str(MAX_WHOLE)) == MAX_WHOLE
    assert whole_from_text(str(-MAX_WHOLE)) == -MAX_WHOLE
    assert whole_from_text(str(MAX_WHOLE + 1)) is None  # as 1e20 is
    assert whole_from_text(HUGE) is None and whole_from_text("1e23") is None


def test_an_lr_that_diverges_is_still_allowed() -> None:
    # 1e30 trains to a NaN loss ("training diverged"): a result, not a refusal.
    assert expand_sweep_text("name: x\nlayers: 1\nlr: 1.0e+30\n")[0].config.lr == 1e30
