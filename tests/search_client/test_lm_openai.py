"""The OpenAI-compatible back-end against a real, scripted HTTP server on a loopback port."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from evoprompt.search.lm import openai_backend
from evoprompt.search.lm.base import LMConfigError, LMError
from evoprompt.search.lm.openai_backend import OpenAICompatibleLM
from evoprompt.search.prompt import Example, Prompt, build_prompt, program_from_output
from evoprompt.search.repair import BROKEN_MARKER, FIXED_MARKER, build_repair_prompt
from evoprompt.search.seeds import list_seeds

pytestmark = pytest.mark.timeout(30)

REAL_SLEEP = asyncio.sleep
KEY_ENV = "EVOPROMPT_TEST_OPENAI_KEY"


@dataclass
class Reply:
    status: int = 200
    body: dict[str, Any] | str | None = None  # None: the normal answer for the path
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


class FakeOpenAI:
    """What the server answers: scripted replies first (in order), then normal answers."""

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.requests: list[Recorded] = []
        self.missing_paths: set[str] = set()
        self.max_choices: int | None = None  # llama.cpp's server ignores n
        self.delay = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.url = ""

    def normal(self, path: str, body: dict[str, Any]) -> Reply:
        if path in self.missing_paths:
            return Reply(404, {"detail": "Not Found"})
        n = body.get("n", 1) if self.max_choices is None else min(body.get("n", 1), self.max_choices)
        if path == "/v1/completions":
            return Reply(200, {"choices": [{"index": i, "text": f"completion {i}"} for i in range(n)]})
        if path == "/v1/chat/completions":
            return Reply(200, {"choices": [{"index": i, "message": {"role": "assistant", "content": f"chat {i}"}}
                                           for i in range(n)]})
        return Reply(404, {"detail": "Not Found"})


class Handler(BaseHTTPRequestHandler):
    server: Any

    def do_POST(self) -> None:  # noqa: N802 (the http.server API)
        fake: FakeOpenAI = self.server.fake
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        with fake.lock:
            fake.requests.append(Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                                          time.monotonic()))
            fake.in_flight += 1
            fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
            reply = fake.script.pop(0) if fake.script else fake.normal(self.path, body)
        try:
            time.sleep(reply.delay or fake.delay)
            if reply.body is None:
                reply = Reply(reply.status, fake.normal(self.path, body).body, reply.headers)
        finally:
            with fake.lock:  # before answering, so the client cannot start its next request first
                fake.in_flight -= 1
        payload = reply.body.encode() if isinstance(reply.body, str) else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "text/plain" if isinstance(reply.body, str) else "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out has closed its end


@pytest.fixture
def fake(monkeypatch) -> Iterator[FakeOpenAI]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(KEY_ENV, raising=False)
    server = QuietServer(("127.0.0.1", 0), Handler)
    server.fake = FakeOpenAI()  # type: ignore[attr-defined]
    server.fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server.fake  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def pauses(monkeypatch) -> list[float]:
    """The pauses the back-end takes between attempts (still really taken)."""
    recorded: list[float] = []

    async def record(seconds: float) -> None:
        recorded.append(seconds)
        await REAL_SLEEP(seconds)

    monkeypatch.setattr(openai_backend, "_sleep", record)
    return recorded


@pytest.fixture(scope="module")
def prompt() -> Prompt:
    seed = list_seeds("mnist1d", "torch")[0]
    return build_prompt([Example(seed.code, 5210, 0.918)], "mnist1d")


def make_lm(fake: FakeOpenAI, **kwargs: Any) -> OpenAICompatibleLM:
    kwargs = {"api_key_env": KEY_ENV, "initial_backoff": 0.001, "max_backoff": 0.01, "timeout": 5.0, **kwargs}
    return OpenAICompatibleLM(f"openai:{fake.url}#test-model", **kwargs)


def generate(lm: OpenAICompatibleLM, prompt: Prompt, n: int = 2, temperature: float = 0.7, seed: int = 1,
             calls: int = 1) -> list[list[str]]:
    """Outputs of `calls` concurrent generate calls, in one event loop; closes the LM."""

    async def go() -> list[list[str]]:
        try:
            return list(await asyncio.gather(*(lm.generate(prompt, n, temperature, seed) for _ in range(calls))))
        finally:
            await lm.aclose()

    return asyncio.run(go())


def test_completions_returns_n_texts_and_sends_the_request(fake, prompt):
    [outputs] = generate(make_lm(fake, endpoint="completions", max_tokens=333), prompt, n=3, temperature=0.7,
                         seed=11)
    assert outputs == ["completion 0", "completion 1", "completion 2"]
    [request] = fake.requests
    assert request.path == "/v1/completions"
    assert request.body == {"model": "test-model", "prompt": prompt.text, "n": 3, "temperature": 0.7,
                            "max_tokens": 333, "seed": 11, "stop": ['"""Metrics:']}


