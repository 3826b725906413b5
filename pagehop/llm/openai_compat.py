"""An OpenAI-compatible chat endpoint (vLLM serving Qwen3-VL, Ollama, llama.cpp, ...) through the
official ``openai`` SDK.

* Transport faults (timeouts, connection resets, 408/409/429/5xx) are retried by the SDK, which
  honours ``Retry-After`` and adds jitter; ``retry_backoff_s`` scales its exponential backoff and a
  caller's deadline cuts it short (a retry that would end past the deadline is not made).
* Structured output asks for ``response_format`` ``json_schema`` (vLLM enforces it by guided
  decoding). A server that rejects ``json_schema`` is asked once more with ``json_object`` and the
  schema in the prompt; the instance then stays in that mode. Every reply is validated by pydantic.
* A reply that is not valid for the schema (prose, broken or empty JSON, a schema violation) is
  sent back once per ``schema_retries`` with the validation error, then the call fails with LLMError.
* Reasoning (``reasoning_content``, ``<think>...</think>``) never reaches the parser.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import io
import json
import threading
import time
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any, Literal

import openai
from pydantic import BaseModel

from pagehop.llm.base import ImageInput, LLMError, T, Usage, load_image, parse_json_reply

if TYPE_CHECKING:
    from pagehop.config import Settings

StructuredOutput = Literal["auto", "json_schema", "json_object"]
SDK_INITIAL_RETRY_DELAY = 0.5  # openai._constants.INITIAL_RETRY_DELAY: the base our backoff setting scales

# The deadline (time.time()) of the call in progress, read by the SDK's retry hooks below.
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("pagehop_llm_deadline", default=None)


class _BudgetedRetries:
    """The SDK's retry pacing, scaled by our backoff setting and never past the caller's deadline."""

    backoff_scale: float = 1.0
    timeout: Any  # the client's default per-request timeout (set by the SDK)

    def _calculate_retry_timeout(self, remaining_retries: int, options: Any, response_headers: Any = None) -> float:
        delay: float = super()._calculate_retry_timeout(remaining_retries, options, response_headers)  # type: ignore[misc]
        if self._parse_retry_after_header(response_headers) is None:  # the server named no delay: ours
            delay *= self.backoff_scale
        deadline = _deadline.get()
        return delay if deadline is None else min(delay, max(0.0, deadline - time.time()))

    def _should_retry(self, response: Any) -> bool:
        deadline = _deadline.get()
        if deadline is not None:
            wait = self._parse_retry_after_header(response.headers) or 0.0
            if time.time() + wait >= deadline:
                return False  # the retry could not finish within the caller's budget
        return bool(super()._should_retry(response))  # type: ignore[misc]

    def _parse_retry_after_header(self, response_headers: Any = None) -> float | None:
        return super()._parse_retry_after_header(response_headers)  # type: ignore[misc]

    def _clip_to_deadline(self, options: Any) -> Any:
        """Every attempt (first or retry) waits at most until the deadline; none starts after it."""
        deadline = _deadline.get()
        if deadline is None:
            return options
        remaining = deadline - time.time()
        if remaining <= 0:
            raise LLMError("the time budget is spent")
        configured = options.timeout if isinstance(options.timeout, int | float) else self.timeout
        limit = configured if isinstance(configured, int | float) else getattr(configured, "read", None)
        options.timeout = remaining if limit is None else min(float(limit), remaining)
        return options


class _Client(_BudgetedRetries, openai.OpenAI):
    def _prepare_options(self, options: Any) -> Any:
        return self._clip_to_deadline(super()._prepare_options(options))


class _AsyncClient(_BudgetedRetries, openai.AsyncOpenAI):
    async def _prepare_options(self, options: Any) -> Any:
        return self._clip_to_deadline(await super()._prepare_options(options))


class _Attempt(BaseModel):
    """What one request came back with: the reply text and the server's token counts."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


SCHEMA_PROMPT = "Answer with one JSON object only, matching this JSON schema:\n{schema}"
REPAIR_PROMPT = "Your reply could not be used: {error}\nAnswer again with one JSON object only, matching the schema."


