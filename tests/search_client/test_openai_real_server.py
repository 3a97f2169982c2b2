"""The `openai` back-end against real servers on loopback.

A real OpenAI-compatible server: `transformers serve` pinned to the packaged SmolLM2-135M-Instruct folder
(tests/support/lm_server.py), one per module. A search round through it completes, its LM ledger filled
from the server's `usage`. And servers that refuse, never answer or answer junk: each leaves an `lm` event
in the run and the search finishes, never crashes.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import itertools
import json
import os
import re
import socket
import threading
from collections.abc import Iterator

import pytest

from evoprompt.search.config import SearchConfig
from evoprompt.search.lm.base import LMError, Usage
from evoprompt.search.lm.openai_backend import OpenAICompatibleLM
from evoprompt.search.prompt import Example, build_prompt
from evoprompt.search.report import summarize
from evoprompt.search.runner import run_search
from evoprompt.search.seeds import list_seeds
from evoprompt.search.store import RunStore
from tests.support.lm_server import LMServer, smollm2_folder, transformers_serve
from tests.support.servers import free_port

pytestmark = pytest.mark.integration
TORCH_SEEDS = list_seeds("mnist1d", "torch")
# few new tokens: SmolLM2 on two busy CPU cores wrote ~2 tokens/s (prompt included), and the round need
# not write good code (64 tokens end mid-program: the children are usually invalid)
MAX_TOKENS = 64


@pytest.fixture(scope="module")
def lm_server(tmp_path_factory) -> Iterator[LMServer]:
    """`transformers serve` with SmolLM2 on a loopback port, for the whole module."""
    folder = smollm2_folder()
    with transformers_serve(folder, log_dir=tmp_path_factory.mktemp("lm-server")) as server:
        yield server
    with pytest.raises(ProcessLookupError):  # stopped and reaped
        os.kill(server.pid, 0)


def _posts(server: LMServer, path: str) -> list[str]:
    """The status codes of the server's access-log lines for POST `path` (uvicorn logs every request)."""
    return re.findall(rf'"POST {re.escape(path)} HTTP/1\.1" (\d+)', server.log_tail(10**7))


def _config(spec: str, **overrides) -> SearchConfig:
    base = dict(task="mnist1d", framework="torch", lm=spec, rounds=1, prompts=1, samples=2, parents=2,
                max_steps=100, prompt_tuning="off", prompt_style="chat", lm_max_tokens=MAX_TOKENS, seed=1)
    return SearchConfig(**{**base, **overrides})


def test_a_search_round_through_transformers_serve(tmp_path, lm_server):
    """The CLI's path: the spec and options of the config (make_lm), the chat prompt on
    /v1/chat/completions, the children written to the run and evaluated, the tokens in the ledger."""
    run_dir = tmp_path / "run"
    chat_before = len(_posts(lm_server, "/v1/chat/completions"))
    completions_before = len(_posts(lm_server, "/v1/completions"))
    run_search(_config(lm_server.spec), run_dir, progress=False)

    summary = summarize(run_dir)
    with RunStore(run_dir / "run.sqlite3") as store:
        events = store.events()
        children = store.candidates(kind="child")
        calls = store.lm_calls()
        rounds = store.rounds()
    assert not [e for e in events if e.kind == "lm"], [e.message for e in events]
    assert [r.state for r in rounds] == ["done"]
    assert len(children) == 2, [(c.state, c.message) for c in children]
    # greedy: the folder's generation config does not sample, so the second child may be the first again
    assert all(c.state in ("evaluated", "invalid", "duplicate") for c in children), [c.state for c in children]
    assert summary["rounds"] == 1 and summary["candidates"] == 2

    # transformers serve ignores `n`: one choice per request, the back-end asks again for the second
    statuses = _posts(lm_server, "/v1/chat/completions")[chat_before:]
    assert statuses in (["200"], ["200", "200"]), statuses
    assert len(_posts(lm_server, "/v1/completions")) == completions_before  # chat style: chat only

    # the ledger: the server's `usage` of each request, summed for the generate call
    assert len(calls) == 1 and calls[0].samples == 2
    assert calls[0].prompt_tokens > 0 and 0 < calls[0].completion_tokens <= 2 * MAX_TOKENS
    lm = summary["lm"]
    assert lm["calls"] == 1 and lm["samples"] == 2
    assert lm["prompt_tokens"] == calls[0].prompt_tokens and lm["completion_tokens"] == calls[0].completion_tokens
    assert lm["seconds"] > 0 and lm["completion_tokens_per_second"] > 0


