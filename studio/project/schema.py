"""JSON Schemas of the project files, so editors autocomplete and check storyboards."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from studio.core.files import write_atomic
from studio.project.models import Character, Location, Storyboard, Style

SCHEMAS: dict[str, type[BaseModel]] = {
    "character": Character,
    "style": Style,
    "location": Location,
    "storyboard": Storyboard,
}


def schema_of(name: str) -> dict:
    schema = SCHEMAS[name].model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"studio {name} file"
    return schema


def write_schemas(out: Path) -> list[Path]:
    written = []
    for name in SCHEMAS:
        path = out / f"{name}.schema.json"
        write_atomic(path, (json.dumps(schema_of(name), indent=2, sort_keys=True) + "\n").encode())
        written.append(path)
    return written
