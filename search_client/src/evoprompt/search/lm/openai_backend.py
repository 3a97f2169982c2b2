"""A language model behind an OpenAI-compatible HTTP API (vLLM, llama.cpp's server, Ollama).

Spec: ``openai:BASE_URL#MODEL``, e.g. ``openai:http://127.0.0.1:8000/v1#qwen2.5-coder``. The prompt's text
is sent to ``/completions`` (a completion model continues it, as in the paper) or, for servers or models
that only chat, to ``/chat/completions`` with an instruction to continue the program.

Local servers are busy and flaky under a search's load, so requests are bounded in number, and
overload answers (429, 5xx), timeouts and dropped connections are retried with exponential backoff.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from ..prompt import Prompt, chat_messages
from .base import LanguageModel, LMConfigError, LMError, Usage

log = logging.getLogger(__name__)

Endpoint = Literal["auto", "completions", "chat"]
SPEC_FORM = "openai:BASE_URL#MODEL (e.g. openai:http://127.0.0.1:8000/v1#qwen2.5-coder)"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_AFTER_STATUSES = frozenset({429, 503})
UNSUPPORTED_STATUSES = frozenset({404, 405})
# Words in a 400's body that mean "this endpoint or a raw prompt is not served here" (auto mode falls back).
_UNSUPPORTED_WORDS = ("not supported", "unsupported", "does not support", "not implemented", "chat model",
                      "chat/completions")
EXCERPT_CHARS = 300
SYSTEM_MESSAGE = (
    "You write neural-network programs in Python. The user sends examples of programs, each after a "
    "docstring with its metrics, and ends with the start of a new program. Continue that program so that "
    "it meets the metrics in its docstring. Answer with Python code only, no explanations."
)

# Indirection so that tests can record the pauses between attempts.
_sleep = asyncio.sleep


class LMHTTPError(LMError):
    """The server answered with an error status that retrying will not fix."""

    def __init__(self, message: str, status: int, body: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


def parse_spec(spec: str) -> tuple[str, str]:
    """(base URL without a trailing slash, model) of an ``openai:BASE_URL#MODEL`` spec."""
    kind, sep, rest = spec.partition(":")
    if kind != "openai" or not sep:
        raise LMConfigError(f"bad LM spec {spec!r}: expected {SPEC_FORM}")
    base, sep, model = rest.rpartition("#")
    if not sep:
        raise LMConfigError(f"bad LM spec {spec!r}: no '#MODEL'; expected {SPEC_FORM}")
    model = model.strip()
    if not model:
        raise LMConfigError(f"bad LM spec {spec!r}: empty model name; expected {SPEC_FORM}")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise LMConfigError(f"bad LM spec {spec!r}: {base!r} is not an http(s) URL; expected {SPEC_FORM}")
    return base.rstrip("/"), model


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The server's requested pause (a number of seconds) on 429/503; None when absent or not a number."""
    if response.status_code not in RETRY_AFTER_STATUSES:
        return None
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:  # an HTTP date: rare from LM servers, fall back to our own backoff
        return None
    return seconds if seconds >= 0 else None


def is_unsupported(status: int, body: str) -> bool:
    """Whether an error answer to /completions means the server (or model) only chats."""
    if status in UNSUPPORTED_STATUSES:
        return True
    lowered = body.lower()
    return status == 400 and any(word in lowered for word in _UNSUPPORTED_WORDS)