class Probe(BaseModel):
    ok: bool


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
        retry_backoff_s: float = SDK_INITIAL_RETRY_DELAY,
        schema_retries: int = 1,
        structured_output: StructuredOutput = "auto",
        image_max_pixels: int = 1_000_000,
        temperature: float = 0.0,
    ) -> None:
        self.name = f"openai-compatible:{model}"
        self.model = model
        self.usage = Usage()
        self.structured_output: StructuredOutput = structured_output
        self._schema_retries = schema_retries
        self._image_max_pixels = image_max_pixels
        self._temperature = temperature
        self._max_concurrency = max_concurrency
        self._sync_slots = threading.BoundedSemaphore(max_concurrency)
        options: dict[str, Any] = {
            "base_url": base_url.rstrip("/"),
            # Local servers (vLLM without --api-key, Ollama, llama.cpp) take any key; the SDK needs one.
            "api_key": api_key or "not-needed",
            "timeout": timeout_s,
            "max_retries": max_retries,
        }
        self._options = options
        self._client = _Client(**options)
        self._client.backoff_scale = retry_backoff_s / SDK_INITIAL_RETRY_DELAY
        # An async client's connections belong to the event loop that opened them: one per loop,
        # created on first use there (the sync client serves every thread).
        self._async: tuple[asyncio.AbstractEventLoop, _AsyncClient, asyncio.Semaphore] | None = None

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
            retry_backoff_s=llm.retry_backoff_s,
            schema_retries=llm.schema_retries,
            structured_output=llm.structured_output,
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
        deadline: float | None = None,
    ) -> T:
        dialogue = self._dialogue(messages, schema, images, max_tokens)
        request = next(dialogue)
        while True:
            with self._sync_slots:
                outcome = self._send(lambda **kw: self._client.chat.completions.create(**kw), request, deadline)
            self._record(outcome, usage)
            try:
                request = dialogue.send(outcome)
            except StopIteration as done:
                return done.value

    async def acomplete_json(
        self,
        messages: list[dict[str, Any]],
        schema: type[T],
        *,
        images: Sequence[ImageInput] = (),
        max_tokens: int = 1024,
        usage: Usage | None = None,
        deadline: float | None = None,
    ) -> T:
        client, slots = self._async_client()
        dialogue = self._dialogue(messages, schema, images, max_tokens)
        request = next(dialogue)
        while True:
            async with slots:
                outcome = await self._asend(lambda **kw: client.chat.completions.create(**kw), request, deadline)
            self._record(outcome, usage)
            try:
                request = dialogue.send(outcome)
            except StopIteration as done:
                return done.value

    def served_models(self) -> list[str]:
        """The model ids the server lists (``GET /models``); LLMError when it does not answer."""
        try:
            return [model.id for model in self._client.models.list()]
        except openai.APIError as exc:
            raise LLMError(f"{self.name}: {_describe(exc)}") from exc

    def probe_structured_output(self) -> StructuredOutput:
        """The structured-output mode the server accepts, found with one tiny call (for ``pagehop doctor``)."""
        self.complete_json([{"role": "user", "content": 'Reply {"ok": true}.'}], Probe, max_tokens=32)
        return self.structured_output if self.structured_output != "auto" else "json_schema"

    # -- one request and its outcome, shared by the sync and async calls -----------------

    def _send(
        self, create: Callable[..., Any], request: dict[str, Any], deadline: float | None
    ) -> _Attempt | Exception:
        token = _deadline.set(deadline)
        try:
            started = time.perf_counter()
            return _attempt(create(**request), time.perf_counter() - started)
        except (openai.APIError, LLMError, ValueError) as exc:  # ValueError: a body that is not JSON
            return exc
        finally:
            _deadline.reset(token)

    async def _asend(
        self, create: Callable[..., Awaitable[Any]], request: dict[str, Any], deadline: float | None
    ) -> _Attempt | Exception:
        token = _deadline.set(deadline)
        try:
            started = time.perf_counter()
            return _attempt(await create(**request), time.perf_counter() - started)
        except (openai.APIError, LLMError, ValueError) as exc:  # ValueError: a body that is not JSON
            return exc
        finally:
            _deadline.reset(token)

    def _record(self, outcome: _Attempt | Exception, usage: Usage | None) -> None:
        if isinstance(outcome, Exception):
            return  # nothing reached the model (or the server reported no cost)
        cost = Usage(
            calls=1,
            prompt_tokens=outcome.prompt_tokens,
            completion_tokens=outcome.completion_tokens,
            seconds=outcome.seconds,
        )
        self.usage.add(cost)
        if usage is not None:
            usage.add(cost)

    def _async_client(self) -> tuple[_AsyncClient, asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop:
            client = _AsyncClient(**self._options)
            client.backoff_scale = self._client.backoff_scale
            self._async = (loop, client, asyncio.Semaphore(self._max_concurrency))
        return self._async[1], self._async[2]

    # -- the conversation: requests out, outcomes in, a validated object at the end ----

    def _dialogue(
        self, messages: list[dict[str, Any]], schema: type[T], images: Sequence[ImageInput], max_tokens: int
    ) -> Generator[dict[str, Any], _Attempt | Exception, T]:
        """Yields each request; is sent each outcome; returns the parsed reply or raises LLMError."""
        chat = self._with_images(messages, images)
        repairs: list[dict[str, Any]] = []
        errors: list[str] = []
        while True:
            mode = "json_object" if self.structured_output == "json_object" else "json_schema"
            outcome = yield self._request(chat + repairs, schema, mode, max_tokens)
            if isinstance(outcome, ValueError):  # the server's body was not JSON: ask again, as it was
                errors.append(f"response body is not JSON: {str(outcome)[:200]}")
                if len(errors) > self._schema_retries:
                    raise LLMError(f"{self.name}: no valid answer after {len(errors)} replies: {errors[-1]}")
                continue
            if isinstance(outcome, Exception):
                if mode == "json_schema" and self.structured_output == "auto" and _rejects_json_schema(outcome):
                    self.structured_output = "json_object"  # once per instance: later calls start there
                    continue
                raise LLMError(f"{self.name}: {_describe(outcome)}")
            try:
                return parse_json_reply(outcome.text, schema)
            except ValueError as exc:
                errors.append(f"reply is not valid {schema.__name__} JSON: {str(exc)[:300]}")
            if len(errors) > self._schema_retries:
                raise LLMError(f"{self.name}: no valid answer after {len(errors)} replies: {errors[-1]}")
            repairs = [
                {"role": "assistant", "content": outcome.text[:2000]},
                {"role": "user", "content": REPAIR_PROMPT.format(error=errors[-1])},
            ]

    def _request(
        self, messages: list[dict[str, Any]], schema: type[BaseModel], mode: str, max_tokens: int
    ) -> dict[str, Any]:
        if mode == "json_schema":
            # No "strict": OpenAI's strict mode rejects optional fields; replies are validated here anyway.
            response_format: dict[str, Any] = {
                "type": "json_schema",
                "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema()},
            }
        else:
            response_format = {"type": "json_object"}
            instruction = SCHEMA_PROMPT.format(schema=json.dumps(schema.model_json_schema(), separators=(",", ":")))
            messages = [{"role": "system", "content": instruction}, *messages]
        return {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": self._temperature,
            "response_format": response_format,
        }

    def _with_images(self, messages: list[dict[str, Any]], images: Sequence[ImageInput]) -> list[dict[str, Any]]:
        """Attach the images to the last user message as base64 data URLs (OpenAI's content parts)."""
        if not images:
            return list(messages)
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


def _attempt(completion: Any, seconds: float) -> _Attempt:
    """The answer text of a chat completion; reasoning fields are ignored (never parsed)."""
    choices = getattr(completion, "choices", None)
    if not isinstance(completion, BaseModel) or not choices:
        # A 200 whose body is not a chat completion (some proxies send HTML or plain text).
        return _Attempt(text=str(completion)[:500] if completion is not None else "", seconds=seconds)
    message = getattr(choices[0], "message", None)
    reported = getattr(completion, "usage", None)
    return _Attempt(
        text=(getattr(message, "content", None) or "") if message is not None else "",
        prompt_tokens=int(getattr(reported, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(reported, "completion_tokens", 0) or 0),
        seconds=seconds,
    )


def _rejects_json_schema(exc: Exception) -> bool:
    """A 400/422 that names the structured-output request (not some other bad field)."""
    if not isinstance(exc, openai.BadRequestError | openai.UnprocessableEntityError):
        return False
    text = str(exc).lower()
    return "json_schema" in text or "response_format" in text


def _describe(exc: Exception) -> str:
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}: {str(exc.message)[:300]}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
