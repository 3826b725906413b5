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
    options: dict[str, Any] = {"timeout_s": 2.0, "max_retries": 3, "retry_backoff_s": 0.01}
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


def test_reasoning_is_stripped_before_parsing() -> None:
    script = [
        # vLLM's reasoning parser moves the thinking to reasoning_content; a bare server leaves it inline.
        Reply(content=VALID, reasoning_content='{"name": "not this"} thinking...'),
        Reply(content='<think>Lagos? {"name": </think>\n' + VALID),
        Reply(content='the population is large {"x": 1}</think>' + VALID),  # template opened the block
    ]
    with ScriptedOpenAIServer(script) as server:
        llm = make(server)
        assert [llm.complete_json(MESSAGES, City).name for _ in range(3)] == ["Lagos"] * 3
    assert len(server.requests) == 3


# -- faults: each ends in a retried success or a clear LLMError, never a hang or another exception --

OVERLOADED = '{"error": {"message": "overloaded", "type": "server_error"}}'

TRANSPORT_FAULTS = {
    "429 with Retry-After": [Reply(status=429, raw_body=OVERLOADED, headers={"Retry-After": "0.05"})],
    "429 with retry-after-ms": [Reply(status=429, raw_body=OVERLOADED, headers={"retry-after-ms": "20"})],
    "500/503 burst": [Reply(status=500, raw_body=OVERLOADED), Reply(status=503, raw_body=OVERLOADED)] * 1
    + [Reply(status=503, raw_body=OVERLOADED)],
    "connection reset": [Reply(reset=True)],
    "timeout": [Reply(content=VALID, delay_s=1.5)],
    "reply cut mid-way": [Reply(content=VALID, cut_after=40)],
}


@pytest.mark.parametrize("fault", TRANSPORT_FAULTS)
def test_transport_faults_are_retried_by_the_sdk(fault: str) -> None:
    script = [*TRANSPORT_FAULTS[fault], Reply(content=VALID, prompt_tokens=3, completion_tokens=4)]
    with ScriptedOpenAIServer(script) as server:
        llm = make(server, timeout_s=0.5)
        assert llm.complete_json(MESSAGES, City).name == "Lagos"
    assert len(server.requests) == len(script)
    # Only the answer that arrived is paid for, with the server's own token counts.
    assert (llm.usage.calls, llm.usage.tokens) == (1, 7)


REPLY_FAULTS = {
    "not JSON": Reply(content="The largest city is Lagos."),
    "JSON violating the schema": Reply(content='{"name": "Lagos"}'),
    "truncated JSON": Reply(content='{"name": "Lagos", "population": '),
    "empty reply": Reply(content=""),
    "no content at all": Reply(content=None, reasoning_content="I ran out of tokens while thinking"),
    "a body that is not a completion": Reply(raw_body="<html>502 from a proxy</html>"),
}


@pytest.mark.parametrize("fault", REPLY_FAULTS)
def test_invalid_replies_are_retried_with_the_error(fault: str) -> None:
    with ScriptedOpenAIServer([REPLY_FAULTS[fault], Reply(content=VALID)]) as server:
        assert make(server).complete_json(MESSAGES, City).population == 15_000_000
    assert len(server.requests) == 2
    first, second = server.requests
    if REPLY_FAULTS[fault].raw_body is None:  # the model saw its reply and what was wrong with it
        assert second["messages"][: len(MESSAGES)] == first["messages"]
        assert second["messages"][-1]["role"] == "user" and "could not be used" in second["messages"][-1]["content"]
    else:
        assert second["messages"] == first["messages"]


@pytest.mark.parametrize("fault", REPLY_FAULTS)
def test_invalid_replies_end_in_a_clear_error_when_they_persist(fault: str) -> None:
    with ScriptedOpenAIServer(lambda _: REPLY_FAULTS[fault]) as server:
        llm = make(server, schema_retries=2)
        with pytest.raises(LLMError, match=r"no valid answer after 3 replies"):
            llm.complete_json(MESSAGES, City)
    assert len(server.requests) == 3


def test_gives_up_after_the_retries_with_a_clear_error() -> None:
    with ScriptedOpenAIServer([Reply(status=500, raw_body="boom")] * 3) as server:
        llm = make(server, max_retries=2)
        with pytest.raises(LLMError, match=r"HTTP 500"):
            llm.complete_json(MESSAGES, City)
    assert len(server.requests) == 3


def test_retry_after_past_the_deadline_is_not_waited_for() -> None:
    slow_down = Reply(status=429, raw_body=OVERLOADED, headers={"Retry-After": "30"})
    with ScriptedOpenAIServer([slow_down, Reply(content=VALID)]) as server:
        llm = make(server)
        with pytest.raises(LLMError, match="HTTP 429"):
            llm.complete_json(MESSAGES, City, deadline=time.time() + 5)
    assert len(server.requests) == 1


def test_a_spent_deadline_sends_nothing() -> None:
    with ScriptedOpenAIServer([Reply(content=VALID)]) as server, pytest.raises(LLMError, match="budget is spent"):
        make(server).complete_json(MESSAGES, City, deadline=time.time() - 1)
    assert server.requests == []


def test_client_errors_are_not_retried() -> None:
    script = [Reply(status=400, raw_body='{"error": {"message": "bad temperature"}}'), Reply(content=VALID)]
    with ScriptedOpenAIServer(script) as server, pytest.raises(LLMError, match="HTTP 400"):
        make(server).complete_json(MESSAGES, City)
    assert len(server.requests) == 1


REJECTS_JSON_SCHEMA = Reply(
    status=400,
    raw_body='{"error": {"message": "response_format type json_schema is not supported", "type": "invalid_request"}}',
)


def test_a_server_rejecting_json_schema_gets_json_object_and_the_schema_in_the_prompt() -> None:
    with ScriptedOpenAIServer([REJECTS_JSON_SCHEMA, Reply(content=VALID), Reply(content=VALID)]) as server:
        llm = make(server)
        assert llm.complete_json(MESSAGES, City).name == "Lagos"
        assert llm.structured_output == "json_object"
        assert llm.complete_json(MESSAGES, City).name == "Lagos"  # no second rejected request
    formats = [r["response_format"]["type"] for r in server.requests]
    assert formats == ["json_schema", "json_object", "json_object"]
    instruction = server.requests[1]["messages"][0]
    assert instruction["role"] == "system" and '"population"' in instruction["content"]
    assert server.requests[1]["messages"][1:] == MESSAGES


def test_probe_reports_the_structured_output_mode() -> None:
    with ScriptedOpenAIServer([Reply(content='{"ok": true}')]) as server:
        assert make(server).probe_structured_output() == "json_schema"
    with ScriptedOpenAIServer([REJECTS_JSON_SCHEMA, Reply(content='{"ok": true}')]) as server:
        assert make(server).probe_structured_output() == "json_object"
    with (
        ScriptedOpenAIServer([REJECTS_JSON_SCHEMA, REJECTS_JSON_SCHEMA]) as server,
        pytest.raises(LLMError, match="HTTP 400"),
    ):
        make(server).probe_structured_output()


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
    llm = make_llm(
        Settings(
            workspace="unused",
            llm={"base_url": "http://127.0.0.1:9/v1", "model": "m", "structured_output": "json_object"},
        )
    )
    assert isinstance(llm, OpenAICompatibleLLM) and llm.model == "m" and llm.structured_output == "json_object"
