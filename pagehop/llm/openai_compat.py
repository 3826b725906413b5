"""An OpenAI-compatible chat endpoint (vLLM serving Qwen3-VL, or any other) over httpx.

Structured output uses ``response_format={"type": "json_schema", ...}``, which vLLM enforces
with guided decoding. Transient failures (timeouts, connection errors, 429 and 5xx, replies that
are not valid JSON for the schema) are retried with exponential backoff; a semaphore caps how
many requests are in flight at once (``settings.llm.max_concurrency``).
"""

from __future__ import annotations

import asyncio
import base64
import io
import threading
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from pagehop.llm.base import ImageInput, LLMError, T, Usage, load_image, parse_json_reply

if TYPE_CHECKING:
    from pagehop.config import Settings

# Retry these HTTP statuses: overload and server faults are usually gone a moment later.
_RETRY_STATUSES = {408, 409, 429, 500, 502, 503, 504}


class _Retryable(Exception):
    """A failure worth another attempt; the message says what happened."""


_RETRYABLE = (_Retryable, httpx.TimeoutException, httpx.TransportError)


class OpenAICompatibleLLM:
    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 3,
        max_concurrency: int = 8,
        backoff_s: float = 0.5,
        image_max_pixels: int = 1_000_000,
        temperature: float = 0.0,
    ) -> None:
        self.name = f"openai-compatible:{model}"
        self.model = model
        self.usage = Usage()
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = httpx.Timeout(timeout_s)
        self._max_retries = max_retries
        self._backoff_s = backoff_s
        self._image_max_pixels = image_max_pixels
        self._temperature = temperature
        self._max_concurrency = max_concurrency
        self._sync_slots = threading.BoundedSemaphore(max_concurrency)
        # asyncio semaphores belong to one event loop; keep one per loop.
        self._async_slots: dict[int, asyncio.Semaphore] = {}
        self._client = httpx.Client(timeout=self._timeout, headers=self._headers)

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAICompatibleLLM:
        llm = settings.llm
        if not llm.base_url:
            raise ValueError("llm.base_url is empty: no OpenAI-compatible endpoint configured")
        return cls(
            llm.base_url,
            llm.model,
            api_key=llm.api_key.get_secret_value() if llm.api_key else None,
            timeout_s=llm.timeout_s,
            max_retries=llm.max_retries,
            max_concurrency=llm.max_concurrency,
            image_max_pixels=settings.agent.image_max_pixels,
        )

    def close(self) -> None:
        self._client.close()

    # -- the LLM protocol --------------------------------------------------------------

    def complete_json(
        self,
        messages: list[dict[str, Any]],
        schema: type[T],
        *,
        images: Sequence[ImageInput] = (),
        max_tokens: int = 1024,
        usage: Usage | None = None,
    ) -> T:
        payload = self._payload(messages, schema, images, max_tokens)
        errors: list[str] = []
        for delay in self._delays():
            time.sleep(delay)
            started = time.perf_counter()
            try:
                with self._sync_slots:
                    response = self._client.post(self._url, json=payload)
                return self._accept(response, schema, time.perf_counter() - started, usage)
            except _RETRYABLE as exc:
                errors.append(_describe(exc))
        raise self._exhausted(errors)

    async def acomplete_json(
        self,
        messages: list[dict[str, Any]],
        schema: type[T],
        *,
        images: Sequence[ImageInput] = (),
        max_tokens: int = 1024,
        usage: Usage | None = None,
    ) -> T:
        payload = self._payload(messages, schema, images, max_tokens)
        slots = self._async_slots.setdefault(id(asyncio.get_running_loop()), asyncio.Semaphore(self._max_concurrency))
        errors: list[str] = []
        async with httpx.AsyncClient(timeout=self._timeout, headers=self._headers) as client:
            for delay in self._delays():
                await asyncio.sleep(delay)
                started = time.perf_counter()
                try:
                    async with slots:
                        response = await client.post(self._url, json=payload)
                    return self._accept(response, schema, time.perf_counter() - started, usage)
                except _RETRYABLE as exc:
                    errors.append(_describe(exc))
        raise self._exhausted(errors)

    # -- retry policy, shared by the sync and async calls ------------------------------

    def _delays(self) -> Iterator[float]:
        """Seconds to wait before each attempt: none before the first, then exponential backoff."""
        yield 0.0
        for retry in range(self._max_retries):
            yield self._backoff_s * 2**retry

    def _exhausted(self, errors: list[str]) -> LLMError:
        return LLMError(f"{self.name}: no valid answer after {len(errors)} attempts: {errors[-1]}")

    # -- request and response ----------------------------------------------------------

    def _payload(
        self,
        messages: list[dict[str, Any]],
        schema: type[T],
        images: Sequence[ImageInput],
        max_tokens: int,
    ) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": self._with_images(messages, images),
            "max_tokens": max_tokens,
            "temperature": self._temperature,
            # vLLM enforces the schema by guided decoding. No "strict": OpenAI's strict mode rejects
            # schemas with optional fields; replies are validated here anyway.
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema()},
            },
        }

    def _with_images(self, messages: list[dict[str, Any]], images: Sequence[ImageInput]) -> list[dict[str, Any]]:
        """Attach the images to the last user message as base64 data URLs (OpenAI's content parts)."""
        if not images:
            return messages
        last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
        parts: list[dict[str, Any]] = [
            {"type": "image_url", "image_url": {"url": self._data_url(image)}} for image in images
        ]
        parts.append({"type": "text", "text": messages[last_user]["content"]})
        out = list(messages)
        out[last_user] = {"role": "user", "content": parts}
        return out

    def _data_url(self, image: ImageInput) -> str:
        buffer = io.BytesIO()
        load_image(image, self._image_max_pixels).save(buffer, format="PNG")
        return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")

    def _accept(self, response: httpx.Response, schema: type[T], seconds: float, usage: Usage | None) -> T:
        if response.status_code in _RETRY_STATUSES:
            raise _Retryable(f"HTTP {response.status_code}: {response.text[:200]}")
        if response.status_code >= 400:  # a bad request will not improve by asking again
            raise LLMError(f"{self.name}: HTTP {response.status_code}: {response.text[:500]}")
        try:
            body = response.json()
            content = body["choices"][0]["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise _Retryable(f"malformed response body: {exc}") from exc
        reported = body.get("usage") or {}
        cost = Usage(
            calls=1,
            prompt_tokens=int(reported.get("prompt_tokens") or 0),
            completion_tokens=int(reported.get("completion_tokens") or 0),
            seconds=seconds,
        )
        # A call that reached the model costs tokens even if its JSON is unusable.
        self.usage.add(cost)
        if usage is not None:
            usage.add(cost)
        try:
            return parse_json_reply(content, schema)
        except ValueError as exc:
            raise _Retryable(f"reply is not valid {schema.__name__} JSON: {exc}") from exc


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
