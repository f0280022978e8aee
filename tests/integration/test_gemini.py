"""GeminiReplyModel against a local server that speaks the Gemini REST protocol (loopback only, fast)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest

from daca_kit.adapters.gemini import GeminiReplyModel
from daca_kit.core.ports import HistoryTurn, ReplyModel, ReplyRequest
from daca_kit.errors import ModelError
from daca_kit.settings import DEFAULT_GEMINI_MODEL
from tests.support.gemini_stub import GeminiStub

KEY = "AIzaSy-test-key-0123456789"
MODEL = "gemini-test-flash"


class RecordingSleep:
    """Stands in for time.sleep: records the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK's HTTP client honours proxy variables; loopback traffic must not go through one.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def stub() -> Iterator[GeminiStub]:
    with GeminiStub(api_key=KEY, models={MODEL, DEFAULT_GEMINI_MODEL}) as running:
        yield running


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


def make_model(stub: GeminiStub, sleep: RecordingSleep, **options: object) -> GeminiReplyModel:
    settings: dict[str, object] = {"base_url": stub.base_url, "timeout": 5.0, "sleep": sleep}
    settings.update(options)
    model = settings.pop("model", MODEL)
    key = settings.pop("api_key", KEY)
    return GeminiReplyModel(key, model, **settings)  # type: ignore[arg-type]


def request(
    text: str = "What is Dapr?", *, message_count: int | None = 1, history: list[HistoryTurn] | None = None
) -> ReplyRequest:
    return ReplyRequest(user_id="user-1", text=text, message_count=message_count, history=history or ())


def test_is_a_reply_model(stub: GeminiStub, sleep: RecordingSleep) -> None:
    model = make_model(stub, sleep)
    assert isinstance(model, ReplyModel)
    assert model.name == f"gemini:{MODEL}"


def test_replies_with_the_model_text(stub: GeminiStub, sleep: RecordingSleep) -> None:
    model = make_model(stub, sleep)

    reply = model.generate(request("What is Dapr?", message_count=7))

    assert reply.text == "stub reply to: What is Dapr?"
    assert reply.model == f"gemini:{MODEL}"
    assert reply.offline is False
    assert reply.metadata == {"model": MODEL, "attempts": 1}
    assert sleep.delays == []


def test_prompt_carries_message_count_and_history_oldest_first(
    stub: GeminiStub, sleep: RecordingSleep
) -> None:
    model = make_model(stub, sleep)
    history = [
        HistoryTurn(message="first question", reply="first answer"),
        HistoryTurn(message="second question", reply="second answer"),
    ]

    model.generate(request("third question", message_count=42, history=history))

    (sent,) = stub.requests
    assert sent.method == "POST"
    assert sent.path.endswith(f"/models/{MODEL}:generateContent")
    texts = sent.texts()
    assert any("42" in text for text in texts)
    order = ["first question", "first answer", "second question", "second answer", "third question"]
    positions = [next(i for i, text in enumerate(texts) if wanted in text) for wanted in order]
    assert positions == sorted(positions)
    assert sent.last_user_text() == "third question"


def test_sends_the_key_in_the_header_not_the_url(stub: GeminiStub, sleep: RecordingSleep) -> None:
    make_model(stub, sleep).generate(request())

    (sent,) = stub.requests
    assert sent.headers["x-goog-api-key"] == KEY
    assert KEY not in sent.path


def test_rate_limit_then_success_retries_with_backoff(stub: GeminiStub, sleep: RecordingSleep) -> None:
    stub.plan(429, 200)
    model = make_model(stub, sleep, backoff=0.5)

    reply = model.generate(request("hello"))

    assert reply.text == "stub reply to: hello"
    assert reply.metadata["attempts"] == 2
    assert len(stub.requests) == 2
    assert sleep.delays == [0.5]


def test_backoff_doubles_between_attempts(stub: GeminiStub, sleep: RecordingSleep) -> None:
    stub.plan(503, 429, 200)
    model = make_model(stub, sleep, backoff=0.25, max_retries=3)

    reply = model.generate(request())

    assert reply.metadata["attempts"] == 3
    assert sleep.delays == [0.25, 0.5]


def test_server_errors_exhaust_retries_and_raise_retryable(stub: GeminiStub, sleep: RecordingSleep) -> None:
    stub.plan(500, 500, 500, 200)  # the fourth would succeed: it must not be tried
    model = make_model(stub, sleep, max_retries=3)

    with pytest.raises(ModelError) as caught:
        model.generate(request())

    assert caught.value.retryable is True
    assert caught.value.status == 500
    assert "3 attempts" in str(caught.value)
    assert len(stub.requests) == 3
    assert len(sleep.delays) == 2


def test_rate_limit_that_persists_says_to_wait(stub: GeminiStub, sleep: RecordingSleep) -> None:
    stub.plan(429, 429)
    model = make_model(stub, sleep, max_retries=2)

    with pytest.raises(ModelError) as caught:
        model.generate(request())

    assert caught.value.retryable is True
    assert caught.value.status == 429
    assert "GEMINI_API_KEY" in str(caught.value)
    assert len(stub.requests) == 2


