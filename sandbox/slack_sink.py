"""A Slack sink: the Web API's ``chat.postMessage`` and incoming webhooks, recording every message.

Answers the way Slack does, so ``slack_sdk``'s ``WebClient`` and ``WebhookClient`` (and the
Airflow Slack provider on top of them) work unchanged against it:

* ``POST /api/chat.postMessage`` with a JSON or form body. Needs ``Authorization: Bearer
  xox?-...`` (or a ``token`` form field). Errors are HTTP 200 with ``{"ok": false, "error":
  ...}``: ``not_authed`` (no token), ``invalid_auth`` (not an ``xoxb-``/``xoxp-``/... token),
  ``invalid_json``, ``channel_not_found`` (no channel), ``no_text`` (no text, blocks or
  attachments). Success: ``{"ok": true, "channel": "C...", "ts": "...", "message": {...}}``.
* ``POST /api/auth.test`` answers who the token is (what Airflow's connection test calls).
* ``POST /services/T.../B.../<secret>``: an incoming webhook. Answers ``ok`` as text/plain;
  ``invalid_payload`` (400) for a body that is not JSON, ``no_text`` (400) for a message with
  nothing to show.

Recorded messages (:meth:`SlackSink.messages`) are dicts with ``channel``, ``channel_id``,
``text``, ``blocks``, ``attachments``, ``thread_ts``, ``ts``, ``via`` (``web_api`` or
``webhook``), ``webhook`` (the hook path or null), ``received_at`` (world time) and
``received_wall`` (wall-clock time).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from sandbox.http_messages import Request, Response, iso_millis, utc_now

WEBHOOK_PATH = re.compile(r"/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]+")
_TOKEN = re.compile(r"xox[abpe]-[A-Za-z0-9-]+")
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{6,}")
TEAM_ID = "T0FRESHLM"
BOT_ID = "B0FRESHLM"
BOT_USER_ID = "U0FRESHLM"


def channel_id(channel: str) -> str:
    """A stable Slack-style id for a channel name (ids pass through unchanged)."""
    if _CHANNEL_ID.fullmatch(channel):
        return channel
    name = channel.lstrip("#")
    return "C" + hashlib.sha1(name.encode()).hexdigest()[:10].upper()


class SlackSink:
    """Thread-safe recorder of the messages posted to the emulated Slack."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[dict[str, Any]] = []
        self._sequence = 0

    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(m) for m in self._messages]

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()

    def _next_ts(self) -> str:
        # Slack message ts: epoch seconds and a 6-digit suffix, unique per channel.
        with self._lock:
            self._sequence += 1
            return f"{int(time.time())}.{self._sequence:06d}"

    def _record(self, message: dict[str, Any]) -> None:
        with self._lock:
            self._messages.append(message)

    # --- Web API ----------------------------------------------------------------------------

    def handle_web_api(self, request: Request, now: datetime) -> Response:
        """Answer ``/api/<method>`` (Slack takes arguments from the query string too)."""
        method = request.path.removeprefix("/api/")
        try:
            payload = _payload(request)
        except ValueError:
            return Response.json({"ok": False, "error": "invalid_json"})
        token = _bearer(request) or payload.get("token")
        if method == "api.test":
            return Response.json({"ok": True, "args": payload})
        if not token:
            return Response.json({"ok": False, "error": "not_authed"})
        if not _TOKEN.fullmatch(str(token)):
            return Response.json({"ok": False, "error": "invalid_auth"})
        if method == "auth.test":
            return Response.json(
                {
                    "ok": True,
                    "url": "https://freshlm-sandbox.slack.com/",
                    "team": "FreshLM Sandbox",
                    "user": "freshlm",
                    "team_id": TEAM_ID,
                    "user_id": BOT_USER_ID,
                    "bot_id": BOT_ID,
                    "is_enterprise_install": False,
                }
            )
        if method != "chat.postMessage":
            return Response.json({"ok": False, "error": "unknown_method"})
        channel = str(payload.get("channel") or "")
        if not channel:
            return Response.json({"ok": False, "error": "channel_not_found"})
        blocks = _json_field(payload.get("blocks"))
        attachments = _json_field(payload.get("attachments"))
        text = payload.get("text") or ""
        if not text and not blocks and not attachments:
            return Response.json({"ok": False, "error": "no_text"})
        ts = self._next_ts()
        cid = channel_id(channel)
        self._record(
            self._message(channel, cid, text, blocks, attachments, payload, ts, now, "web_api")
        )
        message: dict[str, Any] = {
            "user": BOT_USER_ID,
            "type": "message",
            "ts": ts,
            "bot_id": BOT_ID,
            "app_id": "A0FRESHLM",
            "text": text,
            "team": TEAM_ID,
        }
        if blocks:
            message["blocks"] = blocks
        if attachments:
            message["attachments"] = attachments
        if payload.get("thread_ts"):
            message["thread_ts"] = str(payload["thread_ts"])
        return Response.json({"ok": True, "channel": cid, "ts": ts, "message": message})

    # --- incoming webhooks ----------------------------------------------------------------

    def handle_webhook(self, request: Request, now: datetime) -> Response:
        """Answer ``POST /services/T.../B.../...``."""
        if not WEBHOOK_PATH.fullmatch(request.path):
            return Response.text("no_service", 404)
        if request.method != "POST":
            return Response.text("invalid_payload", 400)
        try:
            payload = _payload(request)
        except ValueError:
            return Response.text("invalid_payload", 400)
        blocks = _json_field(payload.get("blocks"))
        attachments = _json_field(payload.get("attachments"))
        text = payload.get("text") or ""
        if not text and not blocks and not attachments:
            return Response.text("no_text", 400)
        channel = str(payload.get("channel") or "webhook")
        message = self._message(
            channel,
            channel_id(channel),
            text,
            blocks,
            attachments,
            payload,
            self._next_ts(),
            now,
            "webhook",
        )
        message["webhook"] = request.path
        self._record(message)
        return Response.text("ok")

    @staticmethod
    def _message(
        channel: str,
        cid: str,
        text: str,
        blocks: Any,
        attachments: Any,
        payload: dict[str, Any],
        ts: str,
        now: datetime,
        via: str,
    ) -> dict[str, Any]:
        return {
            "channel": channel,
            "channel_id": cid,
            "text": text,
            "blocks": blocks or [],
            "attachments": attachments or [],
            "thread_ts": payload.get("thread_ts"),
            "ts": ts,
            "via": via,
            "webhook": None,
            "received_at": iso_millis(now),
            "received_wall": iso_millis(utc_now()),
        }


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return None


def _payload(request: Request) -> dict[str, Any]:
    """The message fields from a JSON body, a form body, or a form ``payload=`` JSON field."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = request.body.decode("utf-8", errors="replace")
    if content_type == "application/json" or (not content_type and raw.lstrip().startswith("{")):
        data = json.loads(raw or "{}")
        if not isinstance(data, dict):
            raise ValueError("the JSON body must be an object")
        return data
    form = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
    if "payload" in form:
        data = json.loads(form.pop("payload"))
        if not isinstance(data, dict):
            raise ValueError("payload must be a JSON object")
        return {**form, **data}
    return {**form, **{k: v[-1] for k, v in request.query.items() if k not in form}}


def _json_field(value: Any) -> Any:
    # Form-encoded Web API calls send blocks/attachments as JSON strings.
    if isinstance(value, str) and value.strip().startswith(("[", "{")):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
