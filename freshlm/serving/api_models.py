"""The request bodies the server accepts: the OpenAI API's, checked field by field.

Unknown fields are ignored (OpenAI clients send ``user``, ``logprobs: null`` and the like), but
every field FreshLM reads is checked, and a wrong one is answered with HTTP 400 naming it
(see :func:`freshlm.serving.app.validation_error`). Decoding is greedy unless ``temperature``
is above 0, so the same question gets the same answer (OpenAI's default is 1).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_NEW_TOKENS = 512
VERSION_PATTERN = "^[0-9a-f]{32}$"


class _Sampling(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str | None = Field(None, description="production, or the served version's id")
    max_tokens: int | None = Field(None, ge=1, le=MAX_NEW_TOKENS)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    n: int = Field(1, ge=1, le=1, description="one choice per request")
    seed: int | None = None
    stream: bool = False

    @field_validator("stream")
    @classmethod
    def _no_streaming(cls, value: bool) -> bool:
        if value:
            raise ValueError("streaming is not supported; send stream: false")
        return value


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=100_000)


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1, max_length=256)
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_NEW_TOKENS)

    @field_validator("messages")
    @classmethod
    def _ends_with_the_user(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        if messages and messages[-1].role != "user":
            raise ValueError("the last message must be the user's (role: user)")
        return messages

    def new_tokens(self, default: int) -> int:
        return self.max_completion_tokens or self.max_tokens or default


class CompletionRequest(_Sampling):
    prompt: str | list[str] = Field(description="one prompt, or a list of up to 32")

    @field_validator("prompt")
    @classmethod
    def _sensible_prompts(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and not 1 <= len(value) <= 32:
            raise ValueError("a list of 1 to 32 prompts")
        return value

    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)

    def new_tokens(self, default: int) -> int:
        return self.max_tokens or default


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str | None = Field(
        None, pattern=VERSION_PATTERN, description="empty: what production names"
    )
    actor: str = Field("reload call", min_length=1, max_length=500)
    reason: str = Field("", max_length=2000)