def test_the_completion_endpoint_and_a_wrong_model_name(lm_server):
    """The paper's prompt on /v1/completions (auto keeps it: the server has it), usage counted; a model
    the pinned server does not serve is a clear LMError (HTTP 400), not a fallback or a hang."""
    prompt = build_prompt([Example(TORCH_SEEDS[0].code, 5210, 0.9), Example(TORCH_SEEDS[1].code, 5134, 0.8)],
                          "mnist1d")

    async def sample() -> tuple[list[str], Usage, str]:
        lm = OpenAICompatibleLM(lm_server.spec, prompt_style="completion", max_tokens=8, max_retries=0)
        try:
            usage = Usage()
            return await lm.generate(prompt, 1, 0.8, seed=1, usage=usage), usage, lm.endpoint
        finally:
            await lm.aclose()

    before = len(_posts(lm_server, "/v1/completions"))
    outputs, usage, endpoint = asyncio.run(sample())
    assert len(outputs) == 1 and isinstance(outputs[0], str)
    assert endpoint == "auto" and _posts(lm_server, "/v1/completions")[before:] == ["200"]
    assert usage.prompt_tokens > 100 and 0 < usage.completion_tokens <= 8

    async def wrong_model() -> None:
        lm = OpenAICompatibleLM(f"openai:{lm_server.base_url}#not-this-model", max_tokens=8, max_retries=0)
        try:
            await lm.generate(prompt, 1, 0.8, seed=1)
        finally:
            await lm.aclose()

    with pytest.raises(LMError, match=r"HTTP 400: .*pinned to"):
        asyncio.run(wrong_model())


# -- servers that fail ------------------------------------------------------------------------------

@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A port whose connections are accepted (by the kernel's backlog) and never answered."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


JUNK_ANSWERS = (
    ("text/html", b"<html><body>502 Bad Gateway (but with a 200)</body></html>"),
    ("application/json", json.dumps({"object": "chat.completion", "data": []}).encode()),
    ("application/json", json.dumps({"choices": [{"index": 0, "delta": "not a message"}]}).encode()),
)
JUNK_MESSAGES = ("answered with malformed JSON", "answered without a 'choices' list", "malformed choice")


@contextlib.contextmanager
def junk_server() -> Iterator[int]:
    """An HTTP server answering every POST with 200 and, in turn, each of JUNK_ANSWERS."""
    answers = itertools.cycle(JUNK_ANSWERS)
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers.get("content-length") or 0))
            with lock:
                content_type, body = next(answers)
            self.send_response(200)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # quiet
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="junk-lm-server", daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port nothing listens on (taken free a moment ago)."""
    yield free_port()


FAILING = {
    # name: (server, prompts, messages expected among the run's lm events)
    "refused": (refused_port, 1, ("failed after 2 attempts; last error: ConnectError",)),
    "timeout": (silent_server, 1, ("failed after 2 attempts; last error: ReadTimeout",)),
    "junk": (junk_server, len(JUNK_ANSWERS), JUNK_MESSAGES),
}


@pytest.mark.parametrize("failure", list(FAILING))
def test_a_failing_server_is_an_lm_event_and_the_search_finishes(tmp_path, failure, process_server):
    """Through a real search, the LM built from the config's spec as the CLI builds it (fast failures: a 1 s
    timeout, one quick retry): every prompt's generate fails with LMError, written as an `lm` event, and
    the round ends with no children. The seeds are run by the module's process-back-end evaluator (our own
    code only), which has their results after the first case."""
    server, prompts, messages = FAILING[failure]
    run_dir = tmp_path / "run"
    with server() as port:
        spec = f"openai:http://127.0.0.1:{port}/v1#smollm2"
        config = _config(spec, prompts=prompts, samples=1)
        run_search(config, run_dir, evaluator=process_server.endpoint, progress=False,
                   lm_options={"timeout": 1.0, "max_retries": 1, "initial_backoff": 0.01, "max_backoff": 0.05})

    with RunStore(run_dir / "run.sqlite3") as store:
        events = [e for e in store.events() if e.kind == "lm"]
        rounds = store.rounds()
        calls = store.lm_calls()
        seeds = store.candidates(kind="seed")
    texts = [e.message for e in events]
    assert len(events) == prompts, texts
    assert all(e.round == 1 and e.message.startswith("round 1 prompt ") for e in events), texts
    assert all(f"http://127.0.0.1:{port}/v1/chat/completions" in t for t in texts), texts
    for message in messages:
        assert any(message in t for t in texts), (message, texts)
    assert [r.state for r in rounds] == ["done"]
    assert seeds and all(s.status == "OK" for s in seeds)
    assert len(calls) == prompts and all(c.completion_tokens == 0 for c in calls)
    summary = summarize(run_dir)
    assert summary["rounds"] == 1 and summary["candidates"] == 0
    assert summary["failures"].get("lm") == prompts

