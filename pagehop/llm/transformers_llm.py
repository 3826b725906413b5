"""Qwen3-VL in-process (transformers), with JSON-schema-constrained decoding by xgrammar.

Every reply is forced through the schema's grammar, so even a random-weight model returns
valid JSON. Decoding uses a *constrained copy* of the schema: free strings get a pattern with
a length bound (no quotes, backslashes or control characters) and arrays a maximum length,
because an unbounded string may never close before ``max_new_tokens`` runs out. The chat and
vision special tokens are suppressed during decoding so they can never land inside a string.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pagehop.llm.base import ImageInput, LLMError, T, Usage, load_image, parse_json_reply

_INT_BOUND = 10**9


# Any character but a quote, a backslash or a control character: strings need no escapes.
TEXT_CHARS = '[^"\\\\\\x00-\\x1f]'
# Printable ASCII without quote and backslash: one byte-level token per character (tests).
ASCII_CHARS = "[ !#-\\[\\]-~]"


def constrained_schema(
    schema: dict[str, Any], *, max_string_chars: int, max_items: int, chars: str = TEXT_CHARS
) -> dict[str, Any]:
    """A copy of a JSON schema that a grammar can always finish within a bounded length."""
    out = copy.deepcopy(schema)
    string_pattern = f"^{chars}{{0,{max_string_chars}}}$"

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            kind = node.get("type")
            free_string = kind == "string" and not {"enum", "const", "pattern", "format"} & node.keys()
            if free_string:
                node["pattern"] = string_pattern
                node.pop("maxLength", None)
            if kind == "integer":  # digits never stop otherwise
                node["minimum"] = max(int(node.get("minimum", -_INT_BOUND)), -_INT_BOUND)
                node["maximum"] = min(int(node.get("maximum", _INT_BOUND)), _INT_BOUND)
            if kind == "array":
                node["maxItems"] = min(int(node.get("maxItems", max_items)), max_items)
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(out)
    return out


def worst_case_chars(schema: dict[str, Any], max_string_chars: int) -> int:
    """An upper bound on the compact JSON length of any instance of a `constrained_schema` output.

    Strings count 4 bytes per character (UTF-8), so the bound also holds for byte-level tokens.
    Numbers are not bounded by the grammar; they are counted as 32 characters.
    """
    defs = schema.get("$defs", {})

    def size(node: dict[str, Any]) -> int:
        if "$ref" in node:
            return size(defs[node["$ref"].split("/")[-1]])
        for union in ("anyOf", "oneOf"):
            if union in node:
                return max(size(option) for option in node[union])
        if "enum" in node or "const" in node:
            values = node.get("enum", [node.get("const")])
            return max(len(json.dumps(v)) for v in values)
        kind = node.get("type")
        if kind == "object":
            props = node.get("properties", {})
            return 2 + sum(len(json.dumps(key)) + 4 + size(value) for key, value in props.items())
        if kind == "array":
            return 2 + int(node.get("maxItems", 0)) * (size(node.get("items", {})) + 2)
        if kind == "string":
            return 2 + 4 * max_string_chars
        if kind == "integer":
            return 11
        if kind == "boolean":
            return 5
        if kind == "null":
            return 4
        return 32

    return size(schema)


class TransformersLLM:
    """Qwen3-VL (`Qwen3VLForConditionalGeneration`) plus `Qwen3VLImageOnlyProcessor`, greedy decoding."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        device: str = "cpu",
        max_string_chars: int = 300,
        max_items: int = 8,
        image_max_pixels: int = 512 * 512,
        string_chars: str = TEXT_CHARS,
    ) -> None:
        import torch
        import xgrammar
        from transformers import Qwen3VLForConditionalGeneration

        from pagehop.llm.qwen3vl_processor import Qwen3VLImageOnlyProcessor

        self.name = f"transformers:{Path(model_path).name}"
        self.usage = Usage()
        self._device = device
        self._max_string_chars = max_string_chars
        self._max_items = max_items
        self._image_max_pixels = image_max_pixels
        self._string_chars = string_chars
        self.processor = Qwen3VLImageOnlyProcessor.from_pretrained(str(model_path))
        self.model = Qwen3VLForConditionalGeneration.from_pretrained(str(model_path)).to(device).eval()  # type: ignore[arg-type]
        tokenizer = self.processor.tokenizer
        eos_id = int(tokenizer.convert_tokens_to_ids(tokenizer.eos_token))
        vocab_size = int(self.model.config.text_config.vocab_size)
        self._tokenizer_info = xgrammar.TokenizerInfo.from_huggingface(
            tokenizer, vocab_size=vocab_size, stop_token_ids=[eos_id]
        )
        self._compiler = xgrammar.GrammarCompiler(self._tokenizer_info)
        self._compiled: dict[type, tuple[Any, int]] = {}
        # Chat/vision specials are plain text to the grammar; suppress them so they never appear.
        self._suppressed = [int(i) for i in tokenizer.all_special_ids if int(i) != eos_id]
        self._eos_id = eos_id
        self._lock = threading.Lock()  # one generate at a time: the model is not re-entrant on CPU
        self._torch = torch

    def _grammar(self, schema: type[T]) -> tuple[Any, int]:
        """The compiled grammar for ``schema`` and the most tokens one of its answers can take."""
        if schema not in self._compiled:
            bounded = constrained_schema(
                schema.model_json_schema(),
                max_string_chars=self._max_string_chars,
                max_items=self._max_items,
                chars=self._string_chars,
            )
            compiled = self._compiler.compile_json_schema(bounded, any_whitespace=False, strict_mode=True)
            # +8: the separators' spaces and the end-of-sequence token.
            bound = worst_case_chars(bounded, self._max_string_chars) + 8
            self._compiled[schema] = (compiled, bound)
        return self._compiled[schema]

    def complete_json(
        self,
        messages: list[dict[str, Any]],
        schema: type[T],
        *,
        images: Sequence[ImageInput] = (),
        max_tokens: int = 1024,
        usage: Usage | None = None,
        deadline: float | None = None,  # generation is bounded by the grammar and max_tokens instead
    ) -> T:
        import xgrammar

        pictures = [load_image(image, self._image_max_pixels) for image in images]
        chat = _with_image_parts(messages, len(pictures))
        prompt = self.processor.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        inputs = self.processor(text=[prompt], images=pictures or None, return_tensors="pt").to(self._device)
        grammar, worst_case = self._grammar(schema)
        started = time.perf_counter()
        with self._lock, self._torch.inference_mode():
            output = self.model.generate(
                **inputs,
                # Never cut a reply short: the grammar bounds it, so allow its worst case.
                max_new_tokens=max(max_tokens, worst_case),
                do_sample=False,
                # A new processor per call: xgrammar's holds per-generation matcher state.
                logits_processor=[xgrammar.contrib.hf.LogitsProcessor(grammar)],
                suppress_tokens=self._suppressed,
                eos_token_id=self._eos_id,
            )
        new_tokens = output[0, inputs["input_ids"].shape[1] :]
        cost = Usage(
            calls=1,
            prompt_tokens=int(inputs["input_ids"].shape[1]),
            completion_tokens=int(new_tokens.shape[0]),
            seconds=time.perf_counter() - started,
        )
        self.usage.add(cost)
        if usage is not None:
            usage.add(cost)
        text = self.processor.tokenizer.decode(new_tokens, skip_special_tokens=True)
        try:
            return parse_json_reply(text, schema)
        except ValueError as exc:
            raise LLMError(
                f"{self.name}: output is not valid {schema.__name__} JSON "
                f"(max_tokens={max_tokens} may be too small): {exc}"
            ) from exc

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
        return await asyncio.to_thread(
            self.complete_json, messages, schema, images=images, max_tokens=max_tokens, usage=usage
        )


def _with_image_parts(messages: list[dict[str, Any]], num_images: int) -> list[dict[str, Any]]:
    """Chat-template input: images become ``{"type": "image"}`` parts before the last user text."""
    if not num_images:
        return messages
    last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
    parts: list[dict[str, Any]] = [{"type": "image"} for _ in range(num_images)]
    parts.append({"type": "text", "text": messages[last_user]["content"]})
    out = list(messages)
    out[last_user] = {"role": "user", "content": parts}
    return out
