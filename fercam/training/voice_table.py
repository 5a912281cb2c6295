"""Features of every 2 s window of every training clip, for the hand-written set or openSMILE's, cached on disk.

`kind` names the feature set: "hand" (`fercam.voice.voice_features`, 299 numbers, what the app
runs), "egemaps" (openSMILE eGeMAPSv02 functionals, 88) or "compare" (openSMILE ComParE_2016
functionals, 6,373). Augmented copies (`fercam.training.voice_augment`) are separate rows that
point to the same clip, flagged `augmented`, so evaluation can leave them out.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fercam.training.voice_augment import augment
from fercam.training.voice_data import SpeechData
from fercam.voice.features import SAMPLE_RATE, FeatureNorm, clip_windows, fit_window, voice_features

log = logging.getLogger(__name__)

KINDS = ("hand", "egemaps", "compare")
PRIOR_WINDOWS = 8.0  # how many windows the training speakers' average weighs in a recording's statistics


@dataclass(frozen=True)
class WindowTable:
    """Raw features of every 2 s window, the clip each came from, and whether it is an augmented copy."""

    features: np.ndarray
    clip: np.ndarray
    augmented: np.ndarray

    def rows(self, mask: np.ndarray) -> WindowTable:
        return WindowTable(self.features[mask], self.clip[mask], self.augmented[mask])


def opensmile_features(kind: str):
    """A function windows -> (N, D) float32 of openSMILE functionals (`pip install opensmile`)."""
    import opensmile

    feature_set = {"egemaps": opensmile.FeatureSet.eGeMAPSv02, "compare": opensmile.FeatureSet.ComParE_2016}[kind]
    smile = opensmile.Smile(feature_set=feature_set, feature_level=opensmile.FeatureLevel.Functionals)

    def extract(windows: list[np.ndarray]) -> np.ndarray:
        rows = [smile.process_signal(fit_window(w), SAMPLE_RATE).to_numpy()[0] for w in windows]
        return np.asarray(rows, np.float32).reshape(len(windows), -1)

    return extract


def extractor(kind: str):
    if kind not in KINDS:
        raise ValueError(f"feature kind must be one of {', '.join(KINDS)}, not {kind!r}")
    return voice_features if kind == "hand" else opensmile_features(kind)


def clip_pieces(data: SpeechData, copies: int, seed: int) -> tuple[list[np.ndarray], list[int], list[bool]]:
    """Every window of every clip, then of `copies` augmented versions of each clip."""
    rng = np.random.default_rng(seed)
    windows, owner, augmented = [], [], []
    for copy in range(copies + 1):
        for i, clip in enumerate(data.clips):
            samples = clip.astype(np.float32) / 32768.0
            pieces = clip_windows(augment(samples, rng) if copy else samples)
            windows += pieces
            owner += [i] * len(pieces)
            augmented += [copy > 0] * len(pieces)
    return windows, owner, augmented


def cache_key(data: SpeechData, kind: str, copies: int, seed: int) -> str:
    """Changes when the clips, labels, feature set or augmentation change."""
    digest = hashlib.sha1(f"{kind}:{copies}:{seed}:{len(data)}".encode())
    digest.update(data.labels.tobytes())
    digest.update("|".join(data.voices.tolist()).encode())
    for clip in data.clips[:: max(1, len(data) // 50)]:
        digest.update(clip[:4000].tobytes())
    return digest.hexdigest()[:16]


def window_table(
    data: SpeechData, kind: str = "hand", *, copies: int = 0, seed: int = 7, cache: Path | None = None
) -> WindowTable:
    """Features of all windows (and of `copies` augmented versions), read from `cache` when it matches."""
    path = None if cache is None else Path(cache) / f"voice-{kind}-{cache_key(data, kind, copies, seed)}.npz"
    if path is not None and path.is_file():
        with np.load(path) as npz:
            return WindowTable(npz["features"], npz["clip"], npz["augmented"])
    started = time.time()
    windows, owner, augmented = clip_pieces(data, copies, seed)
    table = WindowTable(extractor(kind)(windows), np.array(owner), np.array(augmented))
    log.info("%s features of %d windows in %.0f s", kind, len(owner), time.time() - started)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, features=table.features, clip=table.clip, augmented=table.augmented)
    return table


def population_norm(features: np.ndarray, groups: np.ndarray, prior_windows: float = PRIOR_WINDOWS) -> FeatureNorm:
    """The average voice of `groups` (speakers): mean of their means, root mean of their variances."""
    means, variances = [], []
    for group in np.unique(groups):
        rows = features[groups == group]
        means.append(np.nanmean(rows, axis=0))
        variances.append(np.nanvar(rows, axis=0))
    mean, var = np.nanmean(means, axis=0), np.nanmean(variances, axis=0)
    return FeatureNorm(np.nan_to_num(mean), np.sqrt(np.nan_to_num(var, nan=1.0)) + 1e-6, prior_windows)


def normalise_groups(norm: FeatureNorm, features: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Standardise each group's rows (a speaker, a clip) with that group's own shrunk statistics."""
    out = np.empty((len(features), features.shape[1] + 1), np.float32)
    for group in np.unique(groups):
        rows = groups == group
        out[rows] = norm.apply(features[rows])
    return out
