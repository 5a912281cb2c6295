"""Name -> factory registries, one per role, so the CLI, the tray, the window and the settings choose alike."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    name: str
    factory: Callable
    help: str
    unavailable: Callable[[], str | None]  # None if it can run here, else the reason
    matches: Callable[[str], bool] | None  # for kinds chosen by what the user typed ("0", "clip.mp4", ...)
    live: bool  # frames come (or go) in real time: the pipeline runs in LIVE mode


def _always() -> str | None:
    return None


class Registry:
    """The factories of one role (sources, sinks, detectors), in the order they were registered."""

    def __init__(self, role: str) -> None:
        self.role = role
        self._entries: dict[str, Entry] = {}

    def register(
        self,
        name: str,
        factory: Callable,
        *,
        help: str = "",
        unavailable: Callable[[], str | None] = _always,
        matches: Callable[[str], bool] | None = None,
        live: bool = False,
    ) -> None:
        self._entries[name] = Entry(name, factory, help, unavailable, matches, live)

    def kind_of(self, spec: str) -> Entry:
        """The first entry whose `matches` accepts what the user typed."""
        for entry in self._entries.values():
            if entry.matches is not None and entry.matches(spec):
                return entry
        raise ValueError(f"not a {self.role}: {spec!r} ({'; '.join(e.help for e in self._entries.values())})")

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def names(self) -> list[str]:
        return list(self._entries)

    def why_unavailable(self, name: str) -> str | None:
        """Why `name` cannot run on this machine (None if it can)."""
        return self.entry(name).unavailable()

    def available(self) -> list[str]:
        """The names that can run here (what a menu should offer)."""
        return [name for name, entry in self._entries.items() if entry.unavailable() is None]

    def entry(self, name: str) -> Entry:
        if name not in self._entries:
            raise ValueError(f"unknown {self.role} {name!r}; choose one of: {', '.join(self._entries)}")
        return self._entries[name]

    def create(self, name: str, **options):
        return self.entry(name).factory(**options)
