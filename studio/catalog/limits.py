"""What each model accepts, checked before anything is sent.

The limits live in `catalog.toml` (with the page they were read from and when), and
`studio models refresh` reads the ones fal states in each endpoint's OpenAPI schema into
`.studio/limits.json`, merged into the catalog on load like refreshed prices. `check_request`
is the one check: the runner calls it before reserving money for a request, and `studio
check` / `studio plan` use it to name the panels a model cannot take at their master size
(`size_note` says what studio does instead: it generates within the limits and upscales).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from studio.catalog.catalog import PIXELS_PER_MP, CatalogEntry
from studio.core.errors import Rejected
from studio.core.generation import GenerationRequest

LIMITS_FILE = "limits.json"
# What a schema-stated limit may set on a catalog entry (anything else in the file is ignored).
LIMIT_FIELDS = ("min_side", "max_side", "max_refs", "max_scale", "params", "enums", "limits_source", "limits_date")
# Input fields whose enum values studio reads from a schema (the ones it may send).
ENUM_FIELDS = ("output_format", "aspect_ratio", "safety_tolerance", "model", "acceleration")
IMAGE_LIST_FIELDS = ("image_urls",)
SCALE_FIELDS = ("upscale_factor", "scale")
MAX_IMAGES_SAID = re.compile(r"(?:maximum of|up to|at most) (\d+) images", re.IGNORECASE)


class OutsideLimits(Rejected):
    """The request is outside what the model accepts: it is refused here, before any money is held."""

    fatal = False


class RetiredModel(OutsideLimits):
    """A model its provider shut down: every request to it would fail (Gemini answers 404)."""

    def __init__(self, model_id: str, entry: CatalogEntry):
        super().__init__(retired_message(model_id, entry))


def retired_message(model_id: str, entry: CatalogEntry) -> str:
    instead = f"; use '{entry.replacement}' instead" if entry.replacement else ""
    return f"'{model_id}' was retired by its provider on {entry.retired} (requests to it fail){instead}"


def _label(entry: CatalogEntry) -> str:
    return entry.endpoint.lstrip("/")


def sends_size(entry: CatalogEntry) -> bool:
    """Whether the width and height themselves are sent (else an aspect ratio or nothing)."""
    return entry.inputs.size == "image_size" and entry.kind != "upscale" and entry.provider != "draft"


def size_problems(entry: CatalogEntry, width: int, height: int) -> list[str]:
    """Why width x height is not a size this model takes (empty: it takes it)."""
    if not sends_size(entry):
        return []
    name, found = _label(entry), []
    low, high = entry.min_side, entry.max_side
    if (low is not None and min(width, height) < low) or (high is not None and max(width, height) > high):
        sides = f"{low or 1}–{high}" if high is not None else f"at least {low}"
        found.append(f"{width}x{height} is outside {name}'s {sides} px sides")
    step = entry.size_multiple
    if width % step or height % step:
        found.append(f"{width}x{height} is not a multiple of {step} px, as {name} needs")
    if entry.max_mp is not None and width * height > entry.max_mp * PIXELS_PER_MP:
        megapixels = width * height / PIXELS_PER_MP
        found.append(f"{width}x{height} ({megapixels:.2f} MP) is above {name}'s {entry.max_mp:g} MP")
    return found


def check_request(
    entry: CatalogEntry, width: int, height: int, n_refs: int, params: dict[str, Any] | None = None
) -> list[str]:
    """Every way this request is outside what the model accepts; empty when it may be sent."""
    found: list[str] = []
    name = _label(entry)
    if entry.retired:
        instead = f"; use {entry.replacement}" if entry.replacement else ""
        found.append(f"{name} was retired on {entry.retired}{instead}")
    found.extend(size_problems(entry, width, height))
    if n_refs > entry.max_refs:
        found.append(f"{n_refs} reference images are more than {name} takes ({entry.max_refs})")
    for key, value in (params or {}).items():
        if key in entry.rejects or (entry.params and key not in entry.params):
            found.append(f"{name} does not take the parameter '{key}'")
        elif key in entry.enums and str(value) not in entry.enums[key]:
            found.append(f"{name} takes {key} in {', '.join(entry.enums[key])}, not {value!r}")
    if entry.kind == "upscale" and entry.max_scale is not None:
        for key in SCALE_FIELDS:
            value = (params or {}).get(key)
            if isinstance(value, int | float) and not 1 <= value <= entry.max_scale:
                found.append(f"{name} takes {key} from 1 to {entry.max_scale:g}, not {value}")
    return found


def ensure_sendable(model_id: str, entry: CatalogEntry, request: GenerationRequest) -> None:
    """Raise before anything is reserved or sent when the request is outside the model's limits."""
    if entry.retired:
        raise RetiredModel(model_id, entry)
    found = check_request(entry, request.width, request.height, len(request.references), request.params)
    if found:
        raise OutsideLimits(f"not sent to {model_id}: " + "; ".join(found))


