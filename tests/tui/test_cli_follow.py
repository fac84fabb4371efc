"""``resconv-tui show ID --follow``: a run followed through its life, line by line, and
an exit status that says how it ended."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from types import SimpleNamespace

import pytest
from seed_runs import curve, new_run

import resconv_tui.follow as follow_module
from core.queue import FinalFigures, MetricPoint, Repo
from resconv_tui.cli import main
from resconv_tui.follow import POLL_S, Follower, Terminal, follow


class Story:
    """What happens to the queue while the follower sleeps: one step per sleep."""

    def __init__(self, steps: list[Callable[[], object]]) -> None:
        self.steps = steps
        self.sleeps = 0

    def sleep(self, _seconds: float) -> None:
        if self.sleeps >= len(self.steps):
            raise AssertionError("followed past the story's end")
        self.steps[self.sleeps]()
        self.sleeps += 1


@pytest.fixture
def repo(db_url: str) -> Repo:
    opened = Repo.open(db_url)
    yield opened
    opened.close()


def lines_of(repo: Repo, run_id: int, story: Story, db: str = "") -> tuple[int, list[str]]:
    out: list[str] = []
    code = follow(repo, run_id, Terminal(out.append, live=False), db, sleep=story.sleep)
    return code, "".join(out).splitlines()


def test_a_run_followed_from_the_queue_to_its_end(repo: Repo) -> None:
    (run_id,) = repo.enqueue([new_run(3)]).added_ids
    worker = repo.register_worker("gpu-box", 1234, "cuda:0")

    def train() -> None:
        repo.claim(worker)
        repo.add_metrics(run_id, curve(range(1, 12)), inputs_done=7040)
        repo.heartbeat(worker, run_id=run_id)

    def finish() -> None:
        repo.finish(run_id, worker, FinalFigures(0.0512, None, 92.5, 3100.0, None, 64_000))

    code, lines = lines_of(repo, run_id, Story([train, finish]))
    assert code == 0
    assert lines[0] == "queued: waits for a worker"
    assert lines[1] == f"running on worker {worker}"
    loss = 0.25 * 2.718281828 ** (-10 / 15) + 0.06
    assert lines[2] == f"validation pass at 6,400 inputs: val loss {loss:.6f}"
    assert lines[3].startswith("7,040 / 64,000 inputs (11%)  train loss ")
    assert lines[4:] == [
        "succeeded: val loss 0.051200 in 1m32s (validation included), training steps at 3,100 in/s"
    ]


def test_a_final_pass_at_the_last_epoch_s_inputs_is_said_once(repo: Repo) -> None:
    # One epoch of 60,000 inputs: "validation pass at 60,000 inputs: val loss 0.110046"
    # twice, the epoch's pass and the final one (fixed masks: the same value).
    runs = repo.enqueue([new_run(3), new_run(4)]).added_ids
    worker = repo.register_worker("gpu-box", 1234, "cuda:0")
    said = {}
    for run_id, final in zip(runs, (0.110046, 0.111002), strict=True):  # fixed, seed-faithful
        repo.claim(worker)
        points = [MetricPoint(1, 640, "val_loss", 0.110046), MetricPoint(2, 640, "val_loss", final)]
        repo.add_metrics(run_id, points, inputs_done=640)

        def finish(run_id: int = run_id) -> None:
            repo.finish(run_id, worker, FinalFigures(0.11, None, 9.5, 3100.0, None, 640))

        said[final] = [
            line for line in lines_of(repo, run_id, Story([finish]))[1] if "pass" in line
        ]
    assert said[0.110046] == ["validation pass at 640 inputs: val loss 0.110046"]
    assert said[0.111002] == [
        "validation pass at 640 inputs: val loss 0.110046",
        "final pass at 640 inputs: val loss 0.111002",
    ]


def test_following_rides_out_a_database_that_does_not_answer_for_a_while(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 20 s PostgreSQL restart the worker rode out ended `show --follow` with exit 2
    # ("Connection refused"). Here SQLite's lock, held by another process, is the outage.
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from core.queue import QueueError

    (run_id,) = repo.enqueue([new_run(3)]).added_ids
    worker = repo.register_worker("gpu-box", 1234, "cuda:0")
    repo.claim(worker)
    away = [True]
    real_get_run = repo.get_run

    def get_run(wanted: int) -> object:
        if away[0]:
            cause = OperationalError("SELECT", {}, sqlite3.OperationalError("database is locked"))
            raise QueueError("database runs.db is locked by another process") from cause
        return real_get_run(wanted)

    def back() -> None:
        away[0] = False

    def finish() -> None:
        repo.finish(run_id, worker, FinalFigures(0.0512, None, 92.5, 3100.0, None, 64_000))

    monkeypatch.setattr(repo, "get_run", get_run)
    code, lines = lines_of(repo, run_id, Story([lambda: None, back, finish]))
    assert code == 0, lines
    assert (
        lines[0]
        == "database locked by another process: following on once it answers (for up to 300 s)"
    )
    # A lock passed, said so: "reachable again" read as the database gone and back.
    assert lines[1].startswith("database no longer locked after ")
    assert lines[-1].startswith("succeeded: val loss 0.051200")
    # What waiting will not mend ends it at once, as before.
    monkeypatch.setattr(
        repo, "get_run", lambda wanted: (_ for _ in ()).throw(QueueError("damaged"))
    )
    with pytest.raises(QueueError, match="damaged"):
        lines_of(repo, run_id, Story([]))


def locked() -> Exception:
    """SQLite's lock held by another process past the busy timeout, as Repo raises it."""
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from core.queue import QueueError

    cause = OperationalError("SELECT", {}, sqlite3.OperationalError("database is locked"))
    error = QueueError("database runs.db is locked by another process")
    error.__cause__ = cause
    return error


