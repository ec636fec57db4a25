"""Prompts are jinja2 templates filled from the project files (templates/prompts/*.j2)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined


@lru_cache(maxsize=1)
def _environment() -> Environment:
    # Prompts are plain text for image models, not HTML: no autoescaping here.
    return Environment(
        loader=PackageLoader("studio", "templates/prompts"),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


def render_prompt(template: str, **context: Any) -> str:
    text = _environment().get_template(f"{template}.j2").render(**context)
    # One space between words and no blank lines: the prompt is part of the content key,
    # so whitespace noise must not change it.
    return "\n".join(" ".join(line.split()) for line in text.splitlines() if line.strip())
