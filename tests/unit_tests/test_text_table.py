"""The shared fixed-width text table (langchain_holysheep._text_table)."""

from langchain_holysheep._text_table import render_table


def test_first_column_left_the_rest_right_aligned():
    text = render_table(
        ("model", "n", "cost"), [("a", "10", "1.5"), ("long-name", "2", "")]
    )
    assert text.splitlines() == [
        "model     |  n | cost",
        "----------+----+-----",
        "a         | 10 |  1.5",
        "long-name |  2 |",
    ]


def test_total_row_comes_after_a_second_rule_and_counts_for_the_widths():
    text = render_table(("m", "n"), [("a", "1")], total=("TOTAL", "1000"))
    assert (
        text == "m     |    n\n------+-----\na     |    1\n------+-----\nTOTAL | 1000"
    )


def test_an_empty_first_header_cell_is_stripped_only_at_line_ends():
    text = render_table(("", "p50"), [("TTFT (ms)", "-")])
    assert text.splitlines() == [
        "          | p50",
        "----------+----",
        "TTFT (ms) |   -",
    ]