def fail_once(repo: Repo, verb: str, monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Make ``repo``'s ``verb`` fail once, when the returned function has been called."""
    real, armed = getattr(repo, verb), [False]

    def failing(*args: object, **kwargs: object) -> object:
        if armed[0]:
            armed[0] = False
            raise locked()
        return real(*args, **kwargs)

    monkeypatch.setattr(repo, verb, failing)
    return lambda: armed.__setitem__(0, True)


@pytest.mark.parametrize("verb", ["metrics_since", "list_runs"])
def test_a_read_cut_short_by_the_database_loses_no_line(
    repo: Repo, monkeypatch: pytest.MonkeyPatch, verb: str
) -> None:
    # The claim was seen, then the points' query (or the progress line's forecast) failed:
    # "running on worker" was never said, and a put-back's line neither.
    (run_id,) = repo.enqueue([new_run(3)]).added_ids
    worker = repo.register_worker("gpu-box", 1234, "cuda:0")
    arm = fail_once(repo, verb, monkeypatch)

    def claim() -> None:
        repo.claim(worker)
        repo.heartbeat(worker, run_id=run_id)
        arm()

    def put_back() -> None:
        repo.requeue(run_id, worker)
        arm()

    def finish() -> None:
        repo.claim(worker)
        repo.finish(run_id, worker, FinalFigures(0.0512, None, 92.5, 3100.0, None, 64_000))

    code, lines = lines_of(
        repo, run_id, Story([claim, lambda: None, put_back, lambda: None, finish])
    )
    assert code == 0, lines
    assert lines.count(f"running on worker {worker}") == 1, lines
    assert "put back in the queue: its curve starts afresh when it trains again" in lines
    assert sum(line.startswith("database locked by another process") for line in lines) >= 1


def test_a_failed_run_ends_with_its_error_the_retry_and_status_1(repo: Repo) -> None:
    (run_id,) = repo.enqueue([new_run(3)]).added_ids
    worker = repo.register_worker("gpu-box", 1234, "cuda:0")
    repo.claim(worker)

    def fail() -> None:
        repo.fail(run_id, worker, "CUDA out of memory (tried to allocate 2.0 GiB)")

    code, lines = lines_of(repo, run_id, Story([fail]), db=" --db x.db")
    assert code == 1 and lines[-3] == "failed"
    assert lines[-2] == "error  CUDA out of memory (tried to allocate 2.0 GiB)"
    assert lines[-1].startswith("out of memory: retry once the device has room")
    assert lines[-1].endswith(
        f"resconv-tui retry {run_id} --db x.db retries it; "
        "resconv-tui retry --cause oom --db x.db retries every run that failed so."
    )


def test_a_run_put_back_starts_its_curve_afresh(repo: Repo) -> None:
    (run_id,) = repo.enqueue([new_run(3)]).added_ids
    worker = repo.register_worker("gpu-box", 1234, "cuda:0")
    repo.claim(worker)
    repo.add_metrics(run_id, curve(range(1, 12)), inputs_done=7040)

    def stop_worker() -> None:  # SIGTERM: the run goes back, its points with it
        repo.requeue(run_id, worker)

    def claim_again() -> None:
        repo.claim(worker)
        repo.add_metrics(run_id, [MetricPoint(1, 640, "val_loss", 0.3)], inputs_done=640)

    def cancel() -> None:
        repo.request_cancel([run_id])
        repo.mark_cancelled(run_id, worker)

    code, lines = lines_of(repo, run_id, Story([stop_worker, claim_again, cancel]))
    assert code == 1
    first_pass = [line for line in lines if line.startswith("validation pass at 6,400")]
    assert len(first_pass) == 1  # the first attempt's, said once
    back = lines.index("put back in the queue: its curve starts afresh when it trains again")
    assert lines[back + 1 :] == [
        "queued: waits for a worker",  # said again, as is its next claim
        f"running on worker {worker}",
        "validation pass at 640 inputs: val loss 0.300000",  # read from id 0 again
        f"cancelled (resconv-tui retry {run_id} queues it again)",
    ]


def test_a_removed_run_and_a_queue_without_workers(repo: Repo, db_url: str) -> None:
    (run_id,) = repo.enqueue([new_run(3)]).added_ids
    code, lines = lines_of(repo, run_id, Story([lambda: repo.remove([run_id])]), db=" --db q")
    assert code == 1
    assert lines == [
        "queued; no worker is running (start one: resconv-tui worker --db q)",
        f"run {run_id} was removed from the database",
    ]


def test_a_queued_run_says_when_a_worker_starts_and_when_the_last_one_stops(
    repo: Repo,
) -> None:
    # "no worker is running" stayed the last line while a worker started and trained the
    # runs ahead: read as if one had still to be started (a second one on a CPU box
    # slows both about tenfold).
    (run_id,) = repo.enqueue([new_run(3)]).added_ids
    workers: list[str] = []

    def start_worker() -> None:
        workers.append(repo.register_worker("gpu-box", 1234, "cuda:0"))

    def stop_worker() -> None:
        repo.update_worker(workers[0], state="stopped")

    story = Story([start_worker, lambda: None, stop_worker, lambda: repo.remove([run_id])])
    code, lines = lines_of(repo, run_id, story, db=" --db q")
    assert (code, lines) == (
        1,
        [
            "queued; no worker is running (start one: resconv-tui worker --db q)",
            "queued: waits for a worker",  # once, though read again
            "queued; no worker is running (start one: resconv-tui worker --db q)",
            f"run {run_id} was removed from the database",
        ],
    )


@pytest.mark.parametrize("rows", [1, 2])
def test_a_queue_whose_only_worker_rows_are_damaged_is_not_said_without_workers(
    repo: Repo, db_url: str, rows: int
) -> None:
    # A worker row edited by hand (a text pid) cannot be read, but its worker may well be
    # training: "no worker is running" was said all the same.
    (run_id,) = repo.enqueue([new_run(3)]).added_ids
    for pid in range(rows):
        worker = repo.register_worker("gpu-box", 1234 + pid, "cuda:0")
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:  # as an SQL client's
            conn.execute("UPDATE worker SET pid = 'abc' WHERE id = ?", (worker,))
    code, lines = lines_of(repo, run_id, Story([lambda: repo.remove([run_id])]), db=" --db q")
    damaged, it = (
        ("a worker row is damaged and could not be read, so a worker may be running", "it")
        if rows == 1
        else ("2 worker rows are damaged and could not be read, so workers may be running", "them")
    )
    assert (code, lines[0]) == (
        1,
        f"queued; {damaged} (resconv-tui status names {it}; if none is, start one: "
        "resconv-tui worker --db q)",
    )


def interrupt() -> None:
    raise KeyboardInterrupt


def test_ctrl_c_stops_following_and_a_queued_run_stays_queued(repo: Repo) -> None:
    # No worker runs: "(it goes on)" read as if the run trained.
    (run_id,) = repo.enqueue([new_run(3)]).added_ids
    code, lines = lines_of(repo, run_id, Story([interrupt]))
    assert code == 130 and lines[-1] == f"stopped following run {run_id} (it stays queued)"
    assert repo.get_run(run_id).status.value == "queued"


def test_ctrl_c_stops_following_and_a_running_run_goes_on(repo: Repo) -> None:
    (run_id,) = repo.enqueue([new_run(3)]).added_ids
    worker = repo.register_worker("gpu-box", 1234, "cuda:0")
    repo.claim(worker)
    code, lines = lines_of(repo, run_id, Story([interrupt]))
    assert code == 130 and lines[-1] == f"stopped following run {run_id} (it goes on)"
    assert repo.get_run(run_id).status.value == "running"


def test_on_a_terminal_the_progress_line_is_rewritten_in_place() -> None:
    out: list[str] = []
    terminal = Terminal(out.append, live=True)
    terminal.show("1 / 10 inputs", 0.0)
    terminal.show("1 / 10 inputs", 1.0)  # unchanged: not written again
    terminal.show("2 / 10 inputs", 2.0)
    terminal.say("validation pass")
    assert out == [
        "\r\x1b[2K1 / 10 inputs",
        "\r\x1b[2K2 / 10 inputs",
        "\r\x1b[2K",
        "validation pass\n",
    ]
    piped: list[str] = []
    terminal = Terminal(piped.append, live=False)
    for second in (0.0, 10.0, 29.0, 30.0):
        terminal.show(f"at {second}", second)
    assert piped == ["at 0.0\n", "at 30.0\n"]  # every PIPE_PROGRESS_S in a pipe


def test_show_follow_through_the_command(
    repo: Repo, db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (run_id,) = repo.enqueue([new_run(3)]).added_ids
    worker = repo.register_worker("gpu-box", 1234, "cuda:0")
    repo.claim(worker)

    def finish() -> None:
        repo.finish(run_id, worker, FinalFigures(0.0512, None, 92.5, 3100.0, None, 64_000))

    story = Story([finish])
    clocks = SimpleNamespace(sleep=story.sleep, time=time.time, monotonic=time.monotonic)
    monkeypatch.setattr(follow_module, "time", clocks)
    code = main(["show", str(run_id), "--follow", "--db", db_url])
    out = capsys.readouterr().out.splitlines()
    assert code == 0 and out[0] == f"Run {run_id}  l-3  (demo)  running"
    assert out[1] == f"running on worker {worker}" and out[-1].startswith("succeeded: ")


def test_a_run_in_its_final_pass_says_so_not_eta_0s(repo: Repo) -> None:
    # As the runs table: every input trained, its final validation pass, samples and
    # checkpoints take a while (70 s on a CPU) that nothing finished has told yet.
    (run_id,) = repo.enqueue([new_run(3)]).added_ids
    worker = repo.register_worker("gpu-box", 1234, "cuda:0")
    repo.claim(worker)
    repo.add_metrics(run_id, curve(range(1, 12)), inputs_done=7040)

    def validate() -> None:
        repo.heartbeat(worker, run_id=run_id, inputs_done=64_000)

    def finish() -> None:
        repo.finish(run_id, worker, FinalFigures(0.0512, None, 92.5, 3100.0, None, 64_000))

    out: list[str] = []
    story = Story([validate, finish])
    assert follow(repo, run_id, Terminal(out.append, live=True), sleep=story.sleep) == 0
    shown = [text.removeprefix("\r\x1b[2K") for text in out if text.startswith("\r\x1b[2K")]
    shown = [text for text in shown if text]  # the clears before a line that stays
    assert "ETA" in shown[0]
    assert shown[-1].startswith("64,000 / 64,000 inputs (100%)  train loss ")
    assert shown[-1].endswith("validating: its final pass, samples and checkpoints")


def test_a_run_in_its_final_pass_gives_the_forecasts_eta_as_ls_does(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Where the queue forecast knew the pass's length, it said "ETA 8s" without a word
    # of the pass, where ls says "validating: ...; ETA 8s".
    from resconv_tui.commands import ls

    (run_id,) = repo.enqueue([new_run(3)]).added_ids
    worker = repo.register_worker("gpu-box", 1234, "cuda:0")
    repo.claim(worker)
    repo.heartbeat(worker, run_id=run_id, inputs_done=64_000)
    monkeypatch.setattr(ls, "run_ends", lambda *_: {run_id: 8.0})
    line = Follower(repo, run_id).progress(repo.get_run(run_id), time.time())
    assert line.endswith("validating: its final pass, samples and checkpoints; ETA 8s")


def test_a_run_whose_worker_is_silent_says_so_not_an_eta(repo: Repo) -> None:
    # As ls and the runs table: a worker silent 30 s (another box lost, or paused) trains
    # nothing the ETA could count down; it read "ETA 1m02s", its pace frozen at the last beat.
    # A beat 11 minutes old at the first read is said at once: no two boxes' clocks are
    # that far apart (SURELY_LOST_AFTER_S); a younger one is watched first (below).
    (run_id,) = repo.enqueue([new_run(3)]).added_ids
    worker = repo.register_worker("gpu-box", 1234, "cuda:0")
    repo.claim(worker)
    repo.add_metrics(run_id, curve(range(1, 12)), inputs_done=7040)
    repo.heartbeat(worker, run_id=run_id)

    def finish() -> None:
        repo.finish(run_id, worker, FinalFigures(0.0512, None, 92.5, 3100.0, None, 64_000))

    out: list[str] = []
    later = time.time() + 700  # its last beat 700 s before the follower reads
    terminal = Terminal(out.append, live=False)
    assert follow(repo, run_id, terminal, sleep=Story([finish]).sleep, clock=lambda: later) == 0
    (progress,) = [line for line in "".join(out).splitlines() if "inputs (" in line]
    assert "ETA" not in progress, progress
    assert progress.endswith("silent 11m40s: no heartbeat from its worker (lost?)"), progress


def test_a_run_is_silent_once_its_beat_is_seen_unchanged_whatever_the_clocks(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On a shared queue a box whose clock is 40 s behind this one's writes beats that read
    # 40 s old here: `show --follow` said its live run "silent 40s: no heartbeat from its
    # worker (lost?)" at every poll while it trained. As the dashboard: silent once its
    # beat has read the same for STALE_AFTER_S (30 s) by the follower's monotonic clock.
    (run_id,) = repo.enqueue([new_run(3)]).added_ids
    worker = repo.register_worker("gpu-box", 1234, "cuda:0")
    repo.claim(worker)
    repo.add_metrics(run_id, curve(range(1, 12)), inputs_done=7040)
    repo.heartbeat(worker, run_id=run_id)
    watched = [0.0]  # the follower's monotonic clock: POLL_S a sleep

    def beat() -> None:  # the worker beats between two polls
        watched[0] += POLL_S
        repo.heartbeat(worker, run_id=run_id)

    def quiet() -> None:  # its box died: no beat
        watched[0] += POLL_S

    def finish() -> None:
        repo.finish(run_id, worker, FinalFigures(0.0512, None, 92.5, 3100.0, None, 64_000))

    out: list[str] = []
    story = Story([beat] * 20 + [quiet] * 16 + [finish])
    ahead = 40.0  # this box's clock, 40 s ahead of the worker's box's
    clocks = SimpleNamespace(
        sleep=story.sleep, time=lambda: time.time() + ahead, monotonic=lambda: watched[0]
    )
    monkeypatch.setattr(follow_module, "time", clocks)
    assert follow(repo, run_id, Terminal(out.append, live=True)) == 0
    shown = [text.removeprefix("\r\x1b[2K") for text in out if text.startswith("\r\x1b[2K")]
    progress = [text for text in shown if "inputs (" in text]
    assert progress and "ETA" in progress[0], progress
    # Beating 40 s behind: never silent. Then its beat read the same from the 20th poll
    # on: silent only at the read 32 s (16 polls) later, the first past the 30 s limit.
    silent = [text for text in progress if "silent" in text]
    assert len(silent) == 1, progress
    assert silent[0].endswith("  silent 32s: no heartbeat from its worker (lost?)"), progress


def test_a_queued_run_counts_a_worker_whose_box_is_behind_once_its_beat_is_seen_to_change(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The queued note judged workers by their beat's age on this box's clock: the only
    # worker, beating from a box whose clock is 150 s behind, read as offline, and a
    # queued run's follower said "no worker is running" while it trained the runs ahead.
    (run_id,) = repo.enqueue([new_run(3)]).added_ids
    worker = repo.register_worker("gpu-box", 1234, "cuda:0")
    watched = [0.0]  # the follower's monotonic clock: POLL_S a sleep

    def beat() -> None:
        watched[0] += POLL_S
        repo.heartbeat(worker)

    out: list[str] = []
    story = Story([beat, beat, lambda: repo.remove([run_id])])
    ahead = 150.0  # offline by age (past STALE_WITHIN_S); its beats change every poll
    clocks = SimpleNamespace(
        sleep=story.sleep, time=lambda: time.time() + ahead, monotonic=lambda: watched[0]
    )
    monkeypatch.setattr(follow_module, "time", clocks)
    assert follow(repo, run_id, Terminal(out.append, live=False), " --db q") == 1
    # At the first read nothing was watched yet: by age, as the dashboard's first poll.
    assert "".join(out).splitlines() == [
        "queued; no worker is running (start one: resconv-tui worker --db q)",
        "queued: waits for a worker",
        f"run {run_id} was removed from the database",
    ]
