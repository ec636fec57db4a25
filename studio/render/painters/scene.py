"""What a painter drew and where: the scene description tests and tools read instead of guessing from pixels.

A plate records each scene element it drew (water, boats, shelves, ...), a panel each prop and the
figure it was placed for. Boxes are in the picture's own pixels (x0, y0, x1, y1), before a dutch turn.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Placed:
    name: str
    box: Box
    holder: str | None = None  # the figure (character ref) a prop was placed for; None: the panel's


@dataclass
class Scene:
    kind: str  # "plate" or "panel"
    items: list[Placed] = field(default_factory=list)

    def add(self, name: str, box: Box, holder: str | None = None) -> None:
        x0, y0, x1, y1 = box
        self.items.append(Placed(name, (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)), holder))

    def names(self) -> list[str]:
        """Each drawn name once, in drawing order."""
        return list(dict.fromkeys(item.name for item in self.items))

    def boxes(self, name: str) -> list[Box]:
        return [item.box for item in self.items if item.name == name]
