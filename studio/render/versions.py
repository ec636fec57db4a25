"""The version of each local renderer's output, part of the content key of everything it makes.

Bump a renderer's version when a change to its code changes its pixels: every object it made is made
again (free, local work), and nothing paid is. They live here, apart from the renderers, so that
planning a run (which keys every job) does not import the renderers themselves (lettering, contact
sheets, compositing): a run that finds everything made starts faster. The draft renderer keeps its
own (studio.render.draft_art.DRAFT_VERSION).
"""

from __future__ import annotations

CROP_VERSION = 1  # character sheet crops (studio.render.crop)
PACK_VERSION = 2  # packed reference sheets (studio.render.composite.pack)
COMPOSITE_VERSION = 2  # composited multi-character panels (studio.render.composite.compose)
UPSCALE_VERSION = 1  # the local upscale (studio.render.upscale)
LETTER_VERSION = 3  # lettered panels (studio.render.lettering); 3: tails read as their speaker's
CONTACT_VERSION = 7  # contact sheets (studio.render.contact); 7: a consistency badge per panel
