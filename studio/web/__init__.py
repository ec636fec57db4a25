"""The local review web app (`studio review serve`): an episode's panels in the browser, approved or
sent back for a retake through the same review code as the CLI (studio.review.takes.Reviews).

Only on 127.0.0.1, and every request carries the per-launch token printed with the URL."""

from studio.web.app import TOKEN_HEADER, make_app
from studio.web.server import bind, serve, server_for

__all__ = ["TOKEN_HEADER", "bind", "make_app", "serve", "server_for"]
