"""Who is speaking: each face's mouth against the voice, over the last 1.5 s, at a few audio-video lags.

`SpeakerAttributor.update(t, {face id: mouth opening}) -> Speaking` is called once per video frame (offline every
frame, live every analysed frame); the sound goes into its `voice` (`VoiceActivity.feed`) as it comes. For each
face it resamples the mouth's recent history and the voice's speech-band loudness onto one 25 Hz grid, removes what
changes slower than syllables (a 0.3 s moving average: a mouth held open, a loud room), and takes the best
correlation over audio-video lags within +-`max_lag_s`, its covariance counted only while someone speaks. A mouth
that opens and closes with the syllables correlates; one that talks out of step, chews or stays still does not
(the still one also falls under `mouth_floor`, the mesh's own jitter, so noise cannot correlate by chance). The
correlation becomes a probability by a logistic step, lowered for a face that another face matches clearly better,
times how sure the voice detector is that someone speaks now and whether the mouth moves now; a voice no face
matches is `off_screen`. Two people talking over each other can both be speaking. docs/speaking.md has the numbers.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from fercam.speaking.voice_activity import VoiceActivity

SPEAKS = 0.5  # a face this likely to speak is speaking (two can); a voice this likely off screen is off screen
GRID_HZ = 25.0  # the common clock of mouth and voice: near every camera's rate, finer than syllables (4-5 Hz)


@dataclass(frozen=True)
class Speaking:
    """Who speaks at time `t`: `faces` maps each face id given to `update` to the probability that it speaks;
    `voice` is how sure the voice detector is that someone speaks; `off_screen` that someone speaks and no
    visible face is that person; `match` the faces' raw correlations with the voice (NaN: not judged)."""

    t: float
    faces: Mapping[int, float] = field(default_factory=dict)
    voice: float = 0.0
    off_screen: float = 0.0
    match: Mapping[int, float] = field(default_factory=dict)

    @property
    def speaker(self) -> int | None:
        """The face most likely speaking, if at least even odds; None for nobody or a voice from off screen."""
        best = max(self.faces, key=self.faces.get, default=None)
        return best if best is not None and self.faces[best] >= SPEAKS else None


def highpass(x: np.ndarray, width: int) -> np.ndarray:
    """`x` less its centred moving average over `width` samples (edges padded with the end values)."""
    if width < 2:
        return x
    pad = width // 2
    padded = np.pad(x, (pad, width - 1 - pad), mode="edge")
    return x - np.convolve(padded, np.ones(width) / width, mode="valid")


def nearest_gap(times: np.ndarray, at: np.ndarray) -> np.ndarray:
    """For each of `at`, how far the nearest of the sorted `times` is."""
    right = np.clip(np.searchsorted(times, at), 1, len(times) - 1) if len(times) > 1 else np.zeros(len(at), int)
    return np.minimum(np.abs(times[right] - at), np.abs(times[np.maximum(right - 1, 0)] - at))


