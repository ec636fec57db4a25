"""The review app: one episode of one track, as a page, its images and a small JSON API.

Routes (every one behind the token: `?token=` on the page, its assets and images; the
`X-Studio-Token` header on the JSON API, so another site's form can never post to it):

- `GET /`: the page: the strip as the reader sees it (lettered panels and their gutters) and the grid
  (each panel's takes side by side, status, take, cost, consistency, note, script).
- `GET /assets/review.js`, `/assets/review.css`: the page's script and style (no inline code, so the
  page's Content-Security-Policy allows no inline script at all).
- `GET /image/panel/{panel}`: the lettered panel, build/episodes/epNNN/panels/<panel>.png;
  `GET /image/take/{panel}/{take}`: a take, build/episodes/epNNN/generated/<panel>_t<take>.png. The
  panel must be one of the storyboard's and the take a number: the path is built here, never taken
  from the request, and must resolve inside the project's build/ folder.
- `GET /api/state`: the panels' review state and consistency scores, polled by the page every 2 s to
  follow a run.
- `POST /api/approve` `{"panels": [...]}`, `POST /api/retake` `{"panels": [...], "note": "..."}`,
  `POST /api/pick` `{"panel": "p003", "take": 2}`: through `Reviews.approve` / `Reviews.retake` /
  `Reviews.pick`, as `studio approve`, `studio retake` and `studio pick` do.

The project and the ledger are opened on every request (a few ms), so the page shows what a run in
another process has made, and a storyboard edited meanwhile.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from studio.consistency.store import consistency_json, panel_scores, take_scores
from studio.core.errors import StudioError, UsageError
from studio.core.money import format_usd
from studio.db.tables import ledger_engine
from studio.project.loader import Project, load_project
from studio.project.models import GAP_PIXELS, Gap, Storyboard
from studio.providers.registry import project_plugins
from studio.review.takes import REJECTED, TODO, Reviews
from studio.run.local_jobs import _spent_per_panel

TOKEN_HEADER = "X-Studio-Token"
MAX_NOTE = 2_000
ASSETS = {"review.js": "text/javascript; charset=utf-8", "review.css": "text/css; charset=utf-8"}
ASSET_DIR = Path(__file__).resolve().parent.parent / "templates" / "review_app"
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        b"base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    (b"referrer-policy", b"no-referrer"),  # the token is in the URL: never sent on
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
]


def make_app(project_root: Path, episode: int, track: str, token: str) -> Starlette:
    """The review app of one episode's `track` (draft, preview or final) in the project at `project_root`."""
    if not token:
        raise ValueError("the review app needs a token")
    root = project_root.resolve()
    environment = Environment(
        loader=PackageLoader("studio", "templates/review_app"),
        autoescape=True,  # dialogue, notes and ids come from the project's files: text, never markup
        undefined=StrictUndefined,
    )
    environment.filters["on_model"] = on_model

    def project() -> Project:
        return load_project(root, project_plugins())

    def page(request: Request) -> Response:
        loaded = project()
        storyboard = loaded.episode(episode)
        html = environment.get_template("page.html.j2").render(
            title=loaded.config.title,
            storyboard=storyboard,
            track=track,
            token=token,
            assets={name: _url(f"/assets/{name}", token) for name in ASSETS},
            state=_state(loaded, storyboard, episode, track, token),
            script={panel.id: _script(panel) for panel in storyboard.panels},
        )
        return HTMLResponse(html)

    def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:
            return PlainTextResponse("not found", 404)
        return FileResponse(ASSET_DIR / name, media_type=ASSETS[name])

    def image(request: Request) -> Response:
        loaded = project()
        panel = request.path_params["panel"]
        if panel not in {p.id for p in loaded.episode(episode).panels}:
            return PlainTextResponse("not found", 404)
        take = request.path_params.get("take")
        path = _take_path(loaded, episode, panel, take) if take is not None else _panel_path(loaded, episode, panel)
        build = loaded.build_dir.resolve()
        if not path.is_file() or not path.resolve().is_relative_to(build):
            return PlainTextResponse("not found", 404)
        return FileResponse(path, media_type="image/png", headers={"cache-control": "private, max-age=3600"})

    def state(request: Request) -> Response:
        loaded = project()
        return JSONResponse(_state(loaded, loaded.episode(episode), episode, track, token))

    async def act(request: Request) -> Response:
        action = request.path_params["action"]
        if action not in ("approve", "retake", "pick"):
            return JSONResponse({"error": f"unknown action {action!r}"}, 404)
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "the body must be JSON"}, 400)
        if action == "pick":
            panel = body.get("panel") if isinstance(body, dict) else None
            take = body.get("take") if isinstance(body, dict) else None
            # bool is an int to Python, never a take number
            if not isinstance(panel, str) or not isinstance(take, int) or isinstance(take, bool):
                return JSONResponse({"error": "'panel' must be a panel id and 'take' a take number"}, 400)
            return await run_in_threadpool(pick, panel, take)
        panels = body.get("panels") if isinstance(body, dict) else None
        note = body.get("note") if isinstance(body, dict) else None
        if not isinstance(panels, list) or not panels or not all(isinstance(p, str) for p in panels):
            return JSONResponse({"error": "'panels' must be a list of panel ids"}, 400)
        if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE):
            return JSONResponse({"error": f"'note' must be text of at most {MAX_NOTE} characters"}, 400)
        return await run_in_threadpool(review, action, panels, (note or "").strip() or None)

    def review(action: str, panels: list[str], note: str | None) -> Response:
        loaded = project()
        known = {p.id for p in loaded.episode(episode).panels}
        unknown = [p for p in panels if p not in known]
        if unknown:
            return JSONResponse({"error": f"not panels of episode {episode}: {', '.join(unknown)}"}, 400)
        with ledger_engine(loaded.state_dir, loaded.database_url) as engine:
            reviews = Reviews(engine, track)
            takes = reviews.approve(episode, panels) if action == "approve" else reviews.retake(episode, panels, note)
        return JSONResponse({"action": action, "panels": dict(zip(panels, takes, strict=True))})

    def pick(panel: str, take: int) -> Response:
        loaded = project()
        if panel not in {p.id for p in loaded.episode(episode).panels}:
            return JSONResponse({"error": f"not a panel of episode {episode}: {panel}"}, 400)
        with ledger_engine(loaded.state_dir, loaded.database_url) as engine:
            picked = Reviews(engine, track).pick(episode, panel, take)
        return JSONResponse(
            {"action": "pick", "panel": panel, "take": picked.take, "not_picked": list(picked.not_picked)}
        )

    def refused(request: Request, exc: Exception) -> Response:
        """A StudioError (invalid project, a panel with no take yet): its message, as text or JSON."""
        status = 409 if isinstance(exc, UsageError) else 503
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": str(exc)}, status)
        return PlainTextResponse(str(exc), status)

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/assets/{name}", asset),
            Route("/image/panel/{panel}", image),
            Route("/image/take/{panel}/{take:int}", image),
            Route("/api/state", state),
            Route("/api/{action}", act, methods=["POST"]),
        ],
        exception_handlers={StudioError: refused},
    )
    app.add_middleware(TokenGate, token=token)
    return app


