"""LIVE mode: newest frame wins, on three threads (see `runner`), with its one-slot boxes and its stats."""

from fercam.live.runner import DISCONNECTED, LiveRunner, set_up_for_live_threads
from fercam.live.slots import LatestSlot
from fercam.live.stats import LiveStats

__all__ = ["DISCONNECTED", "LatestSlot", "LiveRunner", "LiveStats", "set_up_for_live_threads"]
