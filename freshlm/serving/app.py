"""The HTTP API: OpenAI-compatible generation, health, metrics and the reload call.

* ``POST /v1/chat/completions``, ``POST /v1/completions``, ``GET /v1/models`` — the OpenAI
  API's shapes (non-streaming); the ``model`` field of every answer is the version that
  produced it, and so is the ``X-FreshLM-Model-Version`` header.
* ``GET /healthz`` — 200 with the served version once one is loaded, 503 before: the
  Kubernetes readiness probe, so no pod gets traffic before its model answers.
* ``GET /metrics`` — Prometheus text (:mod:`freshlm.serving.metrics`).
* ``POST /v1/admin/reload`` — ``Authorization: Bearer <FRESHLM_SERVE_TOKEN>``; body
  ``{"version"?, "actor"?, "reason"?}``: serve that version (default: what ``production``
  names). 200 when swapped or already served; 500 when the load failed (the old version keeps
  serving; Slack was alerted); 404 for a version the registry does not have.

Errors use the OpenAI envelope ``{"error": {"message", "type", "param", "code"}}``; a request
body that does not fit is answered with 400 naming the field and what it accepts.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse

from freshlm.registry import VersionNotFound
from freshlm.serving import metrics as prometheus
from freshlm.serving.api_models import ChatCompletionRequest, CompletionRequest, ReloadRequest
from freshlm.serving.generation import Generation, GenerationRequest
from freshlm.serving.metrics import ServingMetrics
from freshlm.serving.slot import ModelSlot, NoModelLoaded, ServedVersion
from freshlm.serving.swaps import VersionSwapper

log = logging.getLogger(__name__)

VERSION_HEADER = "X-FreshLM-Model-Version"
DEFAULT_NEW_TOKENS = 64
PRODUCTION_NAMES = ("production", "freshlm")
_ENDPOINTS = (
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/models",
    "/v1/admin/reload",
    "/healthz",
    "/metrics",
)


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, kind: str, param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.param = status, message, kind, param


def error_response(status: int, message: str, kind: str, param: str | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": param, "code": status}}
    return JSONResponse(body, status_code=status)


def validation_error(exc: RequestValidationError) -> JSONResponse:
    """400 naming each field that is wrong and what it accepts."""
    problems, first = [], None
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        first = first or where
        problems.append(f"{where}: {err.get('msg')}")
    return error_response(400, "invalid request: " + "; ".join(problems), "invalid_request", first)


def create_app(
    slot: ModelSlot, swapper: VersionSwapper, metrics: ServingMetrics, token: str
) -> FastAPI:
    """The API over ``slot``; ``token`` guards the reload call."""
    app = FastAPI(title="FreshLM model server", docs_url=None, redoc_url=None)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_error(exc)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.kind, exc.param)

    @app.middleware("http")
    async def _count(request: Request, call_next: Any) -> Any:
        began = time.perf_counter()
        response = await call_next(request)
        path = request.url.path if request.url.path in _ENDPOINTS else "other"
        timed = path.endswith("completions")
        metrics.request(path, response.status_code, time.perf_counter() - began if timed else None)
        return response

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        current = slot.current
        if current is None:
            return JSONResponse({"status": "loading", "version": None}, status_code=503)
        body = {"status": "ok", "version": current.version_id, "backend": swapper.backend_name}
        return JSONResponse(body, headers={VERSION_HEADER: current.version_id})

    @app.get("/metrics")
    async def metrics_text() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type=prometheus.CONTENT_TYPE)

    @app.get("/v1/models")
    async def models() -> JSONResponse:
        current = slot.current
        data = []
        if current is not None:
            data.append(
                {
                    "id": current.version_id,
                    "object": "model",
                    "created": int(current.loaded_at),
                    "owned_by": "freshlm",
                    "alias": "production",
                }
            )
        return JSONResponse({"object": "list", "data": data})

    @app.post("/v1/chat/completions")
    async def chat(body: ChatCompletionRequest) -> JSONResponse:
        with _lease(slot, body.model) as served:
            prompt = served.backend.chat_prompt([m.model_dump() for m in body.messages])
            [answer] = await _generate(served, [prompt], body, body.new_tokens(DEFAULT_NEW_TOKENS))
        metrics.tokens(answer.prompt_tokens, answer.completion_tokens)
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": answer.text},
            "finish_reason": answer.finish_reason,
        }
        return _answer("chat.completion", served.version_id, [choice], [answer])

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest) -> JSONResponse:
        with _lease(slot, body.model) as served:
            answers = await _generate(
                served, body.prompts(), body, body.new_tokens(DEFAULT_NEW_TOKENS)
            )
        for answer in answers:
            metrics.tokens(answer.prompt_tokens, answer.completion_tokens)
        choices = [
            {"index": i, "text": a.text, "finish_reason": a.finish_reason, "logprobs": None}
            for i, a in enumerate(answers)
        ]
        return _answer("text_completion", served.version_id, choices, answers)

    @app.post("/v1/admin/reload")
    async def reload(request: Request, body: ReloadRequest | None = None) -> JSONResponse:
        _authorize(request, token)
        body = body or ReloadRequest()
        try:
            result = await run_in_threadpool(
                swapper.sync, body.version, actor=body.actor, reason=body.reason
            )
        except VersionNotFound as exc:
            raise ApiError(404, str(exc), kind="not_found", param="version") from None
        status = {"failed": 500, "no-production": 409}.get(result.result, 200)
        return JSONResponse(result.to_dict(), status_code=status)

    return app


class _lease:
    """``with _lease(slot, model) as served``: the served version, checked against the
    request's ``model``, held for the request (see :meth:`ModelSlot.lease`)."""

    def __init__(self, slot: ModelSlot, model: str | None) -> None:
        self.slot, self.model = slot, model
        self._inner: Any = None

    def __enter__(self) -> ServedVersion:
        self._inner = self.slot.lease()
        try:
            served = self._inner.__enter__()
        except NoModelLoaded:
            raise ApiError(
                503, "no model version is loaded yet; retry shortly", kind="unavailable"
            ) from None
        if self.model not in (None, "", *PRODUCTION_NAMES, served.version_id):
            self._inner.__exit__(None, None, None)
            raise ApiError(
                404,
                f"model {self.model!r} is not served here; this server serves production "
                f"({served.version_id}): send model 'production' or leave it out",
                kind="not_found",
                param="model",
            )
        return served

    def __exit__(self, *exc: Any) -> None:
        self._inner.__exit__(*exc)


async def _generate(
    served: ServedVersion, prompts: Sequence[str], body: Any, new_tokens: int
) -> list[Generation]:
    futures = [
        served.backend.submit(
            GenerationRequest(
                prompt=prompt,
                max_new_tokens=new_tokens,
                temperature=body.temperature,
                top_p=body.top_p,
                seed=body.seed,
            )
        )
        for prompt in prompts
    ]
    return list(await asyncio.gather(*(asyncio.wrap_future(f) for f in futures)))


def _answer(
    kind: str, version: str, choices: list[dict[str, Any]], answers: Sequence[Generation]
) -> JSONResponse:
    prompt = sum(a.prompt_tokens for a in answers)
    completion = sum(a.completion_tokens for a in answers)
    body = {
        "id": f"{'chatcmpl' if kind == 'chat.completion' else 'cmpl'}-{uuid.uuid4().hex}",
        "object": kind,
        "created": int(time.time()),
        "model": version,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }
    return JSONResponse(body, headers={VERSION_HEADER: version})


def _authorize(request: Request, token: str) -> None:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        raise ApiError(
            401,
            "the reload call needs the header 'Authorization: Bearer <FRESHLM_SERVE_TOKEN>'",
            kind="unauthorized",
        )
