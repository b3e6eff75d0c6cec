"""Batch line formats: what an input line must be, what an output line is."""

import json
import pickle
from decimal import Decimal

import pytest

from langchain_holysheep.batch._format import (
    BatchInputError,
    error_line,
    line_custom_id,
    line_status,
    parse_line,
    success_line,
)
from langchain_holysheep.batch._types import BatchRequest
from langchain_holysheep.errors import HolySheepInputError

MESSAGES = [{"role": "user", "content": "Hi"}]


def line(**fields):
    return json.dumps(fields)


GOOD = line(
    custom_id="q1",
    method="POST",
    url="/v1/chat/completions",
    body={"model": "gpt-4o-mini", "messages": MESSAGES, "max_tokens": 5},
)


# ------------------------------------------------------------------ parse_line


def test_a_full_openai_batch_line_parses():
    request = parse_line(GOOD, 7)
    assert request == BatchRequest(
        custom_id="q1",
        body={"model": "gpt-4o-mini", "messages": MESSAGES, "max_tokens": 5},
        line_no=7,
    )


@pytest.mark.parametrize(
    "text",
    [
        line(custom_id="q", body={"messages": MESSAGES}),
        line(custom_id="q", url="/chat/completions", body={"messages": MESSAGES}),
        line(custom_id="q", method="post", body={"messages": MESSAGES}),
        line(custom_id="q", body={"messages": MESSAGES, "stream": False}),
        "  " + line(custom_id="q", body={"messages": MESSAGES}) + "  \r\n",
    ],
)
def test_method_url_and_stream_false_may_be_left_out_or_spelled_otherwise(text):
    assert parse_line(text, 1).custom_id == "q"


BAD_LINES = [
    ("not json", '{"custom_id": "q", "body": ', "not valid JSON"),
    ("half an object", GOOD[: len(GOOD) // 2], "not valid JSON"),
    ("NaN", '{"custom_id": "q", "body": {"messages": [], "t": NaN}}', "NaN"),
    ("a list", json.dumps([GOOD]), "expected a JSON object, got a list"),
    ("a string", json.dumps("q1"), "expected a JSON object, got a string"),
    ("no custom_id", line(body={"messages": MESSAGES}), 'no "custom_id"'),
    (
        "custom_id a number",
        line(custom_id=1, body={"messages": MESSAGES}),
        "non-empty string, got a number",
    ),
    (
        "custom_id empty",
        line(custom_id="", body={"messages": MESSAGES}),
        "non-empty string, got an empty string",
    ),
    ("no body", line(custom_id="q"), 'no "body"'),
    (
        "body a string",
        line(custom_id="q", body="hello"),
        '"body" must be a JSON object',
    ),
    (
        "body a list",
        line(custom_id="q", body=MESSAGES),
        '"body" must be a JSON object (the chat-completions request), got a list',
    ),
    ("messages missing", line(custom_id="q", body={"model": "m"}), 'no "messages"'),
    (
        "messages not a list",
        line(custom_id="q", body={"messages": "hi"}),
        '"body.messages" must be a list of messages, got a string',
    ),
    (
        "messages empty",
        line(custom_id="q", body={"messages": []}),
        '"body.messages" is empty',
    ),
    (
        "a message not an object",
        line(custom_id="q", body={"messages": [*MESSAGES, "hi"]}),
        '"body.messages[1]" must be an object',
    ),
    (
        "stream true",
        line(custom_id="q", body={"messages": MESSAGES, "stream": True}),
        '"body.stream" is True',
    ),
    (
        "model not a string",
        line(custom_id="q", body={"messages": MESSAGES, "model": 4}),
        '"body.model" must be a model id string',
    ),
    (
        "embeddings url",
        line(custom_id="q", url="/v1/embeddings", body={"messages": MESSAGES}),
        "holysheep batch sends chat completions only",
    ),
    (
        "responses url",
        line(custom_id="q", url="/v1/responses", body={"messages": MESSAGES}),
        "'/v1/responses' is not chat completions",
    ),
    (
        "GET",
        line(custom_id="q", method="GET", body={"messages": MESSAGES}),
        '"method" must be "POST", got \'GET\'',
    ),
    (
        "method not a string",
        line(custom_id="q", method=1, body={"messages": MESSAGES}),
        '"method" must be "POST"',
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [(text, expected) for _, text, expected in BAD_LINES],
    ids=[kind for kind, _, _ in BAD_LINES],
)
def test_every_malformed_line_is_refused_with_its_line_number(text, expected):
    with pytest.raises(BatchInputError) as caught:
        parse_line(text, 12)
    error = caught.value
    assert error.line_no == 12
    assert expected in error.message
    assert str(error).startswith("line 12: ")
    assert isinstance(error, HolySheepInputError)


def test_messages_say_what_to_do():
    with pytest.raises(BatchInputError, match='drop "stream" or set it to false'):
        parse_line(line(custom_id="q", body={"messages": MESSAGES, "stream": 1}), 1)
    with pytest.raises(BatchInputError, match="every line needs its own"):
        parse_line(line(body={"messages": MESSAGES}), 1)


def test_a_long_bad_value_is_shortened_in_the_message():
    with pytest.raises(BatchInputError) as caught:
        parse_line(line(custom_id="q", url="/x" * 500, body={"messages": MESSAGES}), 1)
    assert len(str(caught.value)) < 300


# ------------------------------------------------------------------ BatchInputError


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"line_no": 3, "path": "in.jsonl"}, "in.jsonl:3: bad"),
        ({"path": "in.jsonl"}, "in.jsonl: bad"),
        ({"line_no": 3}, "line 3: bad"),
        ({}, "bad"),
    ],
)
def test_the_error_names_the_file_and_line(kwargs, text):
    error = BatchInputError("bad", **kwargs)
    assert str(error) == text
    assert error.message == "bad"


