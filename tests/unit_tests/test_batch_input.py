"""Batch input files and the output checkpoint, on real files."""

import json
import logging
import os
import sys
import tracemalloc

import pytest

from langchain_holysheep.batch import _input
from langchain_holysheep.batch._checkpoint import (
    Checkpoint,
    OutputWriter,
    read_checkpoint,
    read_done,
)
from langchain_holysheep.batch._format import BatchInputError, error_line, success_line
from langchain_holysheep.batch._input import check_paths, iter_requests, validate_input
from langchain_holysheep.batch._types import BatchRequest

MESSAGES = [{"role": "user", "content": "Hi"}]
CHECKPOINT_LOGGER = "langchain_holysheep.batch._checkpoint"


def request_line(custom_id, **body):
    return json.dumps({"custom_id": custom_id, "body": {"messages": MESSAGES, **body}})


def write_lines(path, lines, *, end="\n"):
    path.write_text("\n".join(lines) + end, encoding="utf-8")
    return path


def output_line(custom_id, *, ok=True):
    request = BatchRequest(custom_id=custom_id, body={"messages": MESSAGES}, line_no=1)
    if ok:
        return success_line(
            request, {"choices": []}, request_id=None, model="m", cost_usd=None,
            latency_ms=1.0, attempts=1,
        )  # fmt: skip
    return error_line(
        request, code="server_error", message="500", status_code=500, body=None,
        request_id=None, model="m", cost_usd=None, latency_ms=1.0, attempts=3,
    )  # fmt: skip


# ------------------------------------------------------------------ check_paths


def test_good_paths_pass(tmp_path):
    source = write_lines(tmp_path / "in.jsonl", [request_line("a")])
    check_paths(source, tmp_path / "out.jsonl")
    (tmp_path / "old.jsonl").write_text("")
    check_paths(str(source), str(tmp_path / "old.jsonl"))


def test_a_missing_input_is_refused(tmp_path):
    with pytest.raises(BatchInputError, match="does not exist") as caught:
        check_paths(tmp_path / "nope.jsonl", tmp_path / "out.jsonl")
    assert caught.value.path == str(tmp_path / "nope.jsonl")


def test_a_directory_as_input_is_refused(tmp_path):
    with pytest.raises(BatchInputError, match="not a file"):
        check_paths(tmp_path, tmp_path / "out.jsonl")


@pytest.mark.skipif(
    sys.platform == "win32" or os.geteuid() == 0, reason="root reads anything"
)
def test_an_unreadable_input_is_refused(tmp_path):
    source = write_lines(tmp_path / "in.jsonl", [request_line("a")])
    source.chmod(0)
    try:
        with pytest.raises(BatchInputError, match="cannot read the input"):
            check_paths(source, tmp_path / "out.jsonl")
    finally:
        source.chmod(0o600)


def test_output_equal_to_input_is_refused(tmp_path):
    source = write_lines(tmp_path / "in.jsonl", [request_line("a")])
    with pytest.raises(BatchInputError, match="the output is the input file"):
        check_paths(source, source)
    with pytest.raises(BatchInputError, match="the output is the input file"):
        check_paths(source, tmp_path / "." / "in.jsonl")


def test_output_linked_to_the_input_is_refused(tmp_path):
    source = write_lines(tmp_path / "in.jsonl", [request_line("a")])
    link = tmp_path / "link.jsonl"
    link.symlink_to(source)
    with pytest.raises(BatchInputError, match="the output is the input file"):
        check_paths(source, link)


def test_output_directory_missing_is_refused(tmp_path):
    source = write_lines(tmp_path / "in.jsonl", [request_line("a")])
    target = tmp_path / "no" / "such" / "out.jsonl"
    with pytest.raises(BatchInputError, match="does not exist: create it first"):
        check_paths(source, target)
    assert not (tmp_path / "no").exists()


def test_a_directory_as_output_is_refused(tmp_path):
    source = write_lines(tmp_path / "in.jsonl", [request_line("a")])
    with pytest.raises(BatchInputError, match="the output is not a file"):
        check_paths(source, tmp_path)


@pytest.mark.skipif(
    sys.platform == "win32" or os.geteuid() == 0, reason="root writes anything"
)
def test_an_unwritable_output_directory_is_refused(tmp_path):
    source = write_lines(tmp_path / "in.jsonl", [request_line("a")])
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(BatchInputError, match="is not writable"):
            check_paths(source, locked / "out.jsonl")
    finally:
        locked.chmod(0o700)


# ------------------------------------------------------------------ validate_input


