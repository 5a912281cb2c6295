"""A learnt voice-to-mouth filter for who-is-speaking, measured against the shipped speech-band loudness (tried,
not adopted: docs/speaking.md, "A learnt voice-to-mouth filter").

The attribution correlates each mouth's opening with the voice's loudness in 300-3000 Hz. Here a ridge regression
predicts the mouth's opening from the voice's log energy in `BANDS` bands (100-5000 Hz, each high-passed like the
mouth, at grid lags -3..+3), so the voice's spectrum (which vowel, how open) and not only its loudness says how
the mouth should move; the prediction then stands in for the loudness.

    PYTHONPATH=. python tools/voice_mouth_filter.py [--galleries DIR]

Prints, over the seven GRID clips, every 1.5 s window with 30% speech, each clip's mouth against its own voice
(in step) and against each other clip's voice (out of step), the best correlation over lags +-2 grid steps, for
both voice signals; the filter scoring a pair is fitted on the five other clips (never on the two it scores).
`--galleries DIR [--set NAME=VALUE ...]` (a `tools/measure_speaking.py --cache` folder) replays those galleries
with the filter fitted on all seven clips in place of the loudness: in-sample, so it flatters the filter.
"""

from __future__ import annotations

import argparse
import sys
from collections import deque
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import measure_speaking  # noqa: E402
from speaking_galleries import GRID  # noqa: E402  (measure_speaking puts tests/ on the path)

from fercam.speaking.attribution import highpass  # noqa: E402
from fercam.speaking.voice_activity import FREQUENCIES, VoiceActivity, power_spectrum  # noqa: E402
from fercam.voice.audio import DEFAULT_RATE, resample, to_float  # noqa: E402
from fercam.voice.speech import VAD_CHUNK  # noqa: E402

CLIPS = measure_speaking.CLIPS
BANDS = 12
LAGS = 3  # grid steps of the filter (+-0.12 s)
RIDGE = 1.0  # the penalty, per training row, on the standardised inputs
HIGHPASS = 7  # grid steps, as the attribution's 0.28 s
WINDOW, MIN_SPEECH, SCORE_LAGS = 37, 0.3, 2  # 1.5 s windows with 30% speech; best of lags +-0.08 s

_EDGES = np.geomspace(100.0, 5000.0, BANDS + 1)
_MASKS = [(FREQUENCIES >= lo) & (FREQUENCIES < hi) for lo, hi in zip(_EDGES[:-1], _EDGES[1:])]


def bands_db(chunks: np.ndarray) -> np.ndarray:
    """(N, 512) chunks at 16 kHz -> (N, BANDS) log energies."""
    spectrum = power_spectrum(chunks)
    return np.stack([10 * np.log10(spectrum[:, m].sum(axis=1) + 1e-10) for m in _MASKS], axis=1)


def lagged(bands: np.ndarray) -> np.ndarray:
    """(T, BANDS) on a 25 Hz grid -> (T, BANDS * (2 LAGS + 1)): each band high-passed, at every lag."""
    x = np.stack([highpass(column, HIGHPASS) for column in bands.T], axis=1)
    rows = np.arange(len(x))
    return np.concatenate([x[np.clip(rows + lag, 0, len(x) - 1)] for lag in range(-LAGS, LAGS + 1)], axis=1)


class VoiceFilter:
    """The ridge regression from `lagged` band energies to the high-passed mouth opening."""

    def __init__(self, inputs: np.ndarray, mouth: np.ndarray) -> None:
        self.mean, self.scale = inputs.mean(axis=0), inputs.std(axis=0) + 1e-6
        x = (inputs - self.mean) / self.scale
        penalty = RIDGE * len(mouth) * np.eye(x.shape[1])
        self.weights = np.linalg.solve(x.T @ x + penalty, x.T @ (mouth - mouth.mean()))

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        return ((inputs - self.mean) / self.scale) @ self.weights


class FilteredVoice(VoiceActivity):
    """`VoiceActivity` whose `loudness` is the filter's predicted mouth opening (read on the attribution's grid)."""

    voice_filter: VoiceFilter | None = None

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self._bands: deque[np.ndarray] = deque(maxlen=self._size)
        self._band_rest = np.zeros(0, np.float32)

    def feed(self, samples: np.ndarray, sample_rate: int = DEFAULT_RATE) -> None:
        x = np.concatenate([self._band_rest, resample(to_float(samples), sample_rate, DEFAULT_RATE)])
        count = len(x) // VAD_CHUNK
        self._band_rest = x[count * VAD_CHUNK :]
        self._bands.extend(bands_db(x[: count * VAD_CHUNK].reshape(count, VAD_CHUNK)))
        super().feed(samples, sample_rate)

    def bands(self, times: np.ndarray) -> np.ndarray:
        kept = np.array(self._bands).reshape(-1, BANDS)
        return np.stack([self._read(deque(kept[:, b]), times, -100.0) for b in range(BANDS)], axis=1)

    def loudness(self, times: np.ndarray) -> np.ndarray:
        times = np.asarray(times, np.float64)
        if not self._bands or self.voice_filter is None:
            return np.full(times.shape, -100.0)
        return self.voice_filter.predict(lagged(self.bands(times)))