def test_a_timeout_ends_the_reply_at_gemini_timeout(stub: GeminiStub, sleep: RecordingSleep) -> None:
    # GEMINI_TIMEOUT bounds the whole reply, retries included: an attempt that used it up is not retried.
    stub.plan("timeout", "timeout")
    model = make_model(stub, sleep, timeout=0.5, max_retries=3)

    start = time.monotonic()
    with pytest.raises(ModelError) as caught:
        model.generate(request())

    assert time.monotonic() - start < 0.5 + 0.4
    assert caught.value.retryable is True
    assert "GEMINI_TIMEOUT" in str(caught.value)
    assert len(stub.requests) == 1
    assert sleep.delays == []


def test_a_retry_gets_only_the_time_left(stub: GeminiStub, sleep: RecordingSleep) -> None:
    # A quick failure is retried; the retry may use what is left of GEMINI_TIMEOUT, and no more.
    stub.plan(500, "timeout")
    model = make_model(stub, sleep, timeout=1.5)

    start = time.monotonic()
    with pytest.raises(ModelError) as caught:
        model.generate(request())

    assert time.monotonic() - start < 1.5 + 0.4
    assert "GEMINI_TIMEOUT" in str(caught.value)
    assert len(stub.requests) == 2
    assert sleep.delays == [0.5]


def test_unreachable_server_is_retryable(sleep: RecordingSleep) -> None:
    with GeminiStub(api_key=KEY, models={MODEL}) as gone:
        base_url = gone.base_url
    model = GeminiReplyModel(KEY, MODEL, base_url=base_url, timeout=2.0, max_retries=2, sleep=sleep)

    with pytest.raises(ModelError) as caught:
        model.generate(request())

    assert caught.value.retryable is True
    assert "GEMINI_BASE_URL" in str(caught.value)
    assert len(sleep.delays) == 1


def test_unknown_model_names_the_setting(stub: GeminiStub, sleep: RecordingSleep) -> None:
    model = make_model(stub, sleep, model="gemini-1.0-retired")

    with pytest.raises(ModelError) as caught:
        model.generate(request())

    assert str(caught.value) == (
        "GEMINI_MODEL 'gemini-1.0-retired' was not found: set GEMINI_MODEL to a current model, "
        f"e.g. {DEFAULT_GEMINI_MODEL}"
    )
    assert caught.value.status == 404
    assert caught.value.retryable is False
    assert len(stub.requests) == 1
    assert sleep.delays == []


@pytest.mark.parametrize(
    "wrong_key_status",
    [400, 401, 403],
    ids=["real-gemini-400-API_KEY_INVALID", "401-UNAUTHENTICATED", "403-PERMISSION_DENIED"],
)
def test_refused_key_names_the_setting_and_never_shows_the_key(
    wrong_key_status: int, sleep: RecordingSleep, caplog: pytest.LogCaptureFixture
) -> None:
    wrong_key = "AIzaSy-WRONG-secret-9876543210"
    caplog.set_level(logging.DEBUG)  # every logger, the SDK's and its HTTP client's included
    with GeminiStub(api_key=KEY, models={MODEL}, wrong_key_status=wrong_key_status) as stub:
        model = GeminiReplyModel(wrong_key, MODEL, base_url=stub.base_url, sleep=sleep)

        with pytest.raises(ModelError) as caught:
            model.generate(request())

    message = str(caught.value)
    assert "GEMINI_API_KEY" in message
    assert wrong_key not in message
    assert wrong_key not in repr(model)
    assert caught.value.retryable is False
    assert caught.value.status == wrong_key_status
    assert sleep.delays == []
    assert wrong_key not in caplog.text
    for record in caplog.records:
        assert wrong_key not in record.getMessage()


def test_empty_candidate_is_an_error_not_an_empty_reply(stub: GeminiStub, sleep: RecordingSleep) -> None:
    stub.plan("empty")
    model = make_model(stub, sleep)

    with pytest.raises(ModelError) as caught:
        model.generate(request())

    assert caught.value.retryable is False


def test_blocked_prompt_is_an_error_that_says_so(stub: GeminiStub, sleep: RecordingSleep) -> None:
    stub.plan("blocked")
    model = make_model(stub, sleep)

    with pytest.raises(ModelError) as caught:
        model.generate(request())

    assert "blocked" in str(caught.value)
    assert "SAFETY" in str(caught.value)


def test_whitespace_only_text_is_an_error(stub: GeminiStub, sleep: RecordingSleep) -> None:
    stub.plan(
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "  \n"}]}, "finishReason": "STOP"}]}
    )

    with pytest.raises(ModelError):
        make_model(stub, sleep).generate(request())


def test_ping_succeeds_for_a_known_model(stub: GeminiStub, sleep: RecordingSleep) -> None:
    make_model(stub, sleep).ping()

    (sent,) = stub.requests
    assert sent.method == "GET"
    assert sent.path.endswith(f"/models/{MODEL}")


def test_ping_reports_an_unknown_model(stub: GeminiStub, sleep: RecordingSleep) -> None:
    with pytest.raises(ModelError, match="set GEMINI_MODEL to a current model"):
        make_model(stub, sleep, model="gemini-0-nope").ping()


def test_ping_reports_a_refused_key(stub: GeminiStub, sleep: RecordingSleep) -> None:
    with pytest.raises(ModelError, match="GEMINI_API_KEY") as caught:
        make_model(stub, sleep, api_key="not-the-key").ping()

    assert "not-the-key" not in str(caught.value)
