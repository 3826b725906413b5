"""TransformersLLM: the tiny random Qwen3-VL, forced through the schema by xgrammar."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import torch
from pydantic import BaseModel, Field

from pagehop.llm.base import Usage
from pagehop.llm.transformers_llm import ASCII_CHARS, TransformersLLM, constrained_schema, worst_case_chars
from pagehop.testing.tiny_models import render_test_page, tiny_qwen3vl_path


class Step(BaseModel):
    id: str
    text: str
    depends_on: list[str] = Field(default_factory=list)


class Plan(BaseModel):
    steps: list[Step]
    done: bool
    count: int
    kind: str = Field(pattern="^(lookup|compare)$")


@pytest.fixture(scope="module")
def tiny_llm() -> Iterator[TransformersLLM]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the model is tiny; more threads only fight over a shared CPU
    yield TransformersLLM(tiny_qwen3vl_path(), max_string_chars=8, max_items=2, string_chars=ASCII_CHARS)
    torch.set_num_threads(threads)


def test_constrained_schema_bounds_strings_arrays_and_integers() -> None:
    bounded = constrained_schema(Plan.model_json_schema(), max_string_chars=8, max_items=2)
    step = bounded["$defs"]["Step"]["properties"]
    assert step["text"]["pattern"].endswith("{0,8}$")
    assert step["depends_on"]["maxItems"] == 2
    props = bounded["properties"]
    assert props["kind"]["pattern"] == "^(lookup|compare)$"  # an explicit pattern is kept
    assert (props["count"]["minimum"], props["count"]["maximum"]) == (-(10**9), 10**9)
    # The original schema is untouched.
    assert "pattern" not in Plan.model_json_schema()["$defs"]["Step"]["properties"]["text"]
    assert worst_case_chars(bounded, 8) > 2 * (2 + 4 * 8)


def test_random_model_returns_schema_valid_json_with_an_image(tiny_llm: TransformersLLM) -> None:
    usage = Usage()
    messages = [{"role": "system", "content": "Reply in JSON."}, {"role": "user", "content": "Plan the search."}]
    plan = tiny_llm.complete_json(messages, Plan, images=[render_test_page()], max_tokens=16, usage=usage)
    assert isinstance(plan, Plan)
    assert len(plan.steps) <= 2 and all(len(s.text) <= 8 for s in plan.steps)
    assert all(re.fullmatch(r"[ -~]*", s.text) for s in plan.steps)  # no special tokens leaked in
    assert abs(plan.count) <= 10**9
    assert usage.calls == 1 and usage.completion_tokens > 0
    # The image's vision tokens are part of the prompt.
    assert usage.prompt_tokens > 30
    assert tiny_llm.usage.calls >= 1


def test_settings_select_the_in_process_backend(tmp_path) -> None:
    from pagehop.config import Settings
    from pagehop.llm.base import make_llm
    from pagehop.models import ModelNotAvailable

    settings = Settings(workspace=tmp_path, llm={"backend": "transformers", "model": str(tiny_qwen3vl_path())})
    assert settings.llm_configured
    assert isinstance(make_llm(settings), TransformersLLM)
    missing = Settings(workspace=tmp_path, llm={"backend": "transformers", "model": str(tmp_path / "no-model")})
    with pytest.raises(ModelNotAvailable, match="does not exist"):
        make_llm(missing)