def test_validate_counts_requests_and_skips_blank_lines(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(
        "\ufeff" + request_line("a") + "\n\n   \n" + request_line("b") + "\r\n"
        + request_line("c"),  # no newline at the end of the input is fine
        encoding="utf-8",
    )  # fmt: skip
    assert validate_input(source) == 3
    assert [(r.custom_id, r.line_no) for r in iter_requests(source)] == [
        ("a", 1),
        ("b", 4),
        ("c", 5),
    ]


def test_an_empty_input_has_no_requests(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text("\n\n")
    assert validate_input(source) == 0
    assert list(iter_requests(source)) == []


MALFORMED = {
    "not JSON": "{not json",
    "not an object": "[1, 2]",
    "no custom_id": json.dumps({"body": {"messages": MESSAGES}}),
    "body not an object": json.dumps({"custom_id": "x", "body": "hi"}),
    "messages missing": json.dumps({"custom_id": "x", "body": {"model": "m"}}),
    "messages not a list": json.dumps({"custom_id": "x", "body": {"messages": {}}}),
    "messages empty": json.dumps({"custom_id": "x", "body": {"messages": []}}),
    "stream true": request_line("x", stream=True),
    "other url": json.dumps(
        {"custom_id": "x", "url": "/v1/embeddings", "body": {"messages": MESSAGES}}
    ),
    "bad method": json.dumps(
        {"custom_id": "x", "method": "PUT", "body": {"messages": MESSAGES}}
    ),
}


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_a_malformed_line_is_refused_with_the_file_and_line(tmp_path, kind):
    source = write_lines(
        tmp_path / "in.jsonl",
        [request_line("a"), "", request_line("b"), MALFORMED[kind], request_line("c")],
    )
    with pytest.raises(BatchInputError) as caught:
        validate_input(source)
    assert caught.value.line_no == 4
    assert caught.value.path == str(source)
    assert str(caught.value).startswith(f"{source}:4: ")


def test_a_line_that_is_not_utf8_is_refused(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_bytes(request_line("a").encode() + b"\n" + b'{"custom_id": "\xff"}\n')
    with pytest.raises(BatchInputError, match="not UTF-8") as caught:
        validate_input(source)
    assert caught.value.line_no == 2


def test_a_duplicate_custom_id_names_both_lines(tmp_path):
    source = write_lines(
        tmp_path / "in.jsonl",
        [request_line("z"), request_line("y"), request_line("a"), "",
         request_line("b"), request_line("a")],
    )  # fmt: skip
    with pytest.raises(BatchInputError) as caught:
        validate_input(source)
    assert caught.value.line_no == 6
    assert caught.value.message == (
        "custom_id 'a' already used on line 3: every line needs its own custom_id"
    )


def test_ids_differing_in_case_or_space_are_distinct(tmp_path):
    source = write_lines(
        tmp_path / "in.jsonl",
        [request_line("a"), request_line("A"), request_line("a ")],
    )
    assert validate_input(source) == 3


def test_a_digest_collision_is_not_a_duplicate(tmp_path, monkeypatch):
    # Force every id onto one digest: only real duplicates may be refused.
    monkeypatch.setattr(_input, "_digest", lambda _custom_id: b"\0" * 8)
    ids = ["a", "b", "c", "d"]
    source = write_lines(tmp_path / "in.jsonl", [request_line(i) for i in ids])
    assert validate_input(source) == 4
    write_lines(source, [*(request_line(i) for i in ids), request_line("c")])
    with pytest.raises(BatchInputError, match="'c' already used on line 3") as caught:
        validate_input(source)
    assert caught.value.line_no == 5


def test_validation_streams_in_bounded_memory(tmp_path):
    # 20,000 lines of 2.5 kB each (50 MB, long ids): the pass must hold
    # neither the file nor the ids, only an 8-byte digest per line.
    count, padding = 20_000, "x" * 2_000
    source = tmp_path / "big.jsonl"
    with source.open("w", encoding="utf-8") as file:
        for n in range(count):
            custom_id = f"{n:06d}-" + "i" * 500
            file.write(request_line(custom_id, user=padding) + "\n")
    file_size = source.stat().st_size
    tracemalloc.start()
    try:
        assert validate_input(source) == count
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < file_size / 10
    assert peak < count * 500 / 2  # less than half of the ids' own text


def test_iter_requests_skips_what_is_done(tmp_path):
    source = write_lines(tmp_path / "in.jsonl", [request_line(i) for i in "abcde"])
    requests = list(iter_requests(source, skip={"b", "d"}))
    assert [r.custom_id for r in requests] == ["a", "c", "e"]
    assert requests[1] == BatchRequest(
        custom_id="c", body={"messages": MESSAGES}, line_no=3
    )


def test_iter_requests_refuses_a_line_broken_since_validation(tmp_path):
    source = write_lines(tmp_path / "in.jsonl", [request_line("a"), "oops"])
    requests = iter_requests(source)
    assert next(requests).custom_id == "a"
    with pytest.raises(BatchInputError, match="not valid JSON") as caught:
        next(requests)
    assert caught.value.line_no == 2


# ------------------------------------------------------------------ read_done


def test_a_missing_output_has_nothing_done(tmp_path):
    assert read_done(tmp_path / "out.jsonl") == set()
    assert read_checkpoint(tmp_path / "out.jsonl") == Checkpoint(set(), set())
    assert not (tmp_path / "out.jsonl").exists()


def test_the_checkpoint_tells_the_error_lines_apart(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_text(
        output_line("a") + output_line("b", ok=False) + output_line("c", ok=False)
        + output_line("c")  # answered on a later run
        + output_line("d", ok=False)[:20],  # torn: not done, not failed
    )  # fmt: skip
    assert read_checkpoint(target) == Checkpoint({"a", "b", "c"}, {"b"})


def test_success_and_error_lines_both_count_as_done(tmp_path, caplog):
    target = tmp_path / "out.jsonl"
    target.write_text(output_line("a") + output_line("b", ok=False) + output_line("c"))
    before = target.read_bytes()
    with caplog.at_level(logging.WARNING, logger=CHECKPOINT_LOGGER):
        assert read_done(target) == {"a", "b", "c"}
    assert target.read_bytes() == before
    assert caplog.records == []


@pytest.mark.parametrize(
    "torn",
    [
        pytest.param(lambda text: text[: len(text) // 2], id="half an object"),
        pytest.param(lambda text: text[:1], id="one byte"),
        pytest.param(lambda text: text[:-3] + "\n", id="a cut object and a newline"),
        pytest.param(lambda _text: "\udcff\n", id="not text"),
    ],
)
def test_a_torn_last_line_is_cut_and_warned(tmp_path, caplog, torn):
    target = tmp_path / "out.jsonl"
    whole = output_line("a") + output_line("b")
    text = torn(output_line("c"))
    target.write_bytes(whole.encode() + text.encode("utf-8", "surrogateescape"))
    with caplog.at_level(logging.WARNING, logger=CHECKPOINT_LOGGER):
        assert read_done(target) == {"a", "b"}
    assert target.read_text() == whole
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert f"{target}:3: cut a torn last line" in record.getMessage()
    assert "sent again" in record.getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=CHECKPOINT_LOGGER):
        assert read_done(target) == {"a", "b"}
    assert caplog.records == []


def test_a_whole_last_line_without_its_newline_is_kept(tmp_path, caplog):
    target = tmp_path / "out.jsonl"
    text = output_line("a") + output_line("b").rstrip("\n")
    target.write_text(text)
    with caplog.at_level(logging.WARNING, logger=CHECKPOINT_LOGGER):
        assert read_done(target) == {"a", "b"}
    assert target.read_text() == text + "\n"
    [record] = caplog.records
    assert "no newline" in record.getMessage()
    with OutputWriter(target) as writer:
        writer.write(output_line("c"))
    assert read_done(target) == {"a", "b", "c"}


def test_only_a_torn_line_leaves_an_empty_file(tmp_path, caplog):
    target = tmp_path / "out.jsonl"
    target.write_text('{"id":"batch_req_1","cus')
    with caplog.at_level(logging.WARNING, logger=CHECKPOINT_LOGGER):
        assert read_done(target) == set()
    assert target.read_bytes() == b""
    assert len(caplog.records) == 1


def test_a_bad_line_before_the_last_is_refused_and_nothing_cut(tmp_path):
    target = tmp_path / "out.jsonl"
    text = output_line("a") + "not a result\n" + output_line("b")
    target.write_text(text)
    with pytest.raises(BatchInputError, match="not a result line") as caught:
        read_done(target)
    assert caught.value.line_no == 2
    assert target.read_text() == text


def test_blank_lines_in_the_output_are_skipped(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_text(output_line("a") + "\n" + output_line("b"))
    assert read_done(target) == {"a", "b"}


# ------------------------------------------------------------------ OutputWriter


def test_the_writer_appends_whole_lines(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_text(output_line("a"))
    with OutputWriter(target) as writer:
        assert writer.path == str(target)
        writer.write(output_line("b"))
        # Unbuffered: on the file before close.
        assert read_done(target) == {"a", "b"}
        writer.write(output_line("c"))
    assert read_done(target) == {"a", "b", "c"}
    assert target.read_text().count("\n") == 3


def test_the_writer_creates_the_file(tmp_path):
    target = tmp_path / "new.jsonl"
    writer = OutputWriter(target)
    writer.write(output_line("a"))
    writer.close()
    writer.close()
    assert read_done(target) == {"a"}


@pytest.mark.parametrize("line", ["no newline", "two\nlines\n", ""])
def test_the_writer_takes_one_line_only(tmp_path, line):
    with OutputWriter(tmp_path / "out.jsonl") as writer, pytest.raises(ValueError):
        writer.write(line)


def test_a_closed_writer_refuses(tmp_path):
    writer = OutputWriter(tmp_path / "out.jsonl")
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.write(output_line("a"))
