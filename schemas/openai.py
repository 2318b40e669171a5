"""OpenAI chat-completions wire shapes: what `/v1/chat/completions` accepts and returns.

Accepted but ignored (the agent's persona and the server settings decide them, because the
reply runs through the same AgentReply workflow as a room reply): temperature, top_p,
max_tokens, max_completion_tokens, stop, presence_penalty, frequency_penalty, seed,
logit_bias, user, metadata, store, service_tier, parallel_tool_calls, reasoning_effort and
response_format {"type": "text"}. Refused with 400, because ignoring them would silently
change what the client asked for: n > 1, tools, tool_choice, functions, function_call,
logprobs, audio, non-text content parts, tool/function messages and JSON response formats.
Unknown fields are refused, as OpenAI does.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.common import SafeStr

MAX_MESSAGES = 500

# "developer" is the newer name OpenAI uses for system instructions.
InputRole = Literal["system", "developer", "user", "assistant"]
Role = Literal["system", "user", "assistant"]


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: InputRole
    # Text, or a list of {"type": "text", "text": ...} parts (joined with newlines).
    content: SafeStr
    name: SafeStr | None = Field(default=None, max_length=64)

    @field_validator("role", mode="before")
    @classmethod
    def _known_role(cls, value: Any) -> Any:
        if value in ("tool", "function"):
            raise ValueError(f"{value} messages are not supported: agents have no tools here")
        return value

    @field_validator("content", mode="before")
    @classmethod
    def _text_content(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("content is required (tool calls are not supported)")
        if isinstance(value, list):
            texts = []
            for part in value:
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                if kind != "text" or not isinstance(part.get("text"), str):
                    raise ValueError(f"only text content parts are supported, got {kind!r}")
                texts.append(part["text"])
            return "\n".join(texts)
        return value

    @property
    def normalised_role(self) -> Role:
        return "system" if self.role == "developer" else self.role


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_usage: bool = False
    include_obfuscation: bool | None = None


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: SafeStr = Field(min_length=1, max_length=200)
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    # Accepted and ignored (see the module docstring).
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    seed: int | None = None
    logit_bias: dict[str, float] | None = None
    user: str | None = Field(default=None, max_length=256)
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None
    parallel_tool_calls: bool | None = None
    reasoning_effort: str | None = None
    response_format: dict[str, Any] | None = None
    # Refused unless absent or neutral.
    n: int | None = Field(default=None, ge=1)
    tools: list[Any] | None = None
    tool_choice: Any = None
    functions: list[Any] | None = None
    function_call: Any = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    audio: Any = None
    modalities: list[str] | None = None

    @model_validator(mode="after")
    def _refuse_unsupported(self) -> ChatCompletionRequest:
        if self.n not in (None, 1):
            raise ValueError("n must be 1: one agent gives one answer")
        for name in ("tools", "functions", "audio"):
            if getattr(self, name):
                raise ValueError(f"{name} is not supported")
        if self.tool_choice not in (None, "none") or self.function_call not in (None, "none"):
            raise ValueError("tool_choice/function_call are not supported")
        if self.logprobs or self.top_logprobs:
            raise ValueError("logprobs are not supported")
        if self.modalities not in (None, ["text"]):
            raise ValueError("only the text modality is supported")
        if self.response_format not in (None, {"type": "text"}):
            raise ValueError("only response_format {'type': 'text'} is supported")
        if self.messages[-1].role != "user":
            raise ValueError(
                "the last message must be a user message: it is what the agent answers"
            )
        return self

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


# --- responses ---------------------------------------------------------------------------


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = None


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    logprobs: None = None
    finish_reason: str


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    system_fingerprint: str | None = None
    choices: list[Choice]
    usage: Usage


class ChunkChoice(BaseModel):
    index: int = 0
    # {"role": "assistant", "content": ""} first, then {"content": ...}, then {} at the end.
    delta: dict[str, str]
    logprobs: None = None
    finish_reason: str | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    system_fingerprint: str | None = None
    choices: list[ChunkChoice]
    usage: Usage | None = None


class ModelOut(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "iafactory"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]


class OpenAIErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIError(BaseModel):
    error: OpenAIErrorBody
