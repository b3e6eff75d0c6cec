"""The bulk-run engine against the offline gateway, over real HTTP."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
from pydantic import SecretStr

from langchain_holysheep.batch._budget import LocalBudget
from langchain_holysheep.batch._engine import BatchSettings, arun_requests
from langchain_holysheep.batch._format import BatchInputError
from langchain_holysheep.batch._types import BatchRequest, nano_to_usd, usd_to_nano
from langchain_holysheep.fallback import reset_circuit_breakers
from langchain_holysheep.testing import Fault, RateLimits, Reply

KEY = "sk-batch-engine-secret-0123456789"


@pytest.fixture(autouse=True)
def _fresh_breakers():
    reset_circuit_breakers()
    yield
    reset_circuit_breakers()


def _requests(n, model="gpt-4.1", **body):
    for i in range(n):
        yield BatchRequest(
            custom_id=f"r{i}",
            body={
                "model": model,
                "messages": [{"role": "user", "content": f"question {i}"}],
                **body,
            },
            line_no=i + 1,
        )


def _settings(gw, **kwargs):
    kwargs.setdefault("retry_backoff", 0.01)
    return BatchSettings(base_url=gw.base_url, api_key=SecretStr(KEY), **kwargs)


async def _run(gw, requests, *, budget=None, **kwargs):
    results = []
    stats = await arun_requests(
        requests, _settings(gw, **kwargs), on_result=results.append, budget=budget
    )
    return stats, results


def _chat_requests(gw):
    return [r for r in gw.requests if r.path.endswith("/chat/completions")]


async def test_every_request_is_answered_once_with_the_gateways_completion(
    holysheep_gateway,
):
    stats, results = await _run(holysheep_gateway, _requests(25), concurrency=4)
    assert stats.written == 25
    assert stats.sent == 25
    assert not stats.budget_stopped
    assert sorted(r.custom_id for r in results) == sorted(f"r{i}" for i in range(25))
    sent_ids = [
        r.body["messages"][0]["content"] for r in _chat_requests(holysheep_gateway)
    ]
    assert sorted(sent_ids) == sorted(f"question {i}" for i in range(25))
    for result in results:
        line = json.loads(result.line)
        assert result.line.endswith("\n")
        assert result.line.count("\n") == 1
        assert result.ok
        assert line["custom_id"] == result.custom_id
        assert line["error"] is None
        body = line["response"]["body"]
        assert line["response"]["status_code"] == 200
        assert body["object"] == "chat.completion"
        number = result.custom_id.removeprefix("r")
        assert body["choices"][0]["message"]["content"].endswith(f"question {number}")
        assert line["model"] == "gpt-4.1"
        assert line["attempts"] == 1
        assert result.input_tokens == body["usage"]["prompt_tokens"] > 0
        assert result.output_tokens == body["usage"]["completion_tokens"] > 0
        assert result.priced
        assert result.cost_nano > 0
        assert Decimal(str(line["cost_usd"])) == nano_to_usd(result.cost_nano)
        assert KEY not in result.line
    # Each line carries the id the gateway gave its answer (its x-request-id).
    request_ids = [json.loads(r.line)["response"]["request_id"] for r in results]
    assert all(rid.startswith("req_offline_") for rid in request_ids)
    assert len(set(request_ids)) == 25


async def test_requests_are_taken_from_the_iterator_only_as_slots_free_up(
    holysheep_gateway,
):
    holysheep_gateway.set_default(Reply(content="ok", delay_before_headers=0.02))
    pulled = 0
    seen_in_flight = []

    def counted():
        nonlocal pulled
        for request in _requests(40):
            pulled += 1
            yield request

    def on_result(result):
        seen_in_flight.append(pulled - len(seen_in_flight))

    await arun_requests(
        counted(), _settings(holysheep_gateway, concurrency=5), on_result=on_result
    )
    assert len(seen_in_flight) == 40
    # At most `concurrency` requests were taken and not yet finished.
    assert max(seen_in_flight) <= 5
    assert max(seen_in_flight) >= 2


@pytest.mark.parametrize(
    ("status", "message", "code"),
    [
        (400, "messages[0].content is invalid", "invalid_request_error"),
        (404, "model 'gone' not found", "model_not_found"),
    ],
)
async def test_a_final_error_is_an_error_line_at_once_and_the_run_goes_on(
    holysheep_gateway, status, message, code
):
    # No fallback model: a 404 has nowhere to fall over to, so it is final too.
    holysheep_gateway.enqueue(Fault(status=status, message=message), model="bad-model")
    requests = [
        *_requests(3),
        BatchRequest(
            "bad",
            {"model": "bad-model", "messages": [{"role": "user", "content": "x"}]},
            4,
        ),
    ]
    stats, results = await _run(holysheep_gateway, requests, retries=3)
    by_id = {r.custom_id: r for r in results}
    assert stats.written == 4
    bad = json.loads(by_id["bad"].line)
    assert not by_id["bad"].ok
    assert bad["response"]["status_code"] == status
    assert message in bad["error"]["message"]
    assert bad["error"]["code"] == code
    assert bad["attempts"] == 1  # never retried
    assert all(by_id[f"r{i}"].ok for i in range(3))
    sent = [r.body["model"] for r in _chat_requests(holysheep_gateway)]
    assert sent.count("bad-model") == 1


async def test_a_model_that_is_not_served_falls_over_to_the_next(holysheep_gateway):
    holysheep_gateway.enqueue(
        Fault(status=404, message="model 'gone' not found", repeat=2), model="gone"
    )
    _, results = await _run(
        holysheep_gateway,
        _requests(2, model="gone"),
        fallbacks=("gpt-4.1-mini",),
        concurrency=1,
    )
    for result in results:
        line = json.loads(result.line)
        assert result.ok
        assert line["model"] == "gpt-4.1-mini"
        assert line["attempts"] == 2
    models = [r.body["model"] for r in _chat_requests(holysheep_gateway)]
    assert models == ["gone", "gpt-4.1-mini", "gone", "gpt-4.1-mini"]


async def test_a_429_is_retried_after_its_retry_after(holysheep_gateway):
    holysheep_gateway.enqueue(
        Fault(status=429, message="slow down", headers={"Retry-After": "0.3"})
    )
    started = time.monotonic()
    _, results = await _run(holysheep_gateway, _requests(1), retries=2)
    waited = time.monotonic() - started
    (result,) = results
    assert result.ok
    assert result.attempts == 2
    assert len(_chat_requests(holysheep_gateway)) == 2
    assert waited >= 0.25  # the server's Retry-After, not the 0.01 s backoff


async def test_retries_exhausted_write_the_last_error(holysheep_gateway):
    holysheep_gateway.set_default(Fault(status=503, message="upstream is down"))
    _, results = await _run(holysheep_gateway, _requests(1), retries=2)
    (result,) = results
    line = json.loads(result.line)
    assert not result.ok
    assert line["attempts"] == 3
    assert line["error"]["code"] == "server_error"
    assert "upstream is down" in line["error"]["message"]
    assert line["response"]["status_code"] == 503
    assert len(_chat_requests(holysheep_gateway)) == 3


async def test_an_empty_answer_is_retried_and_a_refusal_is_final(holysheep_gateway):
    holysheep_gateway.enqueue(Reply(content=""), Reply(content="second try"))
    holysheep_gateway.enqueue(Reply(refusal="I can't help with that."), model="claude")
    requests = [
        *_requests(1),
        BatchRequest(
            "refused",
            {"model": "claude", "messages": [{"role": "user", "content": "x"}]},
            2,
        ),
    ]
    _, results = await _run(holysheep_gateway, requests, retries=1, concurrency=1)
    by_id = {r.custom_id: r for r in results}
    retried = json.loads(by_id["r0"].line)
    assert by_id["r0"].ok
    assert retried["attempts"] == 2
    assert retried["response"]["body"]["choices"][0]["message"]["content"] == (
        "second try"
    )
    # The empty answer was billed too: the line's cost covers both answers.
    assert by_id["r0"].cost_nano > 0
    refused = json.loads(by_id["refused"].line)
    assert not by_id["refused"].ok
    assert refused["error"]["code"] == "refusal"
    assert "can't help" in refused["error"]["message"]
    assert refused["response"]["status_code"] == 200
    assert refused["attempts"] == 1


async def test_an_error_object_sent_with_a_200_is_an_error_not_an_answer(
    holysheep_gateway,
):
    holysheep_gateway.enqueue(
        Fault(status=200, message="context too long for this model", code="bad_thing")
    )
    _, results = await _run(holysheep_gateway, _requests(1), retries=0)
    (result,) = results
    line = json.loads(result.line)
    assert not result.ok
    assert "context too long for this model" in line["error"]["message"]


async def test_the_budget_stops_the_run_and_is_never_exceeded(holysheep_gateway):
    limit = usd_to_nano("0.02")
    budget = LocalBudget(limit)
    stats, results = await _run(
        holysheep_gateway,
        _requests(500, max_tokens=200),
        budget=budget,
        concurrency=8,
        budget_usd=Decimal("0.02"),
    )
    assert stats.budget_stopped
    assert 0 < stats.written < 500
    spent = await budget.spent_nano()
    assert spent <= limit
    assert spent == sum(r.cost_nano for r in results)
    # Only what was reserved was sent: nothing in flight was dropped.
    assert stats.sent == stats.written == len(_chat_requests(holysheep_gateway))


async def test_a_line_without_a_model_is_an_error_line(holysheep_gateway):
    request = BatchRequest(
        "nomodel", {"messages": [{"role": "user", "content": "x"}]}, 1
    )
    _, results = await _run(holysheep_gateway, [request])
    (result,) = results
    assert not result.ok
    assert "names no model" in json.loads(result.line)["error"]["message"]
    assert _chat_requests(holysheep_gateway) == []


def test_settings_refuse_what_a_run_cannot_keep_to():
    with pytest.raises(BatchInputError, match="concurrency"):
        BatchSettings(concurrency=0)
    with pytest.raises(BatchInputError, match="retries"):
        BatchSettings(retries=-1)
    with pytest.raises(BatchInputError, match="budget_usd"):
        BatchSettings(budget_usd=Decimal(0))
    with pytest.raises(BatchInputError, match="timeout"):
        BatchSettings(timeout=0)
    with pytest.raises(BatchInputError, match="Model ids"):
        BatchSettings(fallbacks=("",))
    settings = BatchSettings(model="a", fallbacks=("b", "a", "c"))
    assert settings.models_for({}) == ["a", "b", "c"]
    assert settings.models_for({"model": "c"}) == ["c", "b", "a"]
    assert "secret" not in repr(BatchSettings(api_key=SecretStr("secret")))


async def test_the_gateways_rate_limit_is_kept_with_no_429(holysheep_gateway):
    holysheep_gateway.set_rate_limits(RateLimits(requests=20, window=2.0))
    # 90% of the gateway's 600 requests a minute.
    stats, results = await _run(
        holysheep_gateway, _requests(30), concurrency=16, requests_per_minute=540
    )
    decisions = holysheep_gateway.rate_limit_log
    assert stats.written == 30
    assert all(r.ok for r in results)
    assert len(decisions) == 30
    assert [d for d in decisions if not d.admitted] == []


async def test_without_a_limit_the_same_run_is_refused(holysheep_gateway):
    # The control for the test above: the gateway does refuse a run it cannot take.
    holysheep_gateway.set_rate_limits(RateLimits(requests=20, window=2.0))
    await _run(holysheep_gateway, _requests(30), concurrency=16, retries=0)
    assert [d for d in holysheep_gateway.rate_limit_log if not d.admitted]
