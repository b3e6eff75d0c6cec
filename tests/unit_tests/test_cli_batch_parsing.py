"""``holysheep batch`` arguments: the help, and bad arguments exit 2, nothing sent."""

import argparse
import json
import re
from decimal import Decimal

import pytest

from langchain_holysheep.cli import build_parser, main
from langchain_holysheep.cli.batch import _prices
from langchain_holysheep.pricing import load_price_table

FLAGS = [
    "--output",
    "--model",
    "--fallbacks",
    "--concurrency",
    "--retries",
    "--requests-per-minute",
    "--tokens-per-minute",
    "--redis-url",
    "--namespace",
    "--budget-usd",
    "--prices",
    "--price",
    "--ray",
    "--ray-address",
    "--ray-workers",
    "--quiet",
    "--offline",
    "--base-url",
    "--timeout",
]


def batch_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["batch", "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def option_paragraphs(text):
    """``{flag: its help text}`` from an argparse help page."""
    paragraphs = {}
    current = None
    for line in text.splitlines():
        match = re.match(r"^  (-\w( \S+)?, )?(--[a-z-]+)", line)
        if match:
            current = match.group(3)
            paragraphs[current] = line
        elif current and line.startswith("    "):
            paragraphs[current] += " " + line.strip()
        else:
            current = None
    return {flag: " ".join(text.split()) for flag, text in paragraphs.items()}


def test_help_explains_every_flag_with_its_default(capsys):
    text = batch_help(capsys)
    assert text.startswith("usage: holysheep batch")
    paragraphs = option_paragraphs(text)
    assert sorted(paragraphs) == sorted([*FLAGS, "--help"])
    for flag in FLAGS:
        if flag == "--output":  # required
            continue
        assert "default" in paragraphs[flag], flag
    assert "(default: 16)" in paragraphs["--concurrency"]
    assert "(default: 3)" in paragraphs["--retries"]
    assert "USD per 1M input and output tokens" in paragraphs["--price"]
    for status in ("0 every line answered", "1 some lines", "2 bad input", "3 the"):
        assert status in " ".join(text.split())


def test_batch_is_listed_in_the_main_help(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "batch" in capsys.readouterr().out


def test_good_arguments_parse_with_their_defaults():
    args = build_parser().parse_args(["batch", "in.jsonl", "-o", "out.jsonl"])
    assert (args.input, args.output) == ("in.jsonl", "out.jsonl")
    assert args.model is None
    assert args.fallbacks == ()
    assert (args.concurrency, args.retries) == (16, 3)
    assert args.requests_per_minute is None
    assert args.tokens_per_minute is None
    assert args.redis_url is None
    assert args.namespace == "batch"
    assert args.budget_usd is None
    assert (args.prices, args.price) == (None, [])
    assert (args.ray, args.ray_address, args.quiet) == (False, None, False)
    assert args.ray_workers is None
    assert (args.offline, args.base_url, args.timeout) == (False, None, 60.0)


def test_every_option_parses():
    args = build_parser().parse_args(
        [
            "batch", "in.jsonl", "--output", "out.jsonl", "--model", "gpt-4o-mini",
            "--fallbacks", "claude-haiku-4-5, deepseek-chat", "--concurrency", "64",
            "--retries", "0", "--requests-per-minute", "600",
            "--tokens-per-minute", "90000", "--redis-url", "redis://127.0.0.1:6379/0",
            "--namespace", "nightly", "--budget-usd", "12.50", "--prices", "p.json",
            "--price", "my-model=0.15,0.60", "--price", "other=1,2.5", "--ray",
            "--ray-address", "auto", "--ray-workers", "3", "--quiet",
            "--timeout", "30",
        ]
    )  # fmt: skip
    assert args.fallbacks == ("claude-haiku-4-5", "deepseek-chat")
    assert (args.concurrency, args.retries) == (64, 0)
    assert args.budget_usd == Decimal("12.50")
    assert args.price == [
        ("my-model", Decimal("0.15"), Decimal("0.60")),
        ("other", Decimal(1), Decimal("2.5")),
    ]
    assert (args.ray, args.ray_address, args.quiet) == (True, "auto", True)
    assert args.ray_workers == 3


def test_the_redis_url_defaults_to_the_environment(monkeypatch):
    monkeypatch.setenv("HOLYSHEEP_REDIS_URL", "redis://127.0.0.1:6379/3")
    args = build_parser().parse_args(["batch", "in.jsonl", "-o", "out.jsonl"])
    assert args.redis_url == "redis://127.0.0.1:6379/3"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--concurrency", "0"], "--concurrency: must be at least 1, got 0"),
        (["--concurrency", "many"], "expected a whole number, got 'many'"),
        (["--retries", "-1"], "--retries: must not be negative, got -1"),
        (["--requests-per-minute", "0"], "must be at least 1"),
        (["--tokens-per-minute", "1.5"], "expected a whole number"),
        (["--budget-usd", "0"], "a budget must be more than 0"),
        (["--budget-usd", "-3"], "a budget must be more than 0"),
        (["--budget-usd", "ten"], "expected a budget in USD like 12.50"),
        (["--budget-usd", "nan"], "a budget must be more than 0"),
        (["--budget-usd", "inf"], "a budget must be more than 0"),
        (["--price", "gpt-4o-mini"], "expected MODEL=IN,OUT"),
        (["--price", "gpt-4o-mini=0.15"], "expected MODEL=IN,OUT"),
        (["--price", "=0.15,0.6"], "expected MODEL=IN,OUT"),
        (["--price", "m=0.1,0.2,0.3"], "expected MODEL=IN,OUT"),
        (["--price", "m=-1,0.2"], "the price of 'm' must not be negative"),
        (["--price", "m=cheap,0.2"], "expected the price of 'm' in USD"),
        (["--fallbacks", "a,,b"], "expected model ids separated by commas"),
        (["--timeout", "0"], "must be a positive number"),
        (["--ray", "--ray-workers", "0"], "--ray-workers: must be at least 1"),
    ],
)
def test_a_bad_option_exits_2_with_one_line(capsys, extra, expected):
    with pytest.raises(SystemExit) as exit_info:
        main(["batch", "in.jsonl", "-o", "out.jsonl", *extra])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.strip().splitlines()
    assert line.startswith("holysheep batch: error: ")
    assert expected in line


