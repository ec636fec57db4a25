"""The draft painters: flat, deterministic previz art, one module per kind of picture.

`draft_art.render_draft` picks the painter for a request's subject. The modules, from the
bottom up: `colour` and `shapes` (paper, ink, outlined shapes, PNG bytes), `looks` (a
character's colours, read back from its reference), `figure` (one person, its expression and
pose, and the share of a panel one part of it may cover), `scene` (what a painter drew and
where, for tests), `vocabulary` (the scene elements a location's words call for), then the
pictures: `sheets` (character sheets), `style` (style frames), `scenery` (location plates),
`props` (the things a panel's action and poses name) and `panel` (panels, cutouts, the
harmonise pass and the placeholder card). Where people stand is not decided here but in
`studio.render.staging`, which the compositor and the letterer read too.

This package imports nothing from the rest of `studio.render` but `staging`, so the
compositor can share its paper colour without an import cycle (the prop nouns come from
`studio.project.props`, which `studio check` warns from).
"""