class SpeakerAttributor:
    """`update(t, {face id: mouth opening}) -> Speaking`; the sound is fed into `voice` meanwhile.

    Keeps `window_s` (plus margins) of each face's mouth and of the voice, so it runs on a stream for ever;
    a face not given for `window_s` is forgotten. Times are seconds on the voice's clock.
    """

    def __init__(
        self,
        voice: VoiceActivity | None = None,
        *,
        window_s: float = 1.5,
        max_lag_s: float = 0.08,
        highpass_s: float = 0.3,
        mouth_floor: float = 0.008,
        min_speech: float = 0.1,
        min_seen: float = 0.8,
        min_history_s: float = 0.5,
        match_at: float = 0.2,
        match_scale: float = 0.07,
        rival_margin: float = 0.0,
        hangover_s: float = 0.4,
        moving_s: float = 0.5,
    ) -> None:
        self.voice = voice or VoiceActivity()
        self.window_s, self.max_lag_s, self.hangover_s = window_s, max_lag_s, hangover_s
        self._moving = max(2, round(moving_s * GRID_HZ))
        self.mouth_floor, self.min_speech, self.min_seen = mouth_floor, min_speech, min_seen
        self._min_history = round(min_history_s * GRID_HZ)
        self.match_at, self.match_scale, self.rival_margin = match_at, match_scale, rival_margin
        self._n = max(4, round(window_s * GRID_HZ))
        self._lags = round(max_lag_s * GRID_HZ)
        self._width = max(1, round(highpass_s * GRID_HZ)) | 1  # odd: a centred average
        self._margin = self._width // 2 + self._lags
        # the window's grid indices at each lag, one row a lag: every lag is judged in one product, not a loop
        lags = np.arange(-self._lags, self._lags + 1)[:, None]
        self._at_lags = self._margin + lags + np.arange(self._n)[None, :]
        self._mouths: dict[int, deque[tuple[float, float]]] = {}

    def update(self, t: float, mouths: Mapping[int, float]) -> Speaking:
        """Record each face's mouth at `t` (NaN: not measured) and say who speaks now."""
        for face_id, opening in mouths.items():
            self._mouths.setdefault(face_id, deque()).append((t, float(opening)))
        self._forget(t)
        now = min(t, self.voice.end)  # live, the sound may lag the picture: judge up to where both are known
        recent = self.voice.speech(np.linspace(now - self.hangover_s, now, 8))
        voice = float(recent.max())
        # the window ends max_lag_s early, so the voice is known at every lag
        grid = now - self.max_lag_s + (np.arange(-self._n - self._margin + 1, self._margin + 1) / GRID_HZ)
        inside = slice(self._margin, self._margin + self._n)
        on_grid = self.voice.speech(grid)  # read once: the window's share and the words' edges both come from it
        speaking = float(np.mean(on_grid[inside])) >= self.min_speech
        heard = on_grid >= 0.5
        heard[1:] |= heard[:-1].copy()  # a grid step either side: the edges of words
        heard[:-1] |= heard[1:].copy()
        sound = self._voice_at_lags(highpass(self.voice.loudness(grid), self._width), heard) if speaking else None
        judged = {face_id: self._match(face_id, grid, inside, sound) for face_id in mouths}
        match = {face_id: r for face_id, (r, _) in judged.items()}
        faces = {face_id: voice * moving * self._probability(face_id, match) for face_id, (_, moving) in judged.items()}
        off_screen = voice * math.prod(1 - p for p in faces.values())
        return Speaking(t, faces, voice, off_screen, match)

    def _voice_at_lags(self, loudness: np.ndarray, heard: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per lag, the voice's loudness over the window less its mean while someone speaks (0 elsewhere), and
        which lags can be judged (at least 4 grid steps heard, some change): the same for every face, so found once."""
        on, loudness = heard[self._at_lags], loudness[self._at_lags]
        count = on.sum(axis=1)
        mean = (loudness * on).sum(axis=1) / np.maximum(count, 1)
        voice = np.where(on, loudness - mean[:, None], 0.0)
        norm = np.sqrt((voice**2).sum(axis=1))
        usable = (count >= 4) & (norm > 0)
        return voice[usable] / norm[usable, None], usable

    def _match(
        self, face_id: int, grid: np.ndarray, inside: slice, sound: tuple[np.ndarray, np.ndarray] | None
    ) -> tuple[float, float]:
        """The best correlation of the face's mouth with the voice over the lags (NaN when it cannot be judged),
        and how surely the mouth moves now (0..1: its last `moving_s` against the mesh's jitter): a mouth that
        stopped at the end of its turn correlated a moment ago, but speaks no more."""
        if sound is None:
            return float("nan"), 0.0
        history = np.array(self._mouths[face_id], np.float64).reshape(-1, 2)
        seen = history[~np.isnan(history[:, 1])]
        window = grid[inside]
        # a face first seen within the window (a recording's start, a face coming in) is judged on its history so
        # far once that is long enough; one seen before must have been seen over most of the window
        since = window[window >= seen[0, 0] - 1.5 / GRID_HZ] if len(seen) else window[:0]
        covered = np.mean(nearest_gap(seen[:, 0], since) <= 1.5 / GRID_HZ) if len(since) else 0.0
        if covered < self.min_seen or len(since) < self._min_history:
            return float("nan"), 0.0
        half = self._width // 2
        video_grid = grid[self._lags : len(grid) - self._lags]  # the window and the high-pass margin
        mouth = highpass(np.interp(video_grid, seen[:, 0], seen[:, 1]), self._width)[half : len(video_grid) - half]
        mouth = mouth - mouth.mean()
        recent = float(np.var(mouth[-self._moving :]))
        moving = recent / (recent + (self.mouth_floor / 2) ** 2)
        mouth_norm = math.sqrt(float(mouth @ mouth) + len(mouth) * self.mouth_floor**2)
        # the covariance only while someone speaks (a voice's onset out of silence would swamp the syllables; the
        # voice is 0 elsewhere and sums to 0 where heard, so the mouth needs no centring of its own there), the
        # mouth's own spread over the whole window (a mouth moving in the silences is not this voice's)
        voice, usable = sound
        best = float((voice @ mouth).max()) / mouth_norm if usable.any() else -1.0
        return best, moving

    def _probability(self, face_id: int, match: Mapping[int, float]) -> float:
        """How well the face matches the voice, and how it compares with the best other face: a face clearly
        behind another is not the one speaking, two that match about as well (overlapping speech) both are."""
        r = match[face_id]
        if math.isnan(r):
            return 0.0
        rival = max((m for other, m in match.items() if other != face_id and not math.isnan(m)), default=-1.0)
        alone = 1 / (1 + math.exp(-(r - self.match_at) / self.match_scale))
        return alone / (1 + math.exp(-(r - rival + self.rival_margin) / self.match_scale))

    def _forget(self, t: float) -> None:
        oldest = t - self.window_s - 2 * self._margin / GRID_HZ - self.max_lag_s
        for face_id in list(self._mouths):
            history = self._mouths[face_id]
            while history and history[0][0] < oldest:
                history.popleft()
            if not history:
                del self._mouths[face_id]