def test_a_repair_prompt_sends_its_own_stop_texts(fake, prompt):
    repair = build_repair_prompt(prompt, prompt.examples[0].code, "RuntimeError: shapes cannot be multiplied")
    generate(make_lm(fake, endpoint="completions"), repair, n=1)
    [request] = fake.requests
    assert request.body["prompt"] == repair.text
    assert request.body["stop"] == ['"""Metrics:', f"\n{BROKEN_MARKER}", f"\n{FIXED_MARKER}"]


def test_chat_returns_contents_and_the_user_message_holds_the_prompt(fake, prompt):
    program = f"```python\n{prompt.examples[0].code}```\nThis model is small."
    fake.script = [Reply(200, {"choices": [{"message": {"role": "assistant", "content": program}},
                                           {"message": {"role": "assistant", "content": "chat 1"}}]})]
    [outputs] = generate(make_lm(fake, endpoint="chat"), prompt, n=2, seed=4)
    assert outputs == [program, "chat 1"]
    assert "class Model" in program_from_output(prompt, outputs[0])
    [request] = fake.requests
    assert request.path == "/v1/chat/completions"
    system, user = request.body["messages"]
    assert system["role"] == "system" and "code only" in system["content"]
    assert user == {"role": "user", "content": prompt.text}
    assert (request.body["model"], request.body["n"], request.body["seed"]) == ("test-model", 2, 4)


def test_chat_asks_again_when_the_server_ignores_n(fake, prompt):
    fake.max_choices = 1
    [outputs] = generate(make_lm(fake, endpoint="chat"), prompt, n=3, seed=5)
    assert outputs == ["chat 0"] * 3
    assert [(r.body["n"], r.body["seed"]) for r in fake.requests] == [(3, 5), (2, 6), (1, 7)]


def test_429_and_500_are_retried_with_backoff_then_succeed(fake, prompt, pauses):
    fake.script = [Reply(429, {"error": "slow down"}, {"Retry-After": "0"}), Reply(500, {"error": "boom"})]
    [outputs] = generate(make_lm(fake, initial_backoff=0.05, max_backoff=1.0), prompt, n=2)
    assert outputs == ["completion 0", "completion 1"]
    assert [r.path for r in fake.requests] == ["/v1/completions"] * 3
    assert pauses[0] == 0.0  # Retry-After: 0
    assert 0.05 <= pauses[1] <= 0.1  # the second backoff step, 0.1 with jitter down to half
    assert fake.requests[2].at - fake.requests[1].at >= 0.045


def test_retry_after_is_honoured_and_capped(fake, prompt, pauses):
    fake.script = [Reply(429, "busy", {"Retry-After": "0.2"}), Reply(503, "loading", {"Retry-After": "100"})]
    generate(make_lm(fake, initial_backoff=0.001, max_backoff=0.3), prompt)
    assert pauses == [0.2, 0.3]
    assert fake.requests[1].at - fake.requests[0].at >= 0.19
    assert len(fake.requests) == 3


def test_retries_exhausted_raise_lmerror_with_the_attempts(fake, prompt, pauses):
    fake.script = [Reply(502, "bad gateway")] * 3
    with pytest.raises(LMError, match=r"after 3 attempts.*HTTP 502: bad gateway"):
        generate(make_lm(fake, max_retries=2), prompt)
    assert len(fake.requests) == 3
    assert len(pauses) == 2


def test_a_read_timeout_is_retried(fake, prompt, pauses):
    fake.script = [Reply(200, delay=0.6)]
    [outputs] = generate(make_lm(fake, timeout=0.15), prompt, n=1)
    assert outputs == ["completion 0"]
    assert len(fake.requests) == 2 and len(pauses) == 1


