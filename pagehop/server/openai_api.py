"""The OpenAI-compatible API under /v1: any OpenAI client can talk to pagehop as model ``pagehop``.

The last user message is the question. Earlier turns give context through an engine thread keyed
by the conversation's first user message (or an explicit ``thread_id``); the thread is reused only
while its history matches the request's earlier questions, so two conversations that happen to
open alike never leak into each other. Citations come as a "Sources:" list in the content and as
an extra ``citations`` field; stage summaries stream as ``reasoning_content``.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from pagehop.agents.state import Answer
from pagehop.server.app import ServerState, state_of
from pagehop.server.security import ApiError

router = APIRouter(prefix="/v1", tags=["openai"])

MODEL_ID = "pagehop"
THREAD_VARIANTS = 32  # conversations per opening question that keep their own thread


class ChatMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: keep the text ones
            return "\n".join(str(part.get("text", "")) for part in self.content if part.get("type") == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    model: str = MODEL_ID
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    user: str | None = None
    thread_id: str | None = Field(None, max_length=200, description="pagehop extension: continue this thread")


@router.get("/models")
def list_models() -> dict[str, Any]:
    return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "pagehop"}]}


@router.post("/chat/completions", response_model=None)
async def chat_completions(body: ChatRequest, request: Request) -> dict[str, Any] | StreamingResponse:
    state = state_of(request)
    question, earlier = _split(body.messages)
    thread_id = body.thread_id or await run_in_threadpool(_conversation_thread, state, question, earlier, body.user)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    if not body.stream:
        answer = await state.ask(question, thread_id)
        return _completion(completion_id, answer)
    events = await state.stream(question, thread_id)

    async def sse() -> AsyncIterator[str]:
        yield _chunk(completion_id, {"role": "assistant", "content": ""})
        try:
            async for event in events:
                if event.answer is not None:
                    yield _chunk(completion_id, {"content": render_content(event.answer)})
                    yield _chunk(completion_id, {}, finish_reason="stop", citations=_citations(event.answer))
                else:
                    summaries = "".join(f"[{t.stage}] {t.summary}\n" for t in event.trace)
                    if summaries:
                        yield _chunk(completion_id, {"reasoning_content": summaries})
        except ApiError as exc:
            yield f"data: {json.dumps({'error': {'message': exc.message, 'code': exc.status}})}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(sse(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def render_content(answer: Answer) -> str:
    """The answer text with inline [n] markers, then numbered sources (title, page) and the graph paths."""
    lines = [answer.marked_answer or "I could not find an answer in the documents."]
    lines += [f"Note: {note}." for note in answer.notes]
    if answer.citations:
        lines += ["", "Sources:"]
        lines += [f"[{number}] {citation.label()}" for number, citation in enumerate(answer.citations, start=1)]
    if answer.graph_paths:
        lines += ["", "Graph paths:", *(f"- {path}" for path in answer.graph_paths)]
    return "\n".join(lines)


def _split(messages: list[ChatMessage]) -> tuple[str, list[str]]:
    """The last user message (the question) and the user messages before it."""
    user_turns = [m.text().strip() for m in messages if m.role == "user"]
    if not user_turns or not user_turns[-1]:
        raise ApiError(400, "the conversation has no user message to answer")
    return user_turns[-1], user_turns[:-1]


def _conversation_thread(state: ServerState, question: str, earlier: list[str], user: str | None) -> str | None:
    """The engine thread of this conversation: keyed by its opening question, and its history must match.

    Threads ``chat-<key>``, ``chat-<key>-1``, ... are tried in turn; an opening question takes the
    first empty one. A follow-up whose history matches none (e.g. a regenerated turn) runs one-off.
    """
    opening = earlier[0] if earlier else question
    base = "chat-" + hashlib.sha256(json.dumps([user or "", opening]).encode()).hexdigest()[:24]
    for variant in range(THREAD_VARIANTS):
        thread_id = base if variant == 0 else f"{base}-{variant}"
        asked = [q for q, _ in state.engine.history(thread_id)]
        if asked == earlier:
            return thread_id
        if not asked:
            return None
    return None


def _completion(completion_id: str, answer: Answer) -> dict[str, Any]:
    tokens = answer.usage.tokens
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": MODEL_ID,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": render_content(answer)},
                "finish_reason": "stop",
            }
        ],
        # The engine counts tokens per question, not split into prompt and completion.
        "usage": {"prompt_tokens": 0, "completion_tokens": tokens, "total_tokens": tokens},
        "citations": _citations(answer),
        "thread_id": answer.thread_id,
    }


def _citations(answer: Answer) -> list[dict[str, Any]]:
    return [
        c.model_dump(include={"doc_id", "page", "chunk_id", "title", "text", "graph_path"}) for c in answer.citations
    ]


def _chunk(completion_id: str, delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> str:
    body = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": MODEL_ID,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        **extra,
    }
    return f"data: {json.dumps(body)}\n\n"
