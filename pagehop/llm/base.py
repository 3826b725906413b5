"""One small interface for every LLM backend: chat messages in, a validated pydantic object out.

Backends: `OpenAICompatibleLLM` (vLLM or any OpenAI-compatible server, over HTTP) and
`TransformersLLM` (Qwen3-VL in-process with schema-constrained decoding). Callers pass
OpenAI-style messages whose ``content`` is a string; page images travel separately and are
attached to the last user message by the backend, so prompts never depend on the backend.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from PIL import Image
from pydantic import BaseModel, ValidationError

if TYPE_CHECKING:
    from pagehop.config import Settings

T = TypeVar("T", bound=BaseModel)
ImageInput = Image.Image | Path | str


class LLMError(RuntimeError):
    """The model gave no usable answer (after the retries the backend allows)."""


class Usage(BaseModel):
    """What calls cost so far. Thread-safe accumulation through `add`."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: Usage) -> None:
        with _usage_lock:
            self.calls += other.calls
            self.prompt_tokens += other.prompt_tokens
            self.completion_tokens += other.completion_tokens
            self.seconds += other.seconds


_usage_lock = threading.Lock()


@runtime_checkable
class LLM(Protocol):
    """A chat model that answers with JSON matching a pydantic schema."""

    name: str
    usage: Usage  # running total over the backend's lifetime

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
        """Answer ``messages`` with an instance of ``schema``; ``usage`` (if given) also gets this call's cost.

        ``deadline`` (a ``time.time()`` value) bounds the call with its retries. Raises LLMError when
        no valid answer came back in time.
        """
        ...

    async def acomplete_json(
        self,
        messages: list[dict[str, Any]],
        schema: type[T],
        *,
        images: Sequence[ImageInput] = (),
        max_tokens: int = 1024,
        usage: Usage | None = None,
        deadline: float | None = None,
    ) -> T: ...


def load_image(image: ImageInput, max_pixels: int | None = None) -> Image.Image:
    """An RGB PIL image, downscaled (aspect kept) to at most ``max_pixels`` pixels."""
    picture = image if isinstance(image, Image.Image) else Image.open(image)
    picture = picture.convert("RGB")
    if max_pixels and picture.width * picture.height > max_pixels:
        scale = (max_pixels / (picture.width * picture.height)) ** 0.5
        size = (max(1, int(picture.width * scale)), max(1, int(picture.height * scale)))
        picture = picture.resize(size, Image.Resampling.LANCZOS)
    return picture


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)
# Reasoning models (Qwen3, DeepSeek-R1) may think in the content; chat templates that open the
# block in the prompt leave only the closing tag in the reply.
_THINKING = re.compile(r"^\s*(?:<think>)?.*?</think>", re.DOTALL)


def parse_json_reply(text: str, schema: type[T]) -> T:
    """Validate a model's reply; drops a leading ``<think>...</think>`` and a Markdown code fence.

    Raises ValueError (json or pydantic) when the reply does not match the schema.
    """
    text = _THINKING.sub("", text, count=1)
    match = _FENCE.match(text)
    body = match.group(1) if match else text.strip()
    # strict=False: models sometimes put raw control characters (newlines) inside strings.
    data = json.loads(body, strict=False)
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"reply does not match {schema.__name__}: {exc}") from exc


def make_llm(settings: Settings) -> LLM | None:
    """The configured backend, or None when no LLM is configured (the agent then uses its policy)."""
    if not settings.llm_configured:
        return None
    if settings.llm.backend == "transformers":
        from pagehop.llm.transformers_llm import TransformersLLM
        from pagehop.models import resolve_model, torch_device

        return TransformersLLM(resolve_model(settings.llm.model), device=torch_device(settings.models.device))
    from pagehop.llm.openai_compat import OpenAICompatibleLLM

    return OpenAICompatibleLLM.from_settings(settings)
