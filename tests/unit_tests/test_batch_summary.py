"""The usage counter, its table and the run's one-line summary."""

import threading
from decimal import Decimal

import pytest

from langchain_holysheep.batch._summary import (
    BatchSummary,
    UsageCounter,
    usage_table,
)
from langchain_holysheep.batch._types import (
    EXIT_BUDGET,
    EXIT_OK,
    EXIT_SOME_FAILED,
    LineResult,
)


def result(model="gpt-4.1", *, ok=True, cost=1000, priced=True, ms=10.0, tokens=(5, 7)):
    return LineResult(
        custom_id="x",
        line="{}\n",
        ok=ok,
        model=model,
        cost_nano=cost,
        priced=priced,
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        latency_ms=ms,
        attempts=1,
    )


def test_the_counter_sums_requests_errors_tokens_and_exact_cost_per_model():
    counter = UsageCounter()
    for i in range(3):
        counter.add(result(cost=333_333_333, tokens=(10 + i, 20)))
    counter.add(result(ok=False, cost=0, tokens=(0, 0)))
    counter.add(result("deepseek-v3.2", cost=1))
    usage = counter.summary()
    assert (usage.requests, usage.errors) == (5, 1)
    assert usage.input_tokens == 10 + 11 + 12 + 5
    assert usage.output_tokens == 3 * 20 + 7
    assert usage.cost == Decimal("0.999999999") + Decimal("0.000000001")
    gpt = usage.by_model["gpt-4.1"]
    assert (gpt.requests, gpt.errors) == (4, 1)
    assert gpt.cost == Decimal("0.999999999")
    assert usage.by_model["deepseek-v3.2"].cost == Decimal("1E-9")
    assert usage.cost_is_complete


def test_latency_percentiles_per_model_use_the_nearest_rank():
    counter = UsageCounter()
    for ms in range(100, 0, -1):
        counter.add(result(ms=float(ms)))
    for ms in (1.0, 2.0, 3.0, 4.0):
        counter.add(result("claude-sonnet-4.5", ms=ms))
    usage = counter.summary()
    gpt = usage.by_model["gpt-4.1"].total_ms
    assert gpt is not None
    assert (gpt.p50, gpt.p95, gpt.p99) == (50.0, 95.0, 99.0)
    claude = usage.by_model["claude-sonnet-4.5"].total_ms
    assert claude is not None
    assert (claude.p50, claude.p95, claude.p99) == (2.0, 4.0, 4.0)
    table = counter.table()
    assert "latency ms p50/p95/p99" in table
    (gpt_row,) = [line for line in table.splitlines() if line.startswith("gpt-4.1")]
    assert gpt_row.endswith("50/95/99")
    (claude_row,) = [line for line in table.splitlines() if line.startswith("claude")]
    assert claude_row.endswith("2/4/4")
    assert table.splitlines()[-1].startswith("TOTAL")


def test_unknown_costs_are_counted_apart_never_as_zero():
    counter = UsageCounter()
    counter.add(result("mystery-model", cost=0, priced=False, tokens=(3, 4)))
    counter.add(result(cost=2_000))
    usage = counter.summary()
    assert usage.unpriced_requests == 1
    assert usage.unpriced_models == ("mystery-model",)
    assert usage.cost == Decimal("0.000002")
    table = usage_table(usage)
    (row,) = [line for line in table.splitlines() if line.startswith("mystery")]
    assert "n/a*" in row
    assert "1 answer(s) with no known cost" in table
    assert "3 input / 4 output tokens" in table
    assert "--price" in table


def test_a_line_with_no_model_goes_in_the_unknown_row():
    counter = UsageCounter()
    counter.add(result(None, ok=False, cost=0, tokens=(0, 0)))
    assert list(counter.summary().by_model) == ["unknown"]


def test_counting_from_many_threads_loses_nothing():
    counter = UsageCounter()

    def worker():
        for _ in range(500):
            counter.add(result(cost=1))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    usage = counter.summary()
    assert usage.requests == 2000
    assert usage.cost == Decimal("0.000002")
    assert usage.total_ms is not None
    assert usage.total_ms.count == 2000


def summary(**changes):
    values = {
        "total": 10,
        "already_done": 2,
        "succeeded": 8,
        "failed": 0,
        "unsent": 0,
        "spent_usd": Decimal("0.0123"),
        "budget_usd": None,
        "budget_stopped": False,
        "usage": UsageCounter().summary(),
        "elapsed_s": 3.25,
        "output_path": "out.jsonl",
    }
    return BatchSummary(**{**values, **changes})


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({}, EXIT_OK),
        ({"succeeded": 5, "failed": 3}, EXIT_SOME_FAILED),
        ({"succeeded": 4, "unsent": 4, "budget_stopped": True}, EXIT_BUDGET),
        (
            {"succeeded": 2, "failed": 2, "unsent": 4, "budget_stopped": True},
            EXIT_BUDGET,
        ),
    ],
)
def test_exit_status(changes, status):
    assert summary(**changes).exit_status == status


def test_the_message_of_a_finished_run():
    text = summary().message()
    assert text.startswith("holysheep batch: 10/10 requests answered")
    assert "2 of them before this run" in text
    assert "none failed" in text
    assert "$0.012300 spent in 3.2 s" in text
    assert "out.jsonl" in text
    assert "budget" not in text.lower()


def test_the_message_of_a_run_with_error_lines():
    text = summary(succeeded=5, failed=3).message()
    assert "3 failed" in text
    assert "3 error line(s) are in the output" in text


def test_the_message_of_a_run_the_budget_stopped_names_the_budget_and_the_spending():
    text = summary(
        succeeded=3,
        failed=1,
        unsent=4,
        budget_stopped=True,
        budget_usd=Decimal("0.013"),
        spent_usd=Decimal("0.0125"),
    ).message()
    assert "6/10 requests answered" in text
    assert "$0.012500 of the $0.013000 budget spent" in text
    assert "Stopped by the budget: 4 request(s) not sent" in text
    assert "--budget-usd" in text
    assert "run the same command again" in text.lower()
