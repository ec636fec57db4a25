"""`studio init`: a new, valid, minimal project a user can run at once."""

from __future__ import annotations

from pathlib import Path

from studio.core.errors import UsageError
from studio.core.files import write_atomic

FILES: dict[str, str] = {
    "studio.toml": """\
# studio project configuration
title = "{title}"
canvas_width = 800          # platform width in px; panels are made at master_scale times this
master_scale = 2
target_cost_per_panel = 0.05  # USD, what you aim to spend per finished panel
provider = "draft"          # draft renders free previz art offline; fal or bfl generate for real
concurrency = 4

[models]                    # the paid model each phase uses (see 'studio models')
character_sheet = "fal:fal-ai/flux-2/flash"
style_frame = "fal:fal-ai/flux-2/flash"
location_plate = "fal:fal-ai/flux-2/flash"
panel = "fal:fal-ai/flux-2/flash/edit"
""",
    ".gitignore": "/build/\n.studio/\n",
    "characters/hero/character.yaml": """\
# yaml-language-server: $schema=../../build/schema/character.schema.json
name: Hero
description: The main character, curious and brave.
appearance: Short dark hair, round face, bright eyes.
outfit: A yellow raincoat over a striped shirt, blue jeans.
palette:
  skin: "#e8b894"
  hair: "#2b1d14"
  outfit: "#f2c14e"
  accent: "#2f6f8f"
""",
    "styles/clean-line.yaml": """\
# yaml-language-server: $schema=../build/schema/style.schema.json
name: Clean line
prompt:
  - clean line art webtoon style
  - flat colours with soft shading
negative_prompt:
  - photorealistic
  - text, watermark
palette: ["#f4efe6", "#2b2b2b", "#f2c14e", "#2f6f8f"]
""",
    "locations/street.yaml": """\
# yaml-language-server: $schema=../build/schema/location.schema.json
name: Quiet street
description: A narrow street of old brick houses with flower boxes.
setting: exterior
times:
  day: Bright sun, long shadows across the cobbles.
  night: Street lamps glow orange; windows lit.
""",
    "episodes/ep001/storyboard.yaml": """\
# yaml-language-server: $schema=../../build/schema/storyboard.schema.json
episode: 1
title: The First Step
style: clean-line
panels:
  - id: p001
    location: street
    time: day
    shot: wide
    action: The quiet street at noon.
    caption: Somewhere, an ordinary day.
  - id: p002
    location: street
    time: day
    shot: medium
    characters:
      - id: hero
        position: center
        expression: curious
    action: Hero looks up at a window.
    dialogue:
      - speaker: hero
        text: Did that window just open by itself?
  - id: p003
    location: street
    time: night
    shot: close-up
    characters:
      - id: hero
        expression: determined
    action: Night falls; Hero has made up their mind.
    dialogue:
      - speaker: hero
        kind: thought
        text: Tonight I find out.
""",
}


def scaffold(directory: Path, title: str) -> list[Path]:
    if directory.exists() and any(directory.iterdir()):
        raise UsageError(f"{directory} is not empty; choose a new folder so nothing of yours is overwritten")
    safe_title = title.replace("\\", "\\\\").replace('"', '\\"')
    written = []
    for relative, text in FILES.items():
        path = directory / relative
        write_atomic(path, text.replace("{title}", safe_title).encode("utf-8"))
        written.append(path)
    return written