def size_note(panel: str, entry: CatalogEntry, wanted: tuple[int, int], made: tuple[int, int]) -> str | None:
    """What studio does with a panel the model cannot take at its master size (None: it takes it).

    e.g. "p014: 1600x5120 is outside fal-ai/flux-2/flash/edit's 512–2048 px sides; it is generated
    at 512x1632 and upscaled"."""
    found = size_problems(entry, *wanted)
    if not found:
        return None
    how = "upscaled" if made[0] * made[1] < wanted[0] * wanted[1] else "scaled"
    if abs(made[0] / made[1] - wanted[0] / wanted[1]) > 0.02 * (wanted[0] / wanted[1]):
        how += f" to {wanted[0]}x{wanted[1]} (cropped to the panel's shape)"
    return f"{panel}: {'; '.join(found)}; it is generated at {made[0]}x{made[1]} and {how}"


# ---------------------------------------------------------------- fal's OpenAPI schemas


def limits_from_openapi(schema: dict[str, Any], endpoint: str) -> dict[str, Any]:
    """The limits a fal endpoint's OpenAPI 3 queue schema states for its POST request body:
    min/max width and height, the most images `image_urls` takes, the upscale factor, the
    input fields and their enums. Only what the schema says; an absent limit is left out."""
    body = _request_body(schema, endpoint)
    if body is None:
        raise ValueError(f"the schema has no POST request body for /{endpoint}")
    properties = body.get("properties") if isinstance(body.get("properties"), dict) else {}
    found: dict[str, Any] = {"params": sorted(properties)}
    mins, maxes = [], []
    for side in _image_size_sides(schema, properties.get("image_size")):
        if isinstance(side.get("minimum"), int | float):
            mins.append(int(side["minimum"]))
        if isinstance(side.get("maximum"), int | float):
            maxes.append(int(side["maximum"]))
    if mins:
        found["min_side"] = max(mins)
    if maxes:
        found["max_side"] = min(maxes)
    for name in IMAGE_LIST_FIELDS:
        field = _resolve(schema, properties.get(name))
        if isinstance(field, dict) and isinstance(field.get("maxItems"), int):
            found["max_refs"] = field["maxItems"]
        elif isinstance(field, dict) and (said := MAX_IMAGES_SAID.search(str(field.get("description", "")))):
            found["max_refs"] = int(said.group(1))  # "A maximum of 4 images are allowed, ..." (fal's words)
    for name in SCALE_FIELDS:
        field = _resolve(schema, properties.get(name))
        if isinstance(field, dict) and isinstance(field.get("maximum"), int | float):
            found["max_scale"] = float(field["maximum"])
    enums = {}
    for name in ENUM_FIELDS:
        values = _enum(schema, properties.get(name))
        if values:
            enums[name] = values
    if enums:
        found["enums"] = enums
    return found


def _request_body(schema: dict[str, Any], endpoint: str) -> dict[str, Any] | None:
    paths = schema.get("paths") if isinstance(schema.get("paths"), dict) else {}
    post = (paths.get(f"/{endpoint}") or {}).get("post") if isinstance(paths.get(f"/{endpoint}"), dict) else None
    if not isinstance(post, dict):
        return None
    content = ((post.get("requestBody") or {}).get("content") or {}).get("application/json") or {}
    body = _resolve(schema, content.get("schema"))
    return body if isinstance(body, dict) else None


def _resolve(schema: dict[str, Any], node: Any, depth: int = 0) -> Any:
    """Follow `$ref` (and a single-entry allOf, as fal writes references to enums) to the node."""
    while isinstance(node, dict) and depth < 10:
        depth += 1
        if isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
            target: Any = schema
            for part in node["$ref"][2:].split("/"):
                target = target.get(part) if isinstance(target, dict) else None
            node = target
        elif isinstance(node.get("allOf"), list) and len(node["allOf"]) == 1:
            node = node["allOf"][0]
        else:
            break
    return node


def _variants(schema: dict[str, Any], node: Any) -> list[dict[str, Any]]:
    node = _resolve(schema, node)
    if not isinstance(node, dict):
        return []
    options = node.get("anyOf") or node.get("oneOf")
    if isinstance(options, list):
        return [v for v in (_resolve(schema, option) for option in options) if isinstance(v, dict)]
    return [node]


def _image_size_sides(schema: dict[str, Any], node: Any) -> list[dict[str, Any]]:
    sides = []
    for variant in _variants(schema, node):
        props = variant.get("properties")
        if isinstance(props, dict):
            found = (_resolve(schema, props.get(key)) for key in ("width", "height"))
            sides.extend(side for side in found if isinstance(side, dict))
    return sides


def _enum(schema: dict[str, Any], node: Any) -> list[str]:
    values: list[str] = []
    for variant in _variants(schema, node):
        if isinstance(variant.get("enum"), list):
            values.extend(str(v) for v in variant["enum"])
    return values


# ---------------------------------------------------------------- .studio/limits.json


def read_refreshed_limits(state_dir: Path) -> dict[str, dict[str, Any]]:
    """model id -> limit fields; an unreadable file counts as no refresh (the shipped limits stand)."""
    try:
        data = json.loads((state_dir / LIMITS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    limits = data.get("limits") if isinstance(data, dict) else None
    if not isinstance(limits, dict):
        return {}
    return {
        model_id: {k: v for k, v in fields.items() if k in LIMIT_FIELDS}
        for model_id, fields in limits.items()
        if isinstance(fields, dict)
    }


def limits_record(limits: dict[str, dict[str, Any]], source: str) -> dict[str, Any]:
    return {"fetched_at": datetime.now(UTC).isoformat(timespec="seconds"), "source": source, "limits": limits}
