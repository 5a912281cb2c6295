"""LIVE mode: newest frame wins, on three threads (see `runner`), with its one-slot boxes and its stats."""

from fercam.live.runner import DISCONNECTED, LiveRunner
from fercam.live.slots import LatestSlot
from fercam.live.stats import LiveStats
from fercam.live.threads import set_up_for_live_threads

__all__ = ["DISCONNECTED", "LatestSlot", "LiveRunner", "LiveStats", "set_up_for_live_threads"]
