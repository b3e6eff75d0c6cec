"""The holysheep CLI's argument parsing: bad arguments exit 2 with one line."""

import pytest

from langchain_holysheep.cli import DEMO_STEPS, DemoStep, build_parser, demo, main
from langchain_holysheep.cli._connect import offline_responder, prompt_text


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["nope"],
        ["chat"],
        ["chat", "hi", "--max-tokens", "0"],
        ["chat", "hi", "--timeout", "-1"],
        ["bench", "--requests", "0"],
        ["bench", "--concurrency", "many"],
        ["cost", "--input-tokens", "1", "--output-tokens", "1"],
        [
            "cost",
            "--requests-per-month",
            "-5",
            "--input-tokens",
            "1",
            "--output-tokens",
            "1",
        ],
        ["models", "--bogus"],
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("holysheep")
    assert "error:" in lines[0]


@pytest.mark.parametrize("command", ["demo", "chat", "models", "bench", "cost"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: holysheep" in capsys.readouterr().out


def test_cost_rejects_unknown_models_without_a_request(capsys):
    status = main(
        [
            "cost",
            "--requests-per-month",
            "10",
            "--input-tokens",
            "1",
            "--output-tokens",
            "1",
            "--models",
            "gpt-4.1",
            "no-such-model",
        ]
    )
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "no price for 'no-such-model'" in err[0]


def test_cost_rejects_more_cached_than_input_tokens(capsys):
    status = main(
        [
            "cost",
            "--requests-per-month",
            "10",
            "--input-tokens",
            "5",
            "--output-tokens",
            "1",
            "--cached-input-tokens",
            "6",
        ]
    )
    assert status == 2
    assert "--cached-input-tokens" in capsys.readouterr().err


def test_cost_prints_monthly_cost_and_saving(capsys):
    status = main(
        [
            "cost",
            "--requests-per-month",
            "1000000",
            "--input-tokens",
            "500",
            "--output-tokens",
            "200",
            "--models",
            "gpt-4.1",
            "mistral-small-2603",
            "--reference",
            "gpt-4.1",
        ]
    )
    assert status == 0
    out = capsys.readouterr().out
    # gpt-4.1: 5e8 * 3 / 1e6 + 2e8 * 8 / 1e6 = 1500 + 1600
    assert "3,100.00" in out
    # mistral: 5e8 * 0.2 / 1e6 + 2e8 * 0.6 / 1e6 = 100 + 120; saves 2880
    assert "220.00" in out
    assert "2,880.00 (92.9%)" in out


def test_parser_defaults():
    args = build_parser().parse_args(["bench"])
    assert (args.requests, args.concurrency, args.offline) == (20, 4, False)
    args = build_parser().parse_args(["chat", "hi", "--no-stream", "--offline"])
    assert args.no_stream
    assert args.offline


def test_demo_steps_are_a_list_others_can_extend():
    titles = [step.title for step in DEMO_STEPS]
    assert titles[:3] == ["Invoke", "Streaming (tokens as they arrive)", "Async batch"]
    assert all(isinstance(step, DemoStep) for step in DEMO_STEPS)
    assert DEMO_STEPS is demo.DEMO_STEPS  # the list the demo command runs


@pytest.mark.parametrize("model", [None, "gpt-4.1"])
def test_shared_options_are_on_the_commands_that_send_requests(model):
    parser = build_parser()
    for argv in (["demo"], ["chat", "hi"], ["bench"]):
        extra = [] if model is None else ["--model", model]
        args = parser.parse_args([*argv, "--offline", *extra])
        assert args.offline
        assert args.timeout == 60.0
        assert args.model == (model or "mistral-small-2603")
    models = parser.parse_args(["models", "--base-url", "http://x", "--json"])
    assert (models.base_url, models.json) == ("http://x", True)
    assert not hasattr(models, "model")
    cost = parser.parse_args(
        [
            "cost",
            "--requests-per-month",
            "1",
            "--input-tokens",
            "1",
            "--output-tokens",
            "1",
        ]
    )
    assert not hasattr(cost, "offline")


def test_offline_prompt_is_the_last_user_message():
    body = {
        "messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "tell me"},
                    {"type": "text", "text": "about sheep"},
                ],
            },
        ]
    }
    assert prompt_text(body) == "tell me about sheep"
    assert prompt_text({}) == ""
    assert prompt_text({"messages": [{"role": "system", "content": "s"}]}) == ""


def test_offline_responder_answers_by_keyword():
    respond = offline_responder()
    sheep = respond({"messages": [{"role": "user", "content": "Facts about WOOL?"}]})
    assert sheep.content.startswith("Sheep are grazing animals")
    other = respond({"messages": [{"role": "user", "content": "zzz"}]})
    assert other.content.startswith("This is a scripted offline answer.")
    assert 0.03 <= other.delay_before_headers <= 0.03 + 12 * 0.005


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bench", "--requests", "0"], "must be at least 1, got 0"),
        (["bench", "--requests", "2.5"], "expected a whole number, got '2.5'"),
        (
            [
                "cost",
                "--requests-per-month",
                "-5",
                "--input-tokens",
                "1",
                "--output-tokens",
                "1",
            ],
            "must not be negative, got -5",
        ),
    ],
)
def test_number_arguments_say_what_is_wrong(argv, message, capsys):
    with pytest.raises(SystemExit):
        main(argv)
    assert message in capsys.readouterr().err
