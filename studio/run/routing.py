"""The providers one run may use: their request slots, quotas, and which of them are down.

A job tries the entries of its fallback chain in order (see `Job.routes`); this pool answers
whether an entry's provider can take requests at all, and remembers why not, so the second
job does not rediscover that the first provider is out of credits.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from studio.core.errors import ProviderError, Rejected, SubmissionUnknown
from studio.ledger.quota import Quota
from studio.providers.base import Provider

# Transient provider-level failures in a row (after each request's own retries) before a provider
# counts as down for the rest of the run.
STRIKES = 3


@dataclass(frozen=True)
class ProviderSetup:
    """What the run knows about one provider before it starts."""

    slots: int  # requests in flight at once
    poll_interval: float
    quota: Quota | None = None
    on_quota: str = "next"  # next, wait, stop
    # Sent ahead into the provider's own queue (fal), once it has accepted a first request:
    # a bad key or an empty account then costs one refused request, not a burst.
    ahead: int = 0


@dataclass
class ProviderPool:
    providers: dict[str, Provider]
    setup: dict[str, ProviderSetup]
    # Providers that cannot serve (a missing key, no credits, down): name -> why.
    down: dict[str, str] = field(default_factory=dict)
    fallback_on_rejection: bool = False
    _slots: dict[str, asyncio.Semaphore] = field(default_factory=dict)
    _strikes: dict[str, int] = field(default_factory=dict)
    _opened: set[str] = field(default_factory=set)

    @property
    def paid(self) -> bool:
        return any(provider.paid for provider in self.providers.values())

    def get(self, name: str) -> Provider | None:
        """The provider, or None when it is down or was never available (see `why_not`)."""
        return None if name in self.down else self.providers.get(name)

    def why_not(self, name: str) -> str:
        return self.down.get(name, f"'{name}' is not a provider this run can use")

    def slot(self, name: str) -> asyncio.Semaphore:
        if name not in self._slots:
            self._slots[name] = asyncio.Semaphore(self.setup[name].slots)
        return self._slots[name]

    def accepted(self, name: str) -> None:
        """The provider took a request: open the slots sent ahead into its queue (once)."""
        if name not in self._opened:
            self._opened.add(name)
            for _ in range(self.setup[name].ahead):
                self.slot(name).release()

    def may_fall_back(self, error: ProviderError) -> bool:
        """Only failures of the provider itself move a job on: never one whose request may have been
        taken (it may be charged), and a content refusal only when the user allowed it."""
        if isinstance(error, SubmissionUnknown):
            return False
        if isinstance(error, Rejected):
            return self.fallback_on_rejection
        return True

    def failed(self, name: str, error: ProviderError) -> bool:
        """Count a provider-level failure; True when it leaves the provider down for this run."""
        if isinstance(error, Rejected):
            return False  # this input, not the provider
        self._strikes[name] = self._strikes.get(name, 0) + 1
        # Strikes only route around a flaky provider; alone, it keeps serving (each job fails on its own).
        struck_out = self._strikes[name] >= STRIKES and len(self.providers) > 1
        if (error.fatal or struck_out) and name not in self.down:
            self.down[name] = str(error)
            return True
        return False

    def succeeded(self, name: str) -> None:
        self._strikes.pop(name, None)

    def all_down(self) -> bool:
        return all(name in self.down for name in self.providers) if self.providers else True

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()
