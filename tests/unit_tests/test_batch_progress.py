"""The progress displays: plain lines every interval, or a live rich bar."""

import io
import re
import sys
import time

import pytest

from langchain_holysheep.batch._progress import (
    LiveProgress,
    PlainProgress,
    make_progress,
)
from langchain_holysheep.batch._summary import UsageCounter
from langchain_holysheep.batch._types import LineResult

LINE = re.compile(
    r"^batch: (\d+)/(\d+) \([\d.]+%\), [\d.]+ req/s, ETA \S+, "
    r"\$\d+\.\d{6}\*? spent, \d+ errors?$"
)


class TtyStringIO(io.StringIO):
    """A terminal, as far as anyone asking ``isatty()`` can tell."""

    def isatty(self):
        return True


def result(model="gpt-4.1", *, ok=True, cost=1_000_000, ms=12.0, priced=True):
    return LineResult(
        custom_id="x",
        line="{}\n",
        ok=ok,
        model=model,
        cost_nano=cost,
        priced=priced,
        input_tokens=3,
        output_tokens=4,
        latency_ms=ms,
        attempts=1,
    )


def wait_for(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("the progress display did not write in time")
        time.sleep(0.01)


def plain_lines(stream):
    return [
        line for line in stream.getvalue().splitlines() if line.startswith("batch:")
    ]


def test_plain_lines_come_every_interval_and_the_table_at_the_end():
    stream = io.StringIO()
    progress = make_progress(stream, interval=0.05)
    assert isinstance(progress, PlainProgress)
    counter = UsageCounter()
    progress.start(10, 2)
    assert plain_lines(stream) == [plain_lines(stream)[0]]  # one line at once
    for i, ms in enumerate((10.0, 20.0, 30.0)):
        res = result(ok=i != 1, ms=ms)
        counter.add(res)
        progress.advance(res)
    res = result("deepseek-v3.2", ms=5.0)
    counter.add(res)
    progress.advance(res)
    wait_for(lambda: len(plain_lines(stream)) >= 4)
    progress.finish(counter.summary())
    lines = plain_lines(stream)
    for line in lines:
        assert LINE.match(line), line
    assert lines[0].startswith("batch: 2/10 (20.0%)")
    assert lines[-1].startswith("batch: 6/10 (60.0%)")
    assert lines[-1].endswith("$0.004000 spent, 1 error")
    table = stream.getvalue().split(lines[-1] + "\n", 1)[1]
    assert "latency ms p50/p95/p99" in table
    (gpt,) = [row for row in table.splitlines() if row.startswith("gpt-4.1")]
    assert gpt.endswith("20/30/30")
    (deepseek,) = [row for row in table.splitlines() if row.startswith("deepseek")]
    assert deepseek.endswith("5/5/5")
    count = len(lines)
    time.sleep(0.2)
    assert len(plain_lines(stream)) == count  # finished: no more lines


def test_plain_lines_keep_coming_while_nothing_finishes():
    stream = io.StringIO()
    progress = PlainProgress(stream, interval=0.02)
    progress.start(3, 0)
    wait_for(lambda: len(plain_lines(stream)) >= 3)
    progress.finish(None)
    assert plain_lines(stream)[-1].startswith("batch: 0/3 (0.0%), 0.0 req/s, ETA -")
    assert "latency" not in stream.getvalue()  # no usage: no table


def test_unknown_costs_are_marked_in_the_line():
    stream = io.StringIO()
    progress = PlainProgress(stream, interval=60)
    progress.start(2, 0)
    progress.advance(result(cost=0, priced=False))
    progress.finish(None)
    assert plain_lines(stream)[-1].endswith("$0.000000* spent, 0 errors")


def test_a_terminal_gets_the_live_bar_with_the_table_at_the_end():
    stream = TtyStringIO()
    progress = make_progress(stream)
    assert isinstance(progress, LiveProgress)
    counter = UsageCounter()
    progress.start(3, 0)
    for model, ms in (("gpt-4.1", 8.0), ("gpt-4.1", 16.0), ("claude-sonnet-4.5", 4.0)):
        res = result(model, ms=ms)
        counter.add(res)
        progress.advance(res)
    progress.finish(counter.summary())
    out = stream.getvalue()
    assert "\x1b[" in out  # drawn for a terminal
    assert "3/3" in out
    assert "$0.003000 spent" in out
    assert "req/s" in out
    table = out.rsplit("model", 1)[1]
    assert "latency ms p50/p95/p99" in table
    assert re.search(r"^gpt-4\.1 .*8/16/16$", table, re.MULTILINE)
    assert re.search(r"^claude-sonnet-4\.5 .*4/4/4$", table, re.MULTILINE)


def test_live_false_gives_plain_lines_on_a_terminal():
    assert isinstance(make_progress(TtyStringIO(), live=False), PlainProgress)


def test_without_rich_a_terminal_gets_plain_lines_and_live_true_names_the_extra(
    monkeypatch,
):
    monkeypatch.setitem(sys.modules, "rich", None)
    monkeypatch.setitem(sys.modules, "rich.console", None)
    monkeypatch.setitem(sys.modules, "rich.progress", None)
    assert isinstance(make_progress(TtyStringIO()), PlainProgress)
    with pytest.raises(ImportError, match=r"langchain-holysheep\[progress\]"):
        make_progress(TtyStringIO(), live=True)


@pytest.mark.parametrize("interval", [0, -1, float("inf"), float("nan"), True, "5"])
def test_the_interval_must_be_seconds_above_zero(interval):
    with pytest.raises(ValueError, match="interval"):
        make_progress(io.StringIO(), interval=interval)


def test_the_default_stream_is_stderr_at_call_time(capsys):
    progress = make_progress(live=False, interval=60)
    progress.start(1, 0)
    progress.finish(None)
    assert capsys.readouterr().err.startswith("batch: 0/1")