def test_the_error_pickles_with_its_file_and_line():
    error = pickle.loads(pickle.dumps(BatchInputError("bad", line_no=2, path="f")))  # noqa: S301
    assert (str(error), error.line_no, error.path) == ("f:2: bad", 2, "f")


# ------------------------------------------------------------------ output lines

REQUEST = BatchRequest(custom_id="q1", body={"messages": MESSAGES}, line_no=1)
COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hé"}}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}
KEYS = ["id", "custom_id", "response", "error", "cost_usd", "model", "latency_ms",
        "attempts"]  # fmt: skip


def test_a_success_line_has_the_openai_batch_shape_and_our_fields():
    text = success_line(
        REQUEST,
        COMPLETION,
        request_id="req_9",
        model="gpt-4o-mini",
        cost_usd=Decimal("0.000012345"),
        latency_ms=81.23456,
        attempts=2,
    )
    assert text.endswith("\n")
    assert text.count("\n") == 1
    assert ", " not in text
    assert ": " not in text
    data = json.loads(text)
    assert list(data) == KEYS
    assert data["id"].startswith("batch_req_")
    assert len(data["id"]) == len("batch_req_") + 32
    int(data["id"].removeprefix("batch_req_"), 16)
    assert data["custom_id"] == "q1"
    assert data["response"] == {
        "status_code": 200,
        "request_id": "req_9",
        "body": COMPLETION,
    }
    assert data["error"] is None
    assert Decimal(str(data["cost_usd"])) == Decimal("0.000012345")
    assert data["model"] == "gpt-4o-mini"
    assert data["latency_ms"] == pytest.approx(81.235)
    assert data["attempts"] == 2


def test_every_line_gets_its_own_id():
    def one():
        return success_line(
            REQUEST, COMPLETION, request_id=None, model="m", cost_usd=None,
            latency_ms=1.0, attempts=1,
        )  # fmt: skip

    assert json.loads(one())["id"] != json.loads(one())["id"]


def test_an_unknown_cost_is_null():
    text = success_line(
        REQUEST, COMPLETION, request_id=None, model="m", cost_usd=None,
        latency_ms=1.0, attempts=1,
    )  # fmt: skip
    data = json.loads(text)
    assert data["cost_usd"] is None
    assert data["response"]["request_id"] is None