class OpenAICompatibleLM(LanguageModel):
    """Samples programs from an OpenAI-compatible server; one HTTP client and one request bound per object."""

    def __init__(self, spec: str, *, api_key_env: str = "OPENAI_API_KEY", endpoint: Endpoint = "auto",
                 max_concurrency: int = 4, max_retries: int = 5, initial_backoff: float = 0.5,
                 max_backoff: float = 20.0, timeout: float = 120.0, max_tokens: int = 1024,
                 transport: httpx.AsyncBaseTransport | None = None, prompt_style: str = "completion",
                 top_p: float | None = None) -> None:
        super().__init__(spec)
        self.base_url, self.model = parse_spec(spec)
        if prompt_style not in ("completion", "chat"):
            raise LMConfigError(f"the prompt style must be completion or chat, not {prompt_style!r}")
        # chat: the examples and targets as a conversation (prompt.chat_messages) on /chat/completions;
        # otherwise the paper's prompt, continued on /completions (or on /chat/completions when auto
        # finds a server that only chats)
        self.prompt_style = prompt_style
        self.top_p = top_p
        if prompt_style == "chat":
            endpoint = "chat"
        if endpoint not in ("auto", "completions", "chat"):
            raise LMConfigError(f"endpoint must be 'auto', 'completions' or 'chat', not {endpoint!r}")
        if max_concurrency < 1 or max_retries < 0 or max_tokens < 1:
            raise LMConfigError("max_concurrency and max_tokens must be at least 1, max_retries at least 0")
        if initial_backoff < 0 or max_backoff < 0 or timeout <= 0:
            raise LMConfigError("backoffs must be non-negative and the timeout positive")
        self.endpoint: Endpoint = endpoint
        self.max_retries = max_retries
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_tokens = max_tokens
        self._api_key = os.environ.get(api_key_env) or None
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._client = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=httpx.Timeout(timeout),
                                         transport=transport)

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAICompatibleLM({self.spec!r}, endpoint={self.endpoint!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def generate(self, prompt: Prompt, num_samples: int, temperature: float, seed: int,
                       usage: Usage | None = None) -> list[str]:
        """Raw outputs: continuations of prompt.text (completions) or the chat model's code (chat)."""
        if num_samples <= 0:
            return []
        usage = usage if usage is not None else Usage()
        if self.endpoint != "chat":
            try:
                return await self._collect("completions", prompt, num_samples, temperature, seed, usage)
            except LMHTTPError as exc:
                if self.endpoint != "auto" or not is_unsupported(exc.status, exc.body):
                    raise
                log.info("%s answered HTTP %d to /completions; using /chat/completions from now on",
                         self.base_url, exc.status)
                self.endpoint = "chat"
        return await self._collect("chat", prompt, num_samples, temperature, seed, usage)

    async def _collect(self, kind: Literal["completions", "chat"], prompt: Prompt, num_samples: int,
                       temperature: float, seed: int, usage: Usage) -> list[str]:
        """Ask again for what is missing while a server returns fewer choices than `n` (llama.cpp ignores n).

        Each further request uses the next seed, so a seeded server does not repeat its sample. Requests
        that bring nothing count against max_retries; whatever was collected by then is returned."""
        outputs: list[str] = []
        empty_rounds = 0
        round_index = 0
        while len(outputs) < num_samples:
            body = self._payload(kind, prompt, num_samples - len(outputs), temperature, seed + round_index)
            data = await self._post(f"/{self._path(kind)}", body)
            got = self._texts(kind, data)
            self._count(data, usage)
            round_index += 1
            outputs.extend(got[: num_samples - len(outputs)])
            if not got:
                empty_rounds += 1
                if empty_rounds > self.max_retries:
                    break
        if not outputs:
            raise LMError(f"{self.base_url}/{self._path(kind)} returned no choices in {round_index} requests")
        return outputs

    @staticmethod
    def _path(kind: str) -> str:
        return "completions" if kind == "completions" else "chat/completions"

    def _payload(self, kind: str, prompt: Prompt, n: int, temperature: float, seed: int) -> dict[str, Any]:
        common = {"model": self.model, "n": n, "temperature": temperature, "max_tokens": self.max_tokens,
                  "seed": seed, **({"top_p": self.top_p} if self.top_p is not None else {})}
        if kind == "completions":
            return {**common, "prompt": prompt.text, "stop": list(prompt.stop)[:4]}  # the API takes up to 4
        if self.prompt_style == "chat":
            messages = chat_messages(prompt)
        else:
            messages = [{"role": "system", "content": SYSTEM_MESSAGE}, {"role": "user", "content": prompt.text}]
        return {**common, "messages": messages}

    @staticmethod
    def _count(data: Any, usage: Usage) -> None:
        """Add the answer's `usage` (OpenAI's token counts) when the server sends one."""
        counts = data.get("usage") if isinstance(data, dict) else None
        if isinstance(counts, dict):
            for field in ("prompt_tokens", "completion_tokens"):
                value = counts.get(field)
                if isinstance(value, int) and value >= 0:
                    setattr(usage, field, getattr(usage, field) + value)

    def _texts(self, kind: str, data: Any) -> list[str]:
        """The output text of each choice; LMError when the answer is not shaped like the API's."""
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list):
            raise LMError(f"{self.base_url}/{self._path(kind)} answered without a 'choices' list: "
                          f"{self._excerpt(json.dumps(data))}")
        texts = []
        for choice in choices:
            try:
                text = choice["text"] if kind == "completions" else choice["message"]["content"]
            except (KeyError, TypeError):
                raise LMError(f"malformed choice from {self.base_url}/{self._path(kind)}: "
                              f"{self._excerpt(json.dumps(choice))}") from None
            if text is not None and not isinstance(text, str):
                raise LMError(f"non-text choice from {self.base_url}/{self._path(kind)}: {self._excerpt(str(text))}")
            texts.append(text or "")
        return texts

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        """POST and parse JSON, retrying overload answers and transport failures with backoff."""
        attempts = self.max_retries + 1
        last_error = ""
        for attempt in range(1, attempts + 1):
            requested: float | None = None
            try:
                async with self._semaphore:  # held only while a request is in flight, not while backing off
                    response = await self._client.post(path, json=body)
            except httpx.TransportError as exc:  # timeouts, refused or dropped connections
                last_error = f"{type(exc).__name__}: {self._excerpt(str(exc)) or 'no detail'}"
            else:
                if response.status_code in RETRY_STATUSES:
                    last_error = f"HTTP {response.status_code}: {self._excerpt(response.text)}"
                    requested = retry_after_seconds(response)
                elif response.is_error:
                    excerpt = self._excerpt(response.text)
                    raise LMHTTPError(f"{self.base_url}{path} answered HTTP {response.status_code}: {excerpt}",
                                      response.status_code, excerpt)
                else:
                    return self._json(path, response)
            if attempt < attempts:
                pause = self._pause(attempt, requested)
                log.warning("%s%s attempt %d/%d failed (%s); retrying in %.2fs", self.base_url, path, attempt,
                            attempts, last_error, pause)
                await _sleep(pause)
        raise LMError(f"{self.base_url}{path} failed after {attempts} attempts; last error: {last_error}")

    def _pause(self, attempt: int, requested: float | None) -> float:
        """The server's Retry-After when it gave one, else exponential backoff with jitter; both capped."""
        if requested is not None:
            return min(requested, self.max_backoff)
        ceiling = min(self.max_backoff, self.initial_backoff * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # jitter spreads out retries of concurrent requests

    def _json(self, path: str, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise LMError(f"{self.base_url}{path} answered with malformed JSON: "
                          f"{self._excerpt(response.text)}") from None

    def _excerpt(self, text: str) -> str:
        """One short line of a body, with the API key blanked should a server echo it."""
        if self._api_key:
            text = text.replace(self._api_key, "***")
        text = " ".join(text.split())
        return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "..."
