"""The fake Gemini API answering as a text model with structured output: the consistency judge's fake.

`FakeGeminiJudge` is `FakeGemini` (tests/fakes/gemini.py: the same HTTPS listener, key check,
google.rpc errors and faults) that also serves Gemini's text models. A request for one of them is
answered as Google answers a multimodal prompt with a response schema:

    with FakeGeminiJudge(key=KEY) as gemini:
        gemini.scores = {"hair": 0.3}       # what the "model" thinks, per rubric item (default 0.9)
        gemini.inject("malformed-json")    # the next answer is not JSON (and is billed)
        ...
        gemini.billed_micro                 # exact, from the token counts it reported

By hand: `python -m tests.fakes.gemini_judge --port 8443`.

Protocol (Gemini API reference, https://ai.google.dev/api/generate-content):

    POST /v1beta/models/gemini-3.8-flash:generateContent      x-goog-api-key
        {contents: [{role, parts: [{text} | {inline_data|inlineData: {mime_type|mimeType, data}}]}],
         systemInstruction?, generationConfig: {responseMimeType, responseSchema, maxOutputTokens,
         mediaResolution?, thinkingConfig?: {thinkingLevel}, temperature?, ...}}
        -> 200 {candidates: [{content: {role: "model", parts: [{text: "<the JSON answer>"}]},
                              finishReason: "STOP", index: 0}],
                usageMetadata: {promptTokenCount, candidatesTokenCount, thoughtsTokenCount,
                                totalTokenCount, promptTokensDetails: [{modality, tokenCount}]},
                modelVersion, responseId}

Rules, with their sources:

* Structured output (https://ai.google.dev/gemini-api/docs/structured-output): `responseSchema`
  needs `responseMimeType: "application/json"` (400 otherwise); the schema is the OpenAPI subset of
  the `Schema` object (type OBJECT / ARRAY / STRING / NUMBER / INTEGER / BOOLEAN upper case,
  properties, required, propertyOrdering, minimum, maximum, enum, items, description, nullable);
  any other key -> 400 "Unknown name", like any unknown field. The answer is one text part holding
  JSON that follows the schema: properties in `propertyOrdering`, numbers from `scores` kept inside
  minimum..maximum, strings a one-line reason.
* Image tokens (https://ai.google.dev/gemini-api/docs/media-resolution, "Token counts", Gemini 3):
  a fixed count per image by `mediaResolution`: LOW 280, MEDIUM 560, HIGH 1120; unset -> HIGH (the
  default for images). Text: one token per 4 characters, rounded up (the tokens guide's rule of
  thumb, https://ai.google.dev/gemini-api/docs/tokens).
* Thinking (https://ai.google.dev/gemini-api/docs/thinking): `thinkingConfig.thinkingLevel` low,
  medium (3.8 Flash's default) or high; the fake thinks 64 / 256 / 1024 tokens (its choice). They are
  reported as `thoughtsTokenCount` and billed as output (pricing page: "output price, including
  thinking tokens"), and count against `maxOutputTokens`: when thinking and answer exceed it the
  answer is cut there and finishReason is MAX_TOKENS (a cut JSON text).
* Billing: promptTokenCount x input price + (candidatesTokenCount + thoughtsTokenCount) x output
  price (https://ai.google.dev/gemini-api/docs/pricing: 3.8 Flash $0.75 / $3.75 a million tokens),
  exact and rounded up to a micro-USD per request (the fake's choice). A blocked or safety-stopped
  request reports and bills its prompt tokens only.
* Up to 3,600 images a request (https://ai.google.dev/gemini-api/docs/image-understanding).

Faults, `inject(kind, times)`, besides FakeGemini's (429 with RetryInfo, 500, 503, reset, stall,
lost-response: processed and billed, then RST):
    malformed-json  200, the text is not JSON (billed as usual)
    off-schema      200, JSON without the schema's required properties (billed)
    out-of-range    200, JSON whose numbers are 1.7, outside minimum..maximum (billed)
    safety          200, finishReason SAFETY with safetyRatings and no content (prompt billed)
    blocked         200, promptFeedback.blockReason SAFETY and no candidates (prompt billed)
    empty           200, no candidates and no promptFeedback (prompt billed)
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

try:  # the package form (python -m tests.fakes.gemini_judge, `fakes.gemini_judge`)
    from . import gemini as image_fake
    from . import server as base
except ImportError:  # pragma: no cover - loaded as a top-level module
    import gemini as image_fake  # type: ignore[no-redef]
    import server as base  # type: ignore[no-redef]

Response, Route, _json = base.Response, base.Route, base.json_response
_error, _Invalid, _get, _unknown = image_fake._error, image_fake._Invalid, image_fake._get, image_fake._unknown


@dataclass(frozen=True)
class TextModel:
    input_usd: str  # a million input tokens (a string: exact decimal arithmetic)
    output_usd: str  # a million output tokens, thinking included


# https://ai.google.dev/gemini-api/docs/pricing (transcribed 2026-10-07): the introductory price.
TEXT_MODELS: dict[str, TextModel] = {"gemini-3.8-flash": TextModel("0.75", "3.75")}
MAX_IMAGES = 3600
IMAGE_TOKENS = {"MEDIA_RESOLUTION_LOW": 280, "MEDIA_RESOLUTION_MEDIUM": 560, "MEDIA_RESOLUTION_HIGH": 1120}
THINKING_TOKENS = {"low": 64, "medium": 256, "high": 1024}
DEFAULT_SCORE = 0.9
OUT_OF_RANGE = 1.7

FAULT_KINDS = (*image_fake.FAULT_KINDS, "malformed-json", "off-schema", "out-of-range", "empty")
CONFIG_FIELDS = {
    *image_fake.CONFIG_FIELDS,
    "responseMimeType",
    "response_mime_type",
    "responseSchema",
    "response_schema",
    "maxOutputTokens",
    "max_output_tokens",
    "mediaResolution",
    "media_resolution",
    "thinkingConfig",
    "thinking_config",
    "stopSequences",
    "stop_sequences",
}
THINKING_FIELDS = {"thinkingLevel", "thinking_level", "includeThoughts", "include_thoughts"}
SCHEMA_FIELDS = {
    "type",
    "properties",
    "required",
    "propertyOrdering",
    "minimum",
    "maximum",
    "enum",
    "items",
    "description",
    "nullable",
    "format",
}
SCHEMA_TYPES = {"OBJECT", "ARRAY", "STRING", "NUMBER", "INTEGER", "BOOLEAN"}


def _text_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


class FakeGeminiJudge(image_fake.FakeGemini):
    """FakeGemini that also answers Gemini's text models (see the module docstring).

    Besides FakeGemini's inspection: `scores` (rubric item or "item.field" -> the number the model
    answers), `judgements` (one per billed text request: model, prompt_tokens, output_tokens,
    price_micro, image_count, response_lost).
    """

    name = "gemini_judge"
    fault_kinds = FAULT_KINDS
    cli_title = "fake Gemini API (text models with structured output, and image models)"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.scores: dict[str, float] = {}

    @property
    def judgements(self) -> list[dict[str, Any]]:
        return [entry for entry in self.submissions if entry.get("kind") == "text"]

    def _answer(
        self, request: base.Request, route: Route, auth: str, fault: str | None, entry: dict[str, Any]
    ) -> Response:
        if route.name not in TEXT_MODELS:
            return super()._answer(request, route, auth, fault, entry)
        refused = self._refused(request, route, auth, fault)
        if refused is not None:
            return refused
        entry["model"] = route.name
        if request.bad_json:
            return _error(400, "Invalid JSON payload received.")
        try:
            parsed = self._parse_text(request.body, entry)
        except _Invalid as exc:
            return _error(400, exc.message)
        return self._judge(route.name, parsed, fault)

    # ------------------------------------------------------------ the request

    def _parse_text(self, payload: Any, record: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(payload, dict):
            raise _Invalid("Invalid JSON payload received. Expected an object.")
        _unknown(payload, image_fake.TOP_FIELDS, "")
        system = _get(payload, "systemInstruction", "system_instruction")
        texts, sizes = self._contents(payload, record, (system,) if system is not None else ())
        if len(sizes) > MAX_IMAGES:
            raise _Invalid(f"Too many images in the request: {len(sizes)}; at most {MAX_IMAGES}.")
        config = _get(payload, "generationConfig", "generation_config") or {}
        if not isinstance(config, dict):
            raise _Invalid("Invalid value at 'generation_config': expected an object")
        record["config"] = config
        _unknown(config, CONFIG_FIELDS, "generation_config")
        schema = _get(config, "responseSchema", "response_schema")
        mime = _get(config, "responseMimeType", "response_mime_type") or "text/plain"
        if schema is not None:
            if mime != "application/json":
                raise _Invalid("response_schema requires response_mime_type to be 'application/json'.")
            _check_schema(schema, "generation_config.response_schema")
        resolution = _get(config, "mediaResolution", "media_resolution") or "MEDIA_RESOLUTION_HIGH"
        if resolution not in IMAGE_TOKENS:
            raise _Invalid(f"Invalid value at 'generation_config.media_resolution': {resolution!r}")
        thinking = _get(config, "thinkingConfig", "thinking_config") or {}
        if not isinstance(thinking, dict):
            raise _Invalid("Invalid value at 'generation_config.thinking_config': expected an object")
        _unknown(thinking, THINKING_FIELDS, "generation_config.thinking_config")
        level = str(_get(thinking, "thinkingLevel", "thinking_level") or "medium").lower()
        if level not in THINKING_TOKENS:
            raise _Invalid(f"Invalid value at 'generation_config.thinking_config.thinking_level': {level!r}")
        limit = _get(config, "maxOutputTokens", "max_output_tokens")
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise _Invalid(f"Invalid value at 'generation_config.max_output_tokens': {limit!r}")
        text_tokens = sum(_text_tokens(text) for text in texts)
        image_tokens = IMAGE_TOKENS[resolution] * len(sizes)
        return {
            "schema": schema,
            "text_tokens": text_tokens,
            "image_tokens": image_tokens,
            "thinking": THINKING_TOKENS[level],
            "limit": limit,
            "images": len(sizes),
        }

    # ------------------------------------------------------------ the answer

    def _judge(self, model_name: str, parsed: dict[str, Any], fault: str | None) -> Response:
        model = TEXT_MODELS[model_name]
        prompt_tokens = parsed["text_tokens"] + parsed["image_tokens"]
        details = [
            {"modality": "TEXT", "tokenCount": parsed["text_tokens"]},
            {"modality": "IMAGE", "tokenCount": parsed["image_tokens"]},
        ]
        head = {"modelVersion": model_name, "responseId": uuid.uuid4().hex}
        if fault in {"safety", "blocked", "empty"}:
            usage = {
                "promptTokenCount": prompt_tokens,
                "totalTokenCount": prompt_tokens,
                "promptTokensDetails": details,
            }
            self._bill(model_name, model, prompt_tokens, 0, parsed["images"], lost=False)
            if fault == "safety":
                rating = {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}
                candidate = {"finishReason": "SAFETY", "index": 0, "safetyRatings": [rating]}
                return _json(200, {"candidates": [candidate], "usageMetadata": usage, **head})
            if fault == "blocked":
                feedback = {"blockReason": "SAFETY", "safetyRatings": []}
                return _json(200, {"promptFeedback": feedback, "usageMetadata": usage, **head})
            return _json(200, {"usageMetadata": usage, **head})
        if self.latency > 0:
            self._stop.wait(self.latency)
        text = self._text(parsed["schema"], fault)
        thoughts = parsed["thinking"]
        finish = "STOP"
        limit = parsed["limit"]
        answer_tokens = _text_tokens(text)
        if limit is not None and thoughts + answer_tokens > limit:
            thoughts = min(thoughts, limit)
            keep = max(0, limit - thoughts)
            text, answer_tokens, finish = text[: keep * 4], keep, "MAX_TOKENS"
        usage = {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": answer_tokens,
            "thoughtsTokenCount": thoughts,
            "totalTokenCount": prompt_tokens + answer_tokens + thoughts,
            "promptTokensDetails": details,
        }
        lost = fault == "lost-response"
        self._bill(model_name, model, prompt_tokens, answer_tokens + thoughts, parsed["images"], lost=lost)
        if lost:
            return base.dropped("reset")
        parts = [{"text": text}] if text else []
        candidate = {"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}
        return _json(200, {"candidates": [candidate], "usageMetadata": usage, **head})

    def _text(self, schema: Any, fault: str | None) -> str:
        if fault == "malformed-json":
            return "Sure! Here is my assessment: the face matches well, the hair"
        if schema is None:
            return "The character looks on model."
        value = self._value(schema, [], fault)
        if fault == "off-schema" and isinstance(value, dict):
            value = {"verdict": "on model"}
        return json.dumps(value)

    def _value(self, schema: dict[str, Any], path: list[str], fault: str | None) -> Any:
        kind = schema.get("type")
        if kind == "OBJECT":
            properties = schema.get("properties") or {}
            order = schema.get("propertyOrdering") or list(properties)
            return {name: self._value(properties[name], [*path, name], fault) for name in order if name in properties}
        if kind == "ARRAY":
            return [self._value(schema.get("items") or {"type": "STRING"}, path, fault)]
        if kind in {"NUMBER", "INTEGER"}:
            if fault == "out-of-range":
                return OUT_OF_RANGE
            wanted = self.scores.get(".".join(path), self.scores.get(path[0] if path else "", DEFAULT_SCORE))
            low, high = schema.get("minimum"), schema.get("maximum")
            wanted = max(wanted, low) if low is not None else wanted
            wanted = min(wanted, high) if high is not None else wanted
            return round(wanted) if kind == "INTEGER" else wanted
        if kind == "BOOLEAN":
            return True
        if schema.get("enum"):
            return schema["enum"][0]
        item = path[0] if path else "it"
        return f"the {item} matches the sheet" if self.scores.get(item, DEFAULT_SCORE) >= 0.8 else f"the {item} differs"

    def _bill(self, name: str, model: TextModel, prompt: int, output: int, images: int, lost: bool) -> None:
        exact = Decimal(model.input_usd) * prompt + Decimal(model.output_usd) * output  # micro-USD
        price = math.ceil(exact)
        with self._lock:
            self._billed_micro += price
            self._submissions.append(
                {
                    "kind": "text",
                    "model": name,
                    "prompt_tokens": prompt,
                    "output_tokens": output,
                    "price_micro": price,
                    "image_count": images,
                    "response_lost": lost,
                }
            )


def _check_schema(schema: Any, where: str) -> None:
    """The Schema object's OpenAPI subset: known keys, known upper-case types, objects with properties."""
    if not isinstance(schema, dict):
        raise _Invalid(f"Invalid value at '{where}': expected an object")
    _unknown(schema, SCHEMA_FIELDS, where)
    if schema.get("type") not in SCHEMA_TYPES:
        raise _Invalid(f"Invalid value at '{where}.type': {schema.get('type')!r}")
    properties = schema.get("properties") or {}
    if schema["type"] == "OBJECT" and (not isinstance(properties, dict) or not properties):
        raise _Invalid(f"* {where}.properties: should be non-empty for OBJECT type")
    for name in schema.get("required") or []:
        if name not in properties:
            raise _Invalid(f"* {where}.required[{name}]: property is not defined")
    for name, sub in properties.items():
        _check_schema(sub, f"{where}.properties[{name}]")
    if schema.get("items") is not None:
        _check_schema(schema["items"], f"{where}.items")


main = FakeGeminiJudge.main  # python -m tests.fakes.gemini_judge --port 8443 [--key KEY]

if __name__ == "__main__":
    raise SystemExit(main())
