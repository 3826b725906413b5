"""`pagehop serve`: the JSON API (/api), the OpenAI-compatible API (/v1) and the chat UI (/ui) in one app."""

from pagehop.server.app import UnsafeBind, check_bind, create_app, serve

__all__ = ["UnsafeBind", "check_bind", "create_app", "serve"]
