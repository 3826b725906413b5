"""The OpenAI-compatible API through the real openai client, and the security rules, on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from pagehop.config import ServerSettings, Settings
from pagehop.demo import DEMO_QUESTION
from pagehop.server.app import UnsafeBind, check_bind, serve

API_KEY = "test-key-0123456789"


@pytest.fixture(scope="module")
def server(demo_workspace: Path, tmp_path_factory: pytest.TempPathFactory, live_server: Any) -> Iterator[Any]:
    target = tmp_path_factory.mktemp("openai") / "ws"
    with live_server(demo_workspace, target, ui=True, api_key=API_KEY) as live:
        yield live


@pytest.fixture
def client(server: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=API_KEY, max_retries=0, timeout=120)


def test_models_lists_pagehop(client: openai.OpenAI) -> None:
    assert [model.id for model in client.models.list()] == ["pagehop"]


def test_chat_completion_answers_with_sources(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="pagehop", messages=[{"role": "user", "content": DEMO_QUESTION}])
    content = completion.choices[0].message.content or ""
    assert content.startswith("Tallinn")
    assert "Sources:" in content and "Kestrel Optics, p. 1" in content
    extra = completion.model_extra or {}
    assert {c["title"] for c in extra["citations"]} >= {"Kestrel Optics", "Harbor Lane Robotics - Annual Review 2021"}
    assert completion.choices[0].finish_reason == "stop"


def test_streamed_chat_completion(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="pagehop", messages=[{"role": "user", "content": DEMO_QUESTION}], stream=True
    )
    chunks = list(stream)
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    content = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    reasoning = "".join((chunk.choices[0].delta.model_extra or {}).get("reasoning_content", "") for chunk in chunks)
    assert content.startswith("Tallinn") and "Sources:" in content
    assert "[decompose]" in reasoning and "[verify]" in reasoning
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert (chunks[-1].model_extra or {})["citations"]


def test_a_follow_up_continues_the_conversation_thread(client: openai.OpenAI, server: Any) -> None:
    first = [{"role": "user", "content": "Who founded Harbor Lane Robotics?"}]
    opening = client.chat.completions.create(model="pagehop", messages=first)  # type: ignore[arg-type]
    follow_up = [
        *first,
        {"role": "assistant", "content": opening.choices[0].message.content},
        {"role": "user", "content": "Where was Mirela Voss born?"},
    ]
    reply = client.chat.completions.create(model="pagehop", messages=follow_up)  # type: ignore[arg-type]
    thread_id = (reply.model_extra or {})["thread_id"]
    assert thread_id == (opening.model_extra or {})["thread_id"]
    history = server.state.engine.history(thread_id)
    assert [question for question, _ in history] == ["Who founded Harbor Lane Robotics?", "Where was Mirela Voss born?"]
    assert "Tallinn" in (reply.choices[0].message.content or "")


def test_a_conversation_without_a_user_message_is_refused(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="no user message"):
        client.chat.completions.create(model="pagehop", messages=[{"role": "system", "content": "be brief"}])


def test_the_api_key_is_required(server: Any) -> None:
    with httpx.Client(base_url=server.url) as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "wrong"}):
            response = http.get("/api/documents", headers=headers)
            assert response.status_code == 401
            assert response.json()["error"]["type"] == "authentication_error"
        assert http.post("/v1/chat/completions", json={}).status_code == 401
        assert http.get("/api/documents", headers={"X-API-Key": API_KEY}).status_code == 200
        assert http.get("/api/documents", headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 200
        assert http.get("/api/health").status_code == 200  # liveness needs no key
    wrong = openai.OpenAI(base_url=f"{server.url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()


def test_serve_refuses_a_non_loopback_host_without_a_key(tmp_path: Path) -> None:
    open_settings = Settings(workspace=tmp_path / "ws")
    for host in ("0.0.0.0", "192.168.1.20", "::", "example.org"):
        with pytest.raises(UnsafeBind, match="API key"):
            check_bind(open_settings, host)
    with pytest.raises(UnsafeBind):
        serve(open_settings, host="0.0.0.0", port=1)  # refused before anything binds or opens
    assert not (tmp_path / "ws").exists()
    for host in ("127.0.0.1", "localhost", "::1"):
        check_bind(open_settings, host)
    check_bind(Settings(workspace=tmp_path / "ws", server=ServerSettings(api_key=API_KEY)), "0.0.0.0")  # type: ignore[arg-type]


def test_a_slow_question_times_out_with_504(server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server.state.settings.server, "request_timeout_s", 0.01)
    headers = {"X-API-Key": API_KEY}
    with server.client(headers=headers) as http:
        response = http.post("/api/ask", json={"question": DEMO_QUESTION})
        assert response.status_code == 504
        assert response.json()["error"]["type"] == "timeout"
        chat = {"messages": [{"role": "user", "content": DEMO_QUESTION}]}
        assert http.post("/v1/chat/completions", json=chat).status_code == 504
    # The timed-out questions still hold their slots until their workers finish; shutdown waits for them.
    assert server.state.slots.wait_idle(60) and server.state.slots.busy == 0


def test_the_ui_asks_for_the_api_key_as_its_password(server: Any) -> None:
    with server.client() as http:
        assert http.get("/ui/config").status_code == 401
        login = http.post("/ui/login", data={"username": "me", "password": "wrong"})
        assert login.status_code == 400
        login = http.post("/ui/login", data={"username": "me", "password": API_KEY})
        assert login.status_code == 200, login.text
        assert http.get("/ui/config").status_code == 200  # the session cookie now opens it
