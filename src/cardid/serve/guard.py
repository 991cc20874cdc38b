"""Who may talk to the server: one check in front of every route and the live socket.

- **Host.** A request naming another host (``Host: evil.example``) is refused (``421``): a page
  of a domain an attacker re-points at this machine (DNS rebinding) reaches nothing. Accepted: an
  IP address, ``localhost``, this machine's own name, and the names given with ``--allow-host``.
- **Origin.** A change (``POST``, ``PATCH``, ``PUT``, ``DELETE``) or the live socket from a browser
  page of another origin is refused (``403``), whatever its content type: a foreign page's
  ``no-cors`` POSTs never reach the collection. A browser always says where a cross-origin request
  comes from (``Origin``, or ``Sec-Fetch-Site``); ``--allow-origin`` names other pages to trust.
- **Content type.** A change to the collection must be ``application/json`` (``415``), a type no
  page of another origin can send without asking first.
- **Token.** Bound beyond this machine (``--host 0.0.0.0``) the server asks for a token on every
  route but ``/healthz``: opened once as ``/?token=…`` (the link ``cardid serve`` prints), the page
  keeps it as a ``SameSite=Strict`` cookie; other clients send ``Authorization: Bearer …``. So
  somebody else on the network, with or without a browser, reads and changes nothing.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import socket
from urllib.parse import parse_qs, urlsplit

COOKIE = "cardid_token"
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
#: where a change must come as JSON
JSON_ROUTES = ("/v1/collection",)
#: open without the token: liveness probes
OPEN = frozenset({"/healthz"})


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` serves this machine only."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The name in a ``Host`` header, without its port (``[::1]:8000`` → ``::1``)."""
    h = header.strip().lower()
    if h.startswith("["):
        return h[1 : h.find("]")] if "]" in h else h
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


def own_names() -> tuple[str, ...]:
    """The names this machine answers to on its network (``scanner``, ``scanner.local``)."""
    own = socket.gethostname().lower()
    return own, own.split(".")[0], f"{own.split('.')[0]}.local"


def host_allowed(header: str, allowed: tuple[str, ...], own: tuple[str, ...] | None = None) -> bool:
    name = host_name(header).rstrip(".")
    if not name:
        return False
    if "*" in allowed or name in {a.lower().rstrip(".") for a in allowed}:
        return True
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(name)
        return True  # an address is never a rebound name
    except ValueError:
        pass
    return name in (own if own is not None else own_names())


def origin_allowed(origin: str, host: str, allowed: tuple[str, ...]) -> bool:
    """Whether a browser page at ``origin`` may change things on the server at ``host``."""
    if origin == "null":  # a sandboxed frame or a local file: never trusted
        return "*" in allowed
    if "*" in allowed or origin.rstrip("/") in {a.rstrip("/") for a in allowed}:
        return True
    return urlsplit(origin).netloc.lower() == host.lower()


def new_token() -> str:
    return secrets.token_urlsafe(24)


class Guard:
    """ASGI middleware: the checks above, before any route runs (HTTP and WebSocket alike)."""

    def __init__(self, app, allow_hosts=(), allow_origins=(), token: str | None = None, metrics=None):
        self.app = app
        self.allow_hosts = tuple(allow_hosts)
        self.own = own_names()  # looked up once, not per request
        self.allow_origins = tuple(allow_origins)
        self.token = token or None
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        refusal = self.check(scope, headers)
        if refusal is None:
            return await self.app(scope, receive, send)
        status, message, extra = refusal
        if self.metrics is not None and status >= 400:
            self.metrics.observe("refused", status)
        if scope["type"] == "websocket":  # closed before accept: the handshake is answered 403
            await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
            return
        await _answer(send, status, {"error": message}, extra)

    def check(self, scope, headers: dict[str, str]):
        """``(status, message, extra headers)`` for a request to refuse, or None."""
        host = headers.get("host", "")
        if not host_allowed(host, self.allow_hosts, self.own):
            return (
                421,
                f"this server does not answer for host {host_name(host)!r} (start it with --allow-host NAME)",
                [],
            )
        path = scope.get("path", "")
        method = scope.get("method", "GET") if scope["type"] == "http" else "WEBSOCKET"
        if method not in SAFE:
            origin = headers.get("origin")
            site = headers.get("sec-fetch-site", "")
            if origin is not None:
                if not origin_allowed(origin, host, self.allow_origins):
                    return 403, f"refused a request from a page of another origin ({origin[:100]})", []
            elif site in ("cross-site", "same-site") and "*" not in self.allow_origins:
                return 403, "refused a request from a page of another site", []
            if method != "WEBSOCKET" and path.startswith(JSON_ROUTES) and method in ("POST", "PATCH", "PUT"):
                ctype = headers.get("content-type", "").split(";")[0].strip().lower()
                if ctype != "application/json":
                    return 415, f"send the change as application/json, not {ctype or 'no content type'}", []
        if self.token and path not in OPEN:
            in_link = (parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token") or [""])[0]
            given = _bearer(headers) or _cookie(headers) or in_link
            if not secrets.compare_digest(given.encode(), self.token.encode()):
                return 401, "this server asks for its token: open the link `cardid serve` printed", []
            if path == "/" and in_link and method == "GET":
                cookie = f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"
                return 303, "token kept; see /", [(b"location", b"/"), (b"set-cookie", cookie.encode())]
        return None


def _bearer(headers: dict[str, str]) -> str:
    auth = headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else ""


def _cookie(headers: dict[str, str]) -> str:
    for part in headers.get("cookie", "").split(";"):
        k, _, v = part.strip().partition("=")
        if k == COOKIE:
            return v
    return ""


async def _answer(send, status: int, body: dict, extra: list) -> None:
    data = json.dumps(body).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": data})
