"""OpenAICompatibleLLM against a real HTTP server on loopback that answers from a script."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from pydantic import BaseModel

from pagehop.config import Settings
from pagehop.llm.base import LLMError, Usage, make_llm
from pagehop.llm.openai_compat import OpenAICompatibleLLM
from pagehop.testing.openai_server import Reply, ScriptedOpenAIServer
from pagehop.testing.tiny_models import render_test_page


class City(BaseModel):
    name: str
    population: int


MESSAGES = [{"role": "system", "content": "rules"}, {"role": "user", "content": "Largest city?"}]
VALID = '{"name": "Lagos", "population": 15000000}'


def make(server: ScriptedOpenAIServer, **kw: Any) -> OpenAICompatibleLLM:
    options: dict[str, Any] = {"timeout_s": 2.0, "max_retries": 3, "backoff_s": 0.01}
    options.update(kw)
    return OpenAICompatibleLLM(server.base_url, "test-model", **options)


def test_valid_reply_is_parsed_and_usage_recorded() -> None:
    with ScriptedOpenAIServer([Reply(content=VALID, prompt_tokens=42, completion_tokens=7)]) as server:
        llm = make(server)
        call_usage = Usage()
        city = llm.complete_json(MESSAGES, City, usage=call_usage)
    assert city == City(name="Lagos", population=15_000_000)
    assert (call_usage.calls, call_usage.prompt_tokens, call_usage.completion_tokens) == (1, 42, 7)
    assert llm.usage.tokens == 49
    request = server.requests[0]
    assert request["model"] == "test-model"
    schema = request["response_format"]["json_schema"]
    assert request["response_format"]["type"] == "json_schema"
    assert schema["name"] == "City" and set(schema["schema"]["properties"]) == {"name", "population"}


def test_code_fenced_json_is_accepted() -> None:
    with ScriptedOpenAIServer([Reply(content=f"```json\n{VALID}\n```")]) as server:
        assert make(server).complete_json(MESSAGES, City).name == "Lagos"


def test_malformed_json_5xx_and_timeout_are_retried() -> None:
    script = [
        Reply(content='{"name": "Lagos", "population": '),  # truncated JSON
        Reply(content='{"name": "Lagos"}'),  # valid JSON, wrong schema
        Reply(status=503, raw_body='{"error": "overloaded"}'),
        Reply(content=VALID, delay_s=1.5),  # slower than the client's timeout
        Reply(content=VALID),
    ]
    with ScriptedOpenAIServer(script) as server:
        llm = make(server, timeout_s=0.5, max_retries=4)
        assert llm.complete_json(MESSAGES, City).population == 15_000_000
    assert len(server.requests) == 5
    # The two malformed replies reached the model and cost tokens; the 503 and the timeout did not.
    assert llm.usage.calls == 3


def test_gives_up_after_the_retries_with_a_clear_error() -> None:
    with ScriptedOpenAIServer([Reply(status=500, raw_body="boom")] * 3) as server:
        llm = make(server, max_retries=2)
        with pytest.raises(LLMError, match=r"3 attempts.*HTTP 500"):
            llm.complete_json(MESSAGES, City)
    assert len(server.requests) == 3


def test_client_errors_are_not_retried() -> None:
    script = [Reply(status=400, raw_body='{"error": "bad schema"}'), Reply(content=VALID)]
    with ScriptedOpenAIServer(script) as server, pytest.raises(LLMError, match="HTTP 400"):
        make(server).complete_json(MESSAGES, City)
    assert len(server.requests) == 1


def test_images_travel_as_data_urls_in_the_last_user_message() -> None:
    with ScriptedOpenAIServer([Reply(content=VALID)]) as server:
        make(server, image_max_pixels=10_000).complete_json(MESSAGES, City, images=[render_test_page()])
    sent = server.requests[0]["messages"]
    assert sent[0] == MESSAGES[0]
    parts = sent[1]["content"]
    assert parts[0]["type"] == "image_url"
    assert parts[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert parts[-1] == {"type": "text", "text": "Largest city?"}


def test_concurrency_is_capped() -> None:
    in_flight = 0
    peak = 0
    lock = threading.Lock()

    def slow(_: dict[str, Any]) -> Reply:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.1)
        with lock:
            in_flight -= 1
        return Reply(content=VALID)

    with ScriptedOpenAIServer(slow) as server:
        llm = make(server, max_concurrency=2)
        threads = [threading.Thread(target=llm.complete_json, args=(MESSAGES, City)) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(server.requests) == 6
    assert peak == 2


def test_async_twin_retries_and_parses() -> None:
    async def run(llm: OpenAICompatibleLLM) -> list[City]:
        return list(await asyncio.gather(*(llm.acomplete_json(MESSAGES, City) for _ in range(3))))

    script = [
        Reply(status=502, raw_body="bad gateway"),
        Reply(content=VALID),
        Reply(content=VALID),
        Reply(content=VALID),
    ]
    with ScriptedOpenAIServer(script) as server:
        cities = asyncio.run(run(make(server)))
    assert [c.name for c in cities] == ["Lagos"] * 3


def test_make_llm_follows_the_settings() -> None:
    assert make_llm(Settings(workspace="unused")) is None
    llm = make_llm(Settings(workspace="unused", llm={"base_url": "http://127.0.0.1:9/v1", "model": "m"}))
    assert isinstance(llm, OpenAICompatibleLLM) and llm.model == "m"