def test_an_error_line_with_the_gateways_answer():
    body = {"error": {"message": "slow down", "type": "rate_limit"}}
    text = error_line(
        REQUEST,
        code="rate_limit_exceeded",
        message="429 after 3 attempts",
        status_code=429,
        body=body,
        request_id="req_2",
        model="gpt-4o-mini",
        cost_usd=Decimal(0),
        latency_ms=5.0,
        attempts=3,
    )
    data = json.loads(text)
    assert list(data) == KEYS
    assert data["response"] == {"status_code": 429, "request_id": "req_2", "body": body}
    assert data["error"] == {
        "code": "rate_limit_exceeded",
        "message": "429 after 3 attempts",
    }
    assert data["cost_usd"] == 0
    assert data["attempts"] == 3


def test_an_error_line_without_an_answer_has_a_null_response():
    text = error_line(
        REQUEST, code="connection_error", message="refused", status_code=None,
        body=None, request_id=None, model=None, cost_usd=None, latency_ms=0.5,
        attempts=1,
    )  # fmt: skip
    data = json.loads(text)
    assert data["response"] is None
    assert data["error"] == {"code": "connection_error", "message": "refused"}
    assert data["model"] is None
    assert text.count("\n") == 1


def test_newlines_inside_values_stay_escaped_on_one_line():
    completion = {"choices": [{"message": {"content": "a\nb\u2028c\ud800"}}]}
    text = success_line(
        REQUEST, completion, request_id=None, model="m", cost_usd=None,
        latency_ms=1.0, attempts=1,
    )  # fmt: skip
    assert text.count("\n") == 1
    text.encode("utf-8")
    assert json.loads(text)["response"]["body"] == completion


# ------------------------------------------------------------------ line_custom_id


def test_the_custom_id_of_a_whole_output_line():
    text = error_line(
        REQUEST, code="x", message="y", status_code=None, body=None,
        request_id=None, model=None, cost_usd=None, latency_ms=0.0, attempts=0,
    )  # fmt: skip
    assert line_custom_id(text) == "q1"
    assert line_custom_id(text.rstrip("\n")) == "q1"
    assert line_status(text) == ("q1", False)
    ok = success_line(
        REQUEST, COMPLETION, request_id=None, model="m", cost_usd=None,
        latency_ms=1.0, attempts=1,
    )  # fmt: skip
    assert line_status(ok) == ("q1", True)


@pytest.mark.parametrize(
    "text",
    [
        "",
        '{"id":"batch_req_1","custom_id":"q1","respo',
        '{"id":"batch_req_1","custom_id":"q1"',
        '["q1"]',
        '{"custom_id": 5}',
        '{"custom_id": ""}',
        '{"id": "x"}',
    ],
)
def test_a_torn_or_foreign_line_has_no_custom_id(text):
    assert line_custom_id(text) is None
    assert line_status(text) is None


@pytest.mark.parametrize(
    ("cost", "text"),
    [
        (Decimal("0.000012345"), '"cost_usd":0.000012345,'),
        (Decimal("1E-9"), '"cost_usd":0.000000001,'),
        (Decimal("5.8e-5"), '"cost_usd":0.000058,'),
        (Decimal(0), '"cost_usd":0,'),
        (None, '"cost_usd":null,'),
    ],
)
def test_the_cost_is_written_exactly_in_plain_notation(cost, text):
    line = success_line(
        REQUEST, COMPLETION, request_id=None, model="m", cost_usd=cost,
        latency_ms=1.0, attempts=1,
    )  # fmt: skip
    assert text in line
    data = json.loads(line, parse_float=Decimal)
    assert data["cost_usd"] == cost
    assert list(data) == KEYS


@pytest.mark.parametrize("cost", [Decimal("NaN"), Decimal("Infinity")])
def test_a_cost_that_is_not_an_amount_is_a_bug(cost):
    with pytest.raises(ValueError, match="finite"):
        success_line(
            REQUEST, COMPLETION, request_id=None, model="m", cost_usd=cost,
            latency_ms=1.0, attempts=1,
        )  # fmt: skip
