"""The props of a storyboard: the nouns the draft previz can draw, and the prop-like nouns it cannot.

A panel's `action`, `notes` and its characters' `pose` name the things people hold, look at or stand
on ("holding out the brass token", "loupe to one eye", "standing on a bollard"). The draft painters
(`studio.render.painters.props`) draw each noun of `PROPS` near the figure that holds or looks at it;
`studio check` (`studio.project.lint`, rule `undrawn-props`) warns, once per episode, about the nouns
of `UNDRAWN` a panel mentions, so a creator knows the previz will leave them out.

Both lists are small on purpose. They are not every noun in English: `PROPS` is what the previz
draws, and `UNDRAWN` only common hand-held or stage objects a storyboard is likely to name, so the
warning stays quiet on ordinary prose (body parts, places, light and weather are never props).

Words match whole words, case-insensitively, with an optional plural -s or -es; a two-word name
("clock face") matches as a phrase and wins over its parts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

# Prop -> the words that name it. The painter draws each prop in its own shape (see its docstring).
PROPS: dict[str, tuple[str, ...]] = {
    "clock face": ("clock face", "clock-face", "dial"),
    "silhouette": ("silhouette",),
    "token": ("token", "coin", "medal", "medallion", "badge"),
    "lantern": ("lantern", "torch", "flashlight"),
    "loupe": ("loupe", "magnifying glass", "magnifier", "eyeglass"),
    "notebook": ("notebook", "notepad", "sketchbook", "sketch page", "book", "diary", "journal", "atlas"),
    "letter": ("letter", "envelope", "paper", "photograph", "photo", "map"),
    "cup": ("cup", "mug", "teacup"),
    "bun": ("bun", "scone", "cake", "pastry", "biscuit"),
    "key": ("key",),
    "gear": ("gear", "cog", "gearwheel", "sprocket"),
    "bell": ("bell", "doorbell"),
    "bollard": ("bollard",),
    "bag": ("satchel", "bag", "basket"),
    "pen": ("pen", "pencil"),
    "tool": ("screwdriver", "spanner", "wrench", "hammer", "pliers", "tweezers"),
    "box": ("box", "drawer", "crate"),
    "watch": ("pocket watch", "wristwatch"),
    "bicycle": ("bicycle", "bike"),
    "umbrella": ("umbrella",),
    "ladder": ("ladder",),
}

# Prop-like nouns the previz cannot draw: mentioned in a panel, they are left out of its draft.
UNDRAWN: tuple[str, ...] = (
    "bottle",
    "camera",
    "candle",
    "cap",
    "car",
    "dog",
    "flower",
    "guitar",
    "gun",
    "hat",
    "knife",
    "phone",
    "rope",
    "sword",
    "telescope",
    "wand",
)

# Words that make the noun something else when they follow it ("key moment"): never a prop there.
_NOT_A_NOUN_AFTER = {
    "key": ("moment", "point", "question", "witness"),
    "book": ("it", "a", "the"),
    "table": ("lamp",),  # a table lamp is a lamp
    "bench": ("lamp",),
}


@cache
def _pattern(word: str, plural: bool) -> re.Pattern[str]:
    body = r"[\s-]+".join(re.escape(part) for part in re.split(r"[\s-]+", word))
    return re.compile(rf"\b{body}{'(?:e?s)?' if plural else ''}\b", re.IGNORECASE)


# A thing the text says is not there ("where a little brass bell used to hang") is not drawn.
_ABSENT = re.compile(r"^\W*(?:\w+\W+){0,3}?(?:used to|is missing|was missing|missing|gone|stolen)\b", re.IGNORECASE)


def mentions(text: str, word: str, plural: bool = True) -> list[int]:
    """Start offsets where `text` names `word` as a thing that is there (`plural`: "-s"/"-es" too)."""
    found = []
    for match in _pattern(word, plural).finditer(text):
        rest = text[match.end() :]
        after = rest.split(maxsplit=1)
        if after and after[0].lower().strip(".,;:!?") in _NOT_A_NOUN_AFTER.get(word, ()):
            continue
        if _ABSENT.match(rest):
            continue
        found.append(match.start())
    return found


def props_in(*texts: str | None) -> list[str]:
    """The drawable props the texts name, in order of first mention (a phrase hides its parts:
    "clock face" is not also a "clock")."""
    text = " \n ".join(t for t in texts if t)
    first: dict[str, int] = {}
    taken: list[tuple[int, int]] = []
    words = sorted(((w, p) for p, ws in PROPS.items() for w in ws), key=lambda item: -len(item[0]))
    for word, prop in words:  # longest first, so a phrase claims its span before its parts
        for start in mentions(text, word):
            end = start + len(word)
            if any(s <= start < e or start <= s < end for s, e in taken):
                continue
            taken.append((start, end))
            first[prop] = min(first.get(prop, start), start)
    return sorted(first, key=lambda prop: first[prop])


def undrawn_in(texts: Iterable[str | None]) -> list[str]:
    """The prop-like nouns of `UNDRAWN` the texts name, in order of first mention."""
    text = " \n ".join(t for t in texts if t)
    found = {word: min(hits) for word in UNDRAWN if (hits := mentions(text, word))}
    return sorted(found, key=lambda word: found[word])
