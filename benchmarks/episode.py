"""A long generated episode for benchmarks and tests, built from the sample's cast and places."""

from __future__ import annotations

import random
from pathlib import Path

from ruamel.yaml import YAML

SHOTS = ["wide", "full", "medium", "medium-close-up", "close-up", "extreme-wide", "extreme-close-up"]
POSITIONS = ["left", "center-left", "center", "center-right", "right"]
PLACES = [
    ("harbour", "dawn"),
    ("tower-square", "night"),
    ("cafe", "day"),
    ("workshop", "dusk"),
    ("clock-room", "night"),
]
CAST = ["wren", "tobias", "ada", "bea"]
LINES = [
    "Did you hear that?",
    "The clock is running backwards again — I'm sure of it.",
    "Keep your voice down, someone might be listening.",
    "We should tell Constable Bea before it gets worse.",
    "That's not a gear I've ever seen before.",
    "Come on, the café closes soon!",
]
KINDS = ["speech", "speech", "whisper", "thought", "shout"]


def write_long_episode(root: Path, number: int, panels: int = 68, seed: int = 7) -> Path:
    """Write episodes/epNNN/storyboard.yaml with `panels` varied panels; returns its path."""
    rng = random.Random(seed)
    items = []
    for index in range(1, panels + 1):
        location, time = PLACES[(index - 1) // 14 % len(PLACES)]
        cast = rng.sample(CAST, rng.randint(0, 3))
        positions = rng.sample(POSITIONS, len(cast))
        panel = {
            "id": f"p{index:03d}",
            "location": location,
            "time": time,
            "shot": SHOTS[index % len(SHOTS)] if index % 14 != 1 else "extreme-wide",
            "characters": [{"id": c, "position": p} for c, p in zip(cast, positions, strict=True)],
            "action": f"Beat {index}: the mystery deepens at the {location}.",
            "gap_after": rng.choice(["tight", "normal", "normal", "slow"]) if index % 14 else "scene-change",
            "height": rng.choice([0.8, 1.0, 1.25, 1.25, 1.5]),
        }
        if cast and rng.random() < 0.6:
            panel["dialogue"] = [
                {"speaker": speaker, "text": rng.choice(LINES), "kind": rng.choice(KINDS)}
                for speaker in cast[: rng.randint(1, min(2, len(cast)))]
            ]
        if index % 9 == 0:
            panel["caption"] = "Later that evening…"
        if index % 11 == 0:
            panel["sfx"] = "TICK-TOCK"
        items.append(panel)
    storyboard = {"episode": number, "title": "The Long Night", "style": "soft-watercolour", "panels": items}
    path = root / "episodes" / f"ep{number:03d}" / "storyboard.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    yaml = YAML()
    yaml.default_flow_style = False
    with path.open("w", encoding="utf-8") as handle:
        yaml.dump(storyboard, handle)
    return path
