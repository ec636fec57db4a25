"""The version of each local renderer's output, part of the content key of everything it makes.

Bump a renderer's version when a change to its code changes its pixels: every object it made is made
again (free, local work), and nothing paid is. They live here, apart from the renderers, so that
planning a run (which keys every job) does not import the renderers themselves (lettering, contact
sheets, compositing, the draft painters): a run that finds everything made starts faster.
"""

from __future__ import annotations

CROP_VERSION = 1  # character sheet crops (studio.render.crop)
PACK_VERSION = 2  # packed reference sheets (studio.render.composite.pack)
COMPOSITE_VERSION = 2  # composited multi-character panels (studio.render.composite.compose)
UPSCALE_VERSION = 1  # the local upscale (studio.render.upscale)
LETTER_VERSION = 3  # lettered panels (studio.render.lettering); 3: tails read as their speaker's
CONTACT_VERSION = 7  # contact sheets (studio.render.contact); 7: a consistency badge per panel
# The draft painters' (studio.render.draft_art), part of the key of everything drawn in a draft run: bump
# it when the previz art changes, so stored previz is drawn again (paid work never depends on it).
# 2: packed panels take each figure's hair from the top of its cell; 3: places from their files, props,
# expressions and poses, no part of a figure over its share of a panel, sheets titled by name; 4: a
# figure's hair is read from the top of its reference among all its colours (Bea's, Fennick's); 5: a
# prop never hides another figure's face (a map read over a shoulder).
DRAFT_VERSION = 5
