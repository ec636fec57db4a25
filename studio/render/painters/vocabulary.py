"""The scene elements a location plate can draw, and the words of a location file that call for them.

A plate is drawn from its location file: the words of its name, description and the text of its time
of day pick elements from this vocabulary (`elements_for`), an element of the location's setting only
(a "bench" outdoors is a park bench, indoors a workbench). A place whose words name nothing here gets
a plain town street or a plain room (`DEFAULTS`). Words match as in `studio.project.props`: whole
words, any case, an optional plural.

What each sample location draws (tests/test_previz_places.py checks every one, from the scene
description and by pixels):

- harbour       water, boats, bollards, ropes, shopfronts, clock tower, cobbles, cliffs, gulls
                (and lamp posts at dawn and by day)
- tower-square  clock tower, cobbles, bench, trough, lamp posts (and gulls at dusk: swallows)
- cafe          counter, cups, tables, chairs, chalkboard, pictures, window, door (not its bell: gone)
- clock-room    clock face, gears, bells, pendulum, ladder, workbench, window (lamp at night)
- curio-shop    shelves, clocks, counter, lamp, cups, bells, window, door
- workshop      clocks, grandfather clock, workbench, stairs, rug, chairs, window, door (lamp at dusk, night)

Props (what people hold, look at or stand on) are not here: see `studio.project.props`.
"""

from __future__ import annotations

from dataclasses import dataclass

from studio.project.props import mentions


@dataclass(frozen=True)
class Element:
    name: str
    setting: str  # "exterior" or "interior"
    words: tuple[str, ...]
    plural: bool = True  # False: the plural is another element ("clock faces" are clocks on a wall)


ELEMENTS: tuple[Element, ...] = (
    # Outdoors, from the horizon forward.
    Element("cliffs", "exterior", ("cliff", "hill", "mountain", "headland")),
    Element("trees", "exterior", ("tree", "park", "garden", "wood", "forest", "orchard")),
    Element("clock tower", "exterior", ("clock tower", "tower", "belfry", "steeple")),
    Element("shopfronts", "exterior", ("shop", "shopfront", "café", "cafe", "bakery", "library", "town", "house")),
    Element("bunting", "exterior", ("bunting", "flag", "awning", "pennant")),
    Element("water", "exterior", ("water", "sea", "river", "lake", "canal", "tide", "bay")),
    Element("boats", "exterior", ("boat", "mooring", "ship", "ferry", "dinghy", "yacht")),
    Element("cobbles", "exterior", ("cobble", "cobbled", "cobblestone", "square", "plaza", "paving", "quay")),
    Element("street", "exterior", ("street", "road", "lane", "avenue", "traffic")),
    Element("bollards", "exterior", ("bollard", "mooring", "pier", "dock", "jetty", "wharf")),
    Element("ropes", "exterior", ("rope", "lobster pot", "crate", "net", "barrel")),
    Element("trough", "exterior", ("trough", "fountain", "well")),
    Element("bench", "exterior", ("bench",)),
    Element("lamp posts", "exterior", ("lamp post", "lamppost", "street lamp", "lamp")),
    Element("gulls", "exterior", ("gull", "seagull", "bird", "swallow", "pigeon")),
    # Indoors: the back wall, then what stands in front of it.
    Element("window", "interior", ("window",)),
    Element("door", "interior", ("door", "doorway")),
    Element("stairs", "interior", ("stair", "staircase", "upstairs")),
    Element("ladder", "interior", ("ladder", "trapdoor")),
    Element("chalkboard", "interior", ("chalkboard", "blackboard", "menu")),
    Element("pictures", "interior", ("photograph", "picture", "painting", "portrait", "frame")),
    Element("shelves", "interior", ("shelf", "shelves", "bookcase", "atlas", "oddment", "curio", "antique")),
    Element("clocks", "interior", ("clocks", "clock faces", "cuckoo", "carriage clock", "timepiece", "wall clock")),
    Element("grandfather clock", "interior", ("grandfather clock", "longcase")),
    Element("clock face", "interior", ("clock face",), plural=False),
    Element("gears", "interior", ("gear", "clockwork", "cog")),
    Element("pendulum", "interior", ("pendulum",)),
    Element("bells", "interior", ("bell",)),
    Element("rug", "interior", ("rug", "carpet")),
    Element("workbench", "interior", ("workbench", "bench")),
    Element("counter", "interior", ("counter", "bar", "till")),
    Element("tables", "interior", ("table", "tablecloth")),
    Element("chairs", "interior", ("chair", "stool", "seat")),
    Element("sofa", "interior", ("sofa", "couch", "armchair")),
    Element("cups", "interior", ("cup", "teacup", "crockery", "mug", "urn", "kettle")),
    Element("lamp", "interior", ("lamp", "lantern")),
    Element("plants", "interior", ("plant", "fern", "pot plant")),
)
BY_NAME = {element.name: element for element in ELEMENTS}

# A place whose words name nothing of its setting still looks like somewhere.
DEFAULTS = {"exterior": ("shopfronts", "street"), "interior": ("window", "door", "tables", "shelves")}
# Every room has a window to show the time of day (the sky behind it) unless its words leave no wall.
ALWAYS = {"interior": ("window",), "exterior": ()}


def elements_for(setting: str, *texts: str | None) -> list[str]:
    """The elements the texts call for, in `ELEMENTS` order (back to front), or the setting's defaults."""
    setting = setting if setting in DEFAULTS else "exterior"
    text = " \n ".join(t for t in texts if t)
    found = [e.name for e in ELEMENTS if e.setting == setting and any(mentions(text, w, e.plural) for w in e.words)]
    if not found:
        found = list(DEFAULTS[setting])
    found += [name for name in ALWAYS[setting] if name not in found]
    return [e.name for e in ELEMENTS if e.name in found]