@pytest.mark.parametrize(
    "argv",
    [["batch"], ["batch", "in.jsonl"], ["batch", "-o", "out.jsonl"]],
    ids=["nothing", "no output", "no input"],
)
def test_input_and_output_are_required(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "required" in capsys.readouterr().err


def run(capsys, *extra):
    """``holysheep batch`` on a good input (the checks below refuse it first)."""
    status = main(["batch", "in.jsonl", "-o", "out.jsonl", *extra])
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.strip().splitlines()
    assert line.startswith("holysheep batch: error: ")
    return status, line


def test_no_key_and_no_offline_refuses_to_start(capsys):
    status, line = run(capsys)
    assert status == 2
    assert "HOLYSHEEP_API_KEY is not set" in line
    assert "--offline" in line


@pytest.mark.parametrize(
    "extra", [["--ray-address", "auto"], ["--ray-workers", "2"]], ids=lambda x: x[0]
)
def test_ray_options_need_ray(capsys, monkeypatch, extra):
    monkeypatch.setenv("HOLYSHEEP_API_KEY", "cr_unit_test_key")
    status, line = run(capsys, *extra)
    assert status == 2
    assert f"{extra[0]} is for --ray runs: add --ray" in line


def test_offline_and_base_url_cannot_be_combined(capsys):
    status, line = run(capsys, "--offline", "--base-url", "http://127.0.0.1:1/v1")
    assert status == 2
    assert "cannot be combined" in line


def test_a_missing_price_file_exits_2(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("HOLYSHEEP_API_KEY", "cr_unit_test_key")
    status, line = run(capsys, "--prices", str(tmp_path / "nope.json"))
    assert status == 2
    assert "cannot read price file" in line


def test_a_broken_price_file_exits_2(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("HOLYSHEEP_API_KEY", "cr_unit_test_key")
    prices = tmp_path / "prices.json"
    prices.write_text('{"m": {"input_per_million": 1}}')
    status, line = run(capsys, "--prices", str(prices), "--price", "n=1,2")
    assert status == 2
    assert "output_per_million" in line


def test_the_key_never_shows_in_an_argument_error(capsys, monkeypatch):
    key = "cr_secret_key_that_must_not_show_0123456789"
    monkeypatch.setenv("HOLYSHEEP_API_KEY", key)
    status, line = run(
        capsys, "--ray-address", f"ray://user:{key}@head:10001", "--base-url",
        f"http://user:{key}@127.0.0.1:1/v1",
    )  # fmt: skip
    assert status == 2
    assert key not in line
    with pytest.raises(SystemExit):
        main(["batch", "in.jsonl", "-o", "out.jsonl", "--price", key])
    err = capsys.readouterr().err
    assert "expected MODEL=IN,OUT" in err
    assert key not in err


# ------------------------------------------------------------------ --prices, --price


def namespace(prices=None, price=()):
    return argparse.Namespace(prices=prices, price=list(price))


def test_no_prices_leave_the_table_alone():
    assert _prices(namespace()) is None


def test_a_price_file_alone_is_passed_as_its_path(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(
        json.dumps({"m": {"input_per_million": 1, "output_per_million": 2}})
    )
    assert _prices(namespace(str(path))) == str(path)


def test_price_entries_go_over_the_price_file(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(
        json.dumps(
            {
                "file-only": {"input_per_million": 1, "output_per_million": 2},
                "both": {"input_per_million": 3, "output_per_million": 4},
            }
        )
    )
    overrides = _prices(
        namespace(
            str(path),
            [("BOTH", Decimal(5), Decimal(6)), ("flag-only", Decimal(0), Decimal(1))],
        )
    )
    table = load_price_table(overrides)
    assert table["file-only"].input_per_million == Decimal(1)
    assert table["both"].input_per_million == Decimal(5)
    assert table["both"].output_per_million == Decimal(6)
    assert table["flag-only"].output_per_million == Decimal(1)


def test_price_entries_go_over_the_environments_price_file(tmp_path, monkeypatch):
    path = tmp_path / "p.json"
    path.write_text(
        json.dumps({"env-model": {"input_per_million": 7, "output_per_million": 8}})
    )
    monkeypatch.setenv("HOLYSHEEP_PRICES_FILE", str(path))
    overrides = _prices(namespace(None, [("m", Decimal(1), Decimal(2))]))
    table = load_price_table(overrides)
    assert table["env-model"].output_per_million == Decimal(8)
    assert table["m"].input_per_million == Decimal(1)
