import pytest

from daca_kit.core.workflow import is_sensitive

KEYWORDS = ("urgent", "help", "emergency")


@pytest.mark.parametrize(
    "text",
    [
        "This is an urgent request!",
        "HELP",
        "Help, please",
        "emergency.",
        "need help?",
        "(urgent)",
        "it's Urgent",
    ],
)
def test_keywords_match_as_whole_words_in_any_case(text: str) -> None:
    assert is_sensitive(text, KEYWORDS)


@pytest.mark.parametrize("text", ["That was helpful", "helper", "urgently", "emergencyroom", "Hello", ""])
def test_words_that_only_contain_a_keyword_do_not_match(text: str) -> None:
    assert not is_sensitive(text, KEYWORDS)


def test_custom_keywords_and_none() -> None:
    assert is_sensitive("Please escalate now", ("escalate",))
    assert not is_sensitive("urgent", ())
