"""One hierarchy of errors that the CLI turns into clean messages (never tracebacks).

Each error's message says what is wrong and, where there is one, what to do about it.
"""

from __future__ import annotations

from dataclasses import dataclass


class StudioError(Exception):
    """A problem the user can fix; the CLI prints it and exits non-zero."""

    exit_code = 1


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem in one file, located as the editor shows it (1-based line and column)."""

    path: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.message}"


class ProjectInvalid(StudioError):
    """The project files have errors; all of them are listed, not just the first."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = sorted(diagnostics)
        count = len(self.diagnostics)
        lines = "\n".join(str(d) for d in self.diagnostics)
        super().__init__(f"{lines}\n{count} error{'s' if count != 1 else ''} found; nothing was generated.")


class ProjectNotFound(StudioError):
    pass


class UsageError(StudioError):
    exit_code = 2


class ProviderError(StudioError):
    """A provider could not serve a request; subclasses say whether retrying may help.

    `fatal` errors stop the whole run (every other job would fail the same way).
    """

    fatal = False
    kind = "error"


class ProviderUnavailable(ProviderError):
    fatal = True


class AuthFailed(ProviderError):
    fatal = True


class InsufficientCredits(ProviderError):
    fatal = True


class RateLimited(ProviderError):
    pass


class Rejected(ProviderError):
    """The provider refused this input (validation or content policy); the same input will fail again."""

    kind = "rejected"


class SubmissionUnknown(ProviderError):
    """The request may have reached the provider but no id came back: never resend it blindly."""


class StorageError(StudioError):
    """Writing to build/ or .studio/ failed (disk full, permission denied)."""