def test_connection_errors_are_retried_then_reported(prompt, pauses):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    lm = OpenAICompatibleLM(f"openai:http://127.0.0.1:{port}/v1#m", max_retries=1, initial_backoff=0.001)
    with pytest.raises(LMError, match=r"after 2 attempts.*ConnectError"):
        generate(lm, prompt)
    assert len(pauses) == 1


@pytest.mark.parametrize("endpoint", ["completions", "auto"])
def test_a_400_is_not_retried(fake, prompt, pauses, endpoint):
    fake.script = [Reply(400, {"error": {"message": "temperature must be non-negative"}})]
    with pytest.raises(LMError, match=r"HTTP 400.*temperature must be non-negative"):
        generate(make_lm(fake, endpoint=endpoint), prompt, temperature=-1.0)
    assert len(fake.requests) == 1
    assert pauses == []


@pytest.mark.parametrize("reply", [Reply(200, "<html>not json</html>"), Reply(200, {"data": []}),
                                   Reply(200, {"choices": [{"nope": 1}]})], ids=["not-json", "no-choices", "no-text"])
def test_malformed_answers_raise_lmerror(fake, prompt, reply):
    fake.script = [reply]
    with pytest.raises(LMError, match="malformed|choices"):
        generate(make_lm(fake, endpoint="completions"), prompt)
    assert len(fake.requests) == 1


@pytest.mark.parametrize("refusal", ["404", "400"])
def test_auto_falls_back_to_chat_for_the_rest_of_the_objects_life(fake, prompt, refusal):
    if refusal == "404":
        fake.missing_paths.add("/v1/completions")
    else:
        fake.script = [Reply(400, {"error": {"message": "this model does not support the completions endpoint"}})]
    lm = make_lm(fake)

    async def go() -> tuple[list[str], list[str]]:
        try:
            return await lm.generate(prompt, 2, 0.5, 1), await lm.generate(prompt, 1, 0.5, 2)
        finally:
            await lm.aclose()

    first, second = asyncio.run(go())
    assert (first, second) == (["chat 0", "chat 1"], ["chat 0"])
    assert lm.endpoint == "chat"
    assert [r.path for r in fake.requests] == ["/v1/completions", "/v1/chat/completions", "/v1/chat/completions"]


def test_the_api_key_is_sent_as_bearer_and_kept_out_of_errors(fake, prompt, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-secret-123")
    generate(make_lm(fake), prompt)
    assert fake.requests[0].headers["authorization"] == "Bearer sk-secret-123"
    fake.script = [Reply(401, {"error": "invalid key sk-secret-123"})]
    lm = make_lm(fake)
    assert "sk-secret-123" not in repr(lm)
    with pytest.raises(LMError, match="HTTP 401") as info:
        generate(lm, prompt)
    assert "sk-secret-123" not in str(info.value)


def test_no_authorization_header_without_a_key(fake, prompt):
    generate(make_lm(fake), prompt)
    assert "authorization" not in fake.requests[0].headers


@pytest.mark.parametrize("spec", ["openai:http://127.0.0.1:8000/v1", "openai:http://127.0.0.1:8000/v1#",
                                  "openai:ftp://127.0.0.1/v1#m", "openai:127.0.0.1:8000/v1#m", "openai:#m",
                                  "hf:http://127.0.0.1:8000/v1#m"])
def test_a_bad_spec_raises_lmconfigerror(spec):
    with pytest.raises(LMConfigError, match="openai:BASE_URL#MODEL"):
        OpenAICompatibleLM(spec)


def test_a_good_spec_is_parsed():
    lm = OpenAICompatibleLM("openai:https://example.invalid/v1/#qwen2.5-coder:7b")
    assert (lm.base_url, lm.model) == ("https://example.invalid/v1", "qwen2.5-coder:7b")
    asyncio.run(lm.aclose())


def test_concurrency_never_exceeds_max_concurrency(fake, prompt):
    fake.delay = 0.05
    results = generate(make_lm(fake, max_concurrency=2), prompt, n=1, calls=6)
    assert results == [["completion 0"]] * 6
    assert len(fake.requests) == 6
    assert fake.max_in_flight == 2