def clip_signals(name: str) -> dict:
    """One GRID clip's mouth opening per frame (detector, held crop, mesh: as `fercam analyze`), and on the same
    25 Hz grid its voice's speech-band loudness, band energies and Silero speech."""
    from fercam.detection import load_detector
    from fercam.media import VideoReader
    from fercam.speaking.lips import MouthMeter, SteadyCrops
    from fercam.voice.audio import load_audio

    detector, meter, crops, mouths, times = load_detector(), MouthMeter(), SteadyCrops(), [], []
    for image, t in VideoReader(GRID / f"{name}.mpg").frames():
        box = max(detector.detect(image), key=lambda d: d.box.width).box
        mouths.append(meter.measure(image, crops.hold({0: box}))[0])
        times.append(t)
    voice = FilteredVoice(keep_s=30)
    voice.feed(load_audio(GRID / f"{name}.mpg"), DEFAULT_RATE)
    times = np.asarray(times, np.float64)
    return {
        "mouth": highpass(np.asarray(mouths), HIGHPASS),
        "loudness": highpass(VoiceActivity.loudness(voice, times), HIGHPASS),  # the shipped signal
        "bands": lagged(voice.bands(times)),
        "speech": voice.speech(times) >= 0.5,
    }


def best_correlation(mouth: np.ndarray, voice: np.ndarray, start: int) -> float:
    """The best correlation of the mouth's window at `start` with the voice's, the voice shifted by up to
    `SCORE_LAGS` steps; the mouth's spread floored at the mesh's jitter, as the attribution does."""
    m = mouth[start : start + WINDOW] - mouth[start : start + WINDOW].mean()
    best = -1.0
    for lag in range(-SCORE_LAGS, SCORE_LAGS + 1):
        v = voice[start + lag : start + lag + WINDOW]
        v = v - v.mean()
        best = max(best, float(m @ v) / np.sqrt((m @ m + WINDOW * 0.008**2) * (v @ v) + 1e-12))
    return best


def in_and_out_of_step(signals: dict, voice_of) -> tuple[np.ndarray, np.ndarray]:
    """Per (voice clip A, other clip B, window): A's mouth and B's mouth against A's voice, `voice_of(A, B)`."""
    inside, outside = [], []
    for a in CLIPS:
        for b in (c for c in CLIPS if c != a):
            voice = voice_of(a, b)
            for start in range(SCORE_LAGS, len(voice) - WINDOW - SCORE_LAGS, 3):
                if signals[a]["speech"][start : start + WINDOW].mean() >= MIN_SPEECH:
                    inside.append(best_correlation(signals[a]["mouth"], voice, start))
                    outside.append(best_correlation(signals[b]["mouth"], voice, start))
    return np.array(inside), np.array(outside)


def fitted(signals: dict, clips) -> VoiceFilter:
    inputs = np.concatenate([signals[c]["bands"] for c in clips])
    return VoiceFilter(inputs, np.concatenate([signals[c]["mouth"] for c in clips]))


def report(name: str, inside: np.ndarray, outside: np.ndarray) -> None:
    paired = float(np.mean(inside > outside))
    auc = float(np.mean(inside[:, None] > outside[None, :]))
    print(
        f"{name}: {len(inside)} windows; in step above out of step {paired:.3f} (same window), AUC {auc:.3f}; "
        f"median r in step {np.median(inside):.2f}, out of step {np.median(outside):.2f} (90th pct "
        f"{np.quantile(outside, 0.9):.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--galleries", type=Path, help="a measure_speaking --cache folder to replay with the filter")
    args, rest = parser.parse_known_args()  # the rest (--set NAME=VALUE) goes to measure_speaking
    signals = {c: clip_signals(c) for c in CLIPS}
    report("speech-band loudness (shipped)", *in_and_out_of_step(signals, lambda a, b: signals[a]["loudness"]))
    filters = {}

    def filtered(a: str, b: str) -> np.ndarray:
        key = frozenset((a, b))
        filters[key] = filters.get(key) or fitted(signals, [c for c in CLIPS if c not in key])
        return filters[key].predict(signals[a]["bands"])

    report("learnt filter (fitted on the 5 other clips)", *in_and_out_of_step(signals, filtered))
    if args.galleries:
        import fercam.speaking.clip

        FilteredVoice.voice_filter = fitted(signals, CLIPS)
        fercam.speaking.clip.VoiceActivity = FilteredVoice  # the galleries' streams hear through the filter
        sys.argv = [sys.argv[0], "--cache", str(args.galleries), *rest]
        measure_speaking.main()


if __name__ == "__main__":
    main()