class TokenGate:
    """Refuses (403, nothing else) every request without the launch token: `?token=` for what a
    browser loads by URL, the X-Studio-Token header for the API. Adds the security headers."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            return  # no websockets: closed unanswered
        request = Request(scope)
        api = request.url.path.startswith("/api/")
        given = request.headers.get(TOKEN_HEADER) if api else request.query_params.get("token")
        if not given or not hmac.compare_digest(given.encode(), self.token):
            await PlainTextResponse("forbidden", 403, headers={"cache-control": "no-store"})(scope, receive, send)
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers += [h for h in SECURITY_HEADERS if h[0] not in names]
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, secured)


def _url(path: str, token: str, **query: Any) -> str:
    return f"{path}?{urlencode({'token': token, **query})}"


def _episode_dir(project: Project, episode: int) -> Path:
    return project.build_dir / "episodes" / f"ep{episode:03d}"


def _panel_path(project: Project, episode: int, panel: str) -> Path:
    return _episode_dir(project, episode) / "panels" / f"{panel}.png"


def _take_path(project: Project, episode: int, panel: str, take: int) -> Path:
    return _episode_dir(project, episode) / "generated" / f"{panel}_t{take}.png"


def _version(path: Path) -> int | None:
    """The file's modification time (ns), to bust the browser's cache when a run rewrites it; None: no file."""
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def _state(project: Project, storyboard: Storyboard, episode: int, track: str, token: str) -> dict[str, Any]:
    """Each panel's review state, its takes and lettered image (URLs with the token), and what it cost."""
    with ledger_engine(project.state_dir, project.database_url) as engine:
        reviews = Reviews(engine, track)
        latest = reviews.latest(episode)
        history = {panel.id: reviews.takes(episode, panel.id) for panel in storyboard.panels}
        spent = _spent_per_panel(engine, episode, track)
        scored = take_scores(panel_scores(engine, track, episode), {p: state.take for p, state in latest.items()})
    threshold_for = project.config.consistency.threshold_for
    panels = []
    for panel in storyboard.panels:
        current = latest.get(panel.id)
        lettered = _version(_panel_path(project, episode, panel.id))
        takes = []
        for take in history[panel.id]:
            version = _version(_take_path(project, episode, panel.id, take.take))
            src = _url(f"/image/take/{panel.id}/{take.take}", token, v=version) if version else None
            # Any other take with an image may become the one used (the current one is approved with 'a').
            pickable = src is not None and take.status != REJECTED and (current is None or take.take != current.take)
            takes.append(
                {"take": take.take, "status": take.status, "note": take.note, "src": src, "pickable": pickable}
            )
        cost = spent.get(panel.id)
        panels.append(
            {
                "id": panel.id,
                "status": current.status if current else TODO,
                "take": current.take if current else None,
                "note": current.note if current else None,
                "takes": takes,
                "lettered": _url(f"/image/panel/{panel.id}", token, v=lettered) if lettered else None,
                "cost": (format_usd(cost[0]) + (" est." if cost[1] else "")) if cost else None,
                # How on-model the current take's characters are, lowest first (as `studio review --json`).
                "consistency": consistency_json(scored.get(panel.id), threshold_for),
                "gap": GAP_PIXELS[panel.gap_after] if isinstance(panel.gap_after, Gap) else panel.gap_after,
            }
        )
    return {"episode": episode, "track": track, "panels": panels}


def on_model(consistency: dict[str, Any] | None) -> str:
    """'kai 0.71! · wren 0.93': the current take's scores, lowest first, '!' under the threshold (the
    page's script writes the same text when it refreshes)."""
    if not consistency:
        return ""
    return " · ".join(
        f"{s['character']} {'—' if s['value'] is None else format(s['value'], '.2f')}{'!' if s['below'] else ''}"
        for s in consistency["scores"]
    )


def _script(panel: Any) -> list[tuple[str, str]]:
    """What the panel says, as (who or what, text) pairs: caption, dialogue, sfx."""
    lines = [("caption", panel.caption)] if panel.caption else []
    lines += [
        (f"{line.speaker} ({line.kind})" if line.kind != "speech" else line.speaker, line.text)
        for line in panel.dialogue
    ]
    return lines + ([("sfx", panel.sfx)] if panel.sfx else [])
