"""Request bodies checked before GraphQL sees them (issue 12, item 7): why a malformed or oversized body
must cost the server nothing and answer a JSON 400, never a 500.

:class:`RequestGuard` is ASGI middleware for ``POST /graphql``: it refuses a body larger than
``Settings.max_request_bytes`` (by ``Content-Length`` at once, or while it streams in without one), a body
that is not UTF-8, not JSON, nested deeper than :data:`MAX_JSON_DEPTH`, or not one JSON object with a string
``query`` (``null``, a bare string, a list: batching is off), and passes the buffered body on unchanged.
Every refusal is ``{"errors": [{"message", "extensions": {"code"}}]}`` with HTTP 400 and one log line.
"""

from __future__ import annotations

import json
import logging

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("aidgraph.request")

MAX_JSON_DEPTH = 32
"""GraphQL variables are input objects a few levels deep; deeper JSON is refused before it is decoded."""

GUARDED_PATHS = ("/graphql",)


class BadRequest(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def json_depth_ok(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Is the JSON text's nesting within ``limit``? Brackets inside strings do not count (one linear scan,
    done before decoding so that deep nesting never reaches a recursive decoder)."""
    depth = 0
    in_string = False
    escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return False
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return True


def check_body(body: bytes) -> dict:
    """The decoded GraphQL request, or BadRequest naming what is wrong."""
    if not body.strip():
        raise BadRequest("BAD_REQUEST", "the request body is empty: send a JSON object with a query")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("BAD_REQUEST", "the request body is not UTF-8") from None
    if not json_depth_ok(body):
        raise BadRequest("BAD_REQUEST", f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError):
        raise BadRequest("BAD_REQUEST", "the request body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise BadRequest("BAD_REQUEST", "the request body must be one JSON object (batching is off)")
    if not isinstance(payload.get("query"), str):
        raise BadRequest("BAD_REQUEST", "the request needs a string 'query'")
    if payload.get("variables") is not None and not isinstance(payload["variables"], dict):
        raise BadRequest("BAD_REQUEST", "'variables' must be a JSON object")
    if payload.get("operationName") is not None and not isinstance(payload["operationName"], str):
        raise BadRequest("BAD_REQUEST", "'operationName' must be a string")
    return payload


def refusal(code: str, message: str) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status_code=400)


class RequestGuard:
    """ASGI middleware: the body limits of :mod:`aidgraph.core.app.guard` for POST /graphql."""

    def __init__(self, app: ASGIApp, max_bytes: int = 1_000_000):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path") not in GUARDED_PATHS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            declared = headers.get("content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
                raise BadRequest("REQUEST_TOO_LARGE", f"the request body is larger than {self.max_bytes} bytes")
            chunks: list[bytes] = []
            size = 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_bytes:
                    raise BadRequest("REQUEST_TOO_LARGE", f"the request body is larger than {self.max_bytes} bytes")
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            body = b"".join(chunks)
            if content_type == "application/json":
                check_body(body)
        except BadRequest as e:
            log.info("request refused code=%s path=%s bytes=%s", e.code, scope.get("path"),
                     headers.get("content-length", "-"))
            await refusal(e.code, e.message)(scope, receive, send)
            return

        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, json_errors(send))


def json_errors(send: Send) -> Send:
    """A ``send`` that turns a plain-text 4xx answer from below (strawberry's "Unknown operation named ...",
    "Unsupported content type") into the JSON error shape, so every refusal is JSON."""
    held: dict = {}

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            status = message["status"]
            content_type = dict(message.get("headers", ())).get(b"content-type", b"").decode("latin-1")
            if 400 <= status < 500 and not content_type.startswith("application/json"):
                held["start"] = message
                held["body"] = b""
                return
            await send(message)
            return
        if message["type"] == "http.response.body" and "start" in held:
            held["body"] += message.get("body", b"")
            if message.get("more_body", False):
                return
            text = held["body"].decode("utf-8", "replace").strip().splitlines()
            code = "BAD_REQUEST" if held["start"]["status"] == 400 else f"HTTP_{held['start']['status']}"
            body = json.dumps({"errors": [{"message": (text[0] if text else "bad request")[:300],
                                           "extensions": {"code": code}}]}).encode()
            headers = [(k, v) for k, v in held["start"].get("headers", ())
                       if k.lower() not in (b"content-type", b"content-length")]
            headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": held["start"]["status"], "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await send(message)

    return wrapped
