"""Speech features for the voice model: functionals of 2-second windows, and speaker normalisation.

Every 2-second window of 16 kHz speech becomes 299 numbers (statistics of MFCCs, pitch, loudness,
spectral shape and the mel spectrum over the window's speech frames), all in numpy. `FeatureNorm`
standardises them with the statistics of a recording or a voice, shrunk towards the training
speakers' average; `RunningStats` keeps such statistics for a live microphone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from fercam.voice.audio import DEFAULT_RATE, sliding_windows, to_float

SAMPLE_RATE = DEFAULT_RATE
WINDOW_S = 2.0
CLIP_HOP_S = 0.5  # windows of a clip overlap by 1.5 s, as in training
N_FFT = 512  # 32 ms
HOP = 256  # 16 ms
N_MELS = 64
N_MFCC = 20
WINDOW_SAMPLES = round(WINDOW_S * SAMPLE_RATE)
N_FRAMES = 1 + (WINDOW_SAMPLES - N_FFT) // HOP  # 124 frames in a 2 s window
FLOOR_DB = -80.0  # relative to the window's loud frames: quieter is treated as silence
PAUSE_DB = -35.0  # frames this far below the window's loud frames are pauses, left out of the statistics
VOICED = 0.5  # normalised autocorrelation peak above which a frame counts as voiced
LAGS = (32, 229)  # autocorrelation lags searched for the pitch period: 500 .. 70 Hz
N_FEATURES = 5 * N_MFCC + N_MFCC + 5 * 8 + 2 + 2 * N_MELS + 9  # 299
NORMS = ("recording", "clip", "population")


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)


@lru_cache(maxsize=1)
def mel_filterbank(fmin: float = 50.0, fmax: float = SAMPLE_RATE / 2) -> np.ndarray:
    """(N_FFT // 2 + 1, N_MELS) triangular HTK-mel filters."""
    mel_points = np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), N_MELS + 2)
    hz_points = 700.0 * (10 ** (mel_points / 2595.0) - 1.0)
    bins = np.fft.rfftfreq(N_FFT, 1 / SAMPLE_RATE)
    lower, center, upper = hz_points[:-2, None], hz_points[1:-1, None], hz_points[2:, None]
    rising = (bins[None] - lower) / (center - lower)
    falling = (upper - bins[None]) / (upper - center)
    return np.maximum(0.0, np.minimum(rising, falling)).T.astype(np.float32)


@lru_cache(maxsize=1)
def _sparse_filterbank() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bins, weights, band starts) of the non-zero filter taps, for `np.add.reduceat`.

    A dense matmul is 30x slower here when OpenBLAS threads fight a busy CPU; ~500 taps need no BLAS.
    """
    bank = mel_filterbank()
    bands = [np.flatnonzero(bank[:, k]) for k in range(N_MELS)]
    bins = np.concatenate(bands)
    weights = np.concatenate([bank[b, k] for k, b in enumerate(bands)])
    starts = np.cumsum([0] + [len(b) for b in bands[:-1]])
    return bins, weights.astype(np.float32), starts


def _mel_power(spectrum: np.ndarray) -> np.ndarray:
    bins, weights, starts = _sparse_filterbank()
    return np.add.reduceat(spectrum[..., bins] * weights, starts, axis=-1)


@lru_cache(maxsize=1)
def _hann() -> np.ndarray:
    return np.hanning(N_FFT + 1)[:-1].astype(np.float32)


@lru_cache(maxsize=1)
def _dct() -> np.ndarray:
    """(N_MELS, N_MFCC) orthonormal DCT-II: log-mel -> MFCC."""
    k, n = np.arange(N_MFCC)[None], np.arange(N_MELS)[:, None]
    basis = np.cos(np.pi / N_MELS * (n + 0.5) * k) * np.sqrt(2.0 / N_MELS)
    basis[:, 0] /= np.sqrt(2.0)
    return basis.astype(np.float32)


@lru_cache(maxsize=1)
def _window_autocorrelation() -> np.ndarray:
    """The Hann window's own autocorrelation, to undo its taper in a frame's autocorrelation."""
    spectrum = np.fft.rfft(_hann().astype(np.float64), 2 * N_FFT)
    ac = np.fft.irfft(np.abs(spectrum) ** 2)[: LAGS[1] + 2]
    return (ac / ac[0]).astype(np.float32)


@lru_cache(maxsize=1)
def _frequencies_khz() -> np.ndarray:
    return (np.fft.rfftfreq(N_FFT, 1 / SAMPLE_RATE) / 1000).astype(np.float32)


def fit_window(samples: np.ndarray, offset: int | None = None) -> np.ndarray:
    """Exactly one 2 s window: a longer clip is cut at `offset` (default centre), a shorter one zero-padded."""
    samples = to_float(samples)
    extra = len(samples) - WINDOW_SAMPLES
    if extra >= 0:
        start = extra // 2 if offset is None else int(np.clip(offset, 0, extra))
        return samples[start : start + WINDOW_SAMPLES]
    before = -extra // 2 if offset is None else int(np.clip(offset, 0, -extra))
    return np.pad(samples, (before, -extra - before))


def _delta(x: np.ndarray) -> np.ndarray:
    """(T, D) -> (T, D) regression slope over +-2 frames."""
    p = np.pad(x, ((2, 2), (0, 0)), mode="edge")
    return (p[3:-1] - p[1:-3] + 2 * (p[4:] - p[:-4])) / 10.0


def _functionals(x: np.ndarray) -> np.ndarray:
    """(T, D) -> (5 D): mean, standard deviation, 10th, 50th and 90th percentile over frames."""
    ordered = np.sort(x, axis=0)
    last = len(ordered) - 1
    quantiles = [ordered[round(last * q)] for q in (0.1, 0.5, 0.9)]
    return np.concatenate([x.mean(axis=0), x.std(axis=0), *quantiles])


def window_features(window: np.ndarray) -> np.ndarray:
    """One 2 s, 16 kHz window -> (299,) float32 functionals over its speech frames (NaN: no pitch).

    Gain does not matter: levels are relative to the window's loud frames (95th percentile energy),
    which evens out SAVEE's clipped and 20 dB quieter speakers and any microphone. Features, in order:
    MFCC 1-20 (mean, std, p10, p50, p90), MFCC delta std (20); eight frame descriptors (relative
    energy dB, spectral centroid, 85 % roll-off, flatness, 1-5 kHz / <1 kHz ratio, spectral flux,
    zero-crossing rate, voicing strength) x the same 5 statistics; energy and centroid delta std;
    log-mel band mean (64) and std (64); pitch in semitones (mean, std, p10, p50, p90, range, mean
    absolute change), voiced and speech fraction of the frames.
    """
    window = np.asarray(window, np.float32)
    if window.shape != (WINDOW_SAMPLES,):
        raise ValueError(f"a window must be {WINDOW_SAMPLES} samples, got shape {window.shape}")
    frames = np.lib.stride_tricks.sliding_window_view(window, N_FFT)[::HOP]
    wide = np.fft.rfft(frames * _hann(), 2 * N_FFT, axis=-1)  # zero-padded: linear autocorrelation
    power2 = wide.real**2 + wide.imag**2
    power = power2[:, ::2]  # the even bins of the padded FFT are exactly the N_FFT-point spectrum
    mel = _mel_power(power)
    energy = mel.sum(axis=-1)
    reference = float(np.percentile(energy, 95)) + 1e-10
    energy_db = 10 * np.log10(energy / reference + 1e-10)
    speech = energy_db > PAUSE_DB
    if speech.sum() < 5:
        speech = energy_db >= np.sort(energy_db)[-5]
    mel_db = np.maximum(10 * np.log10(mel / reference + 1e-10), FLOOR_DB)
    mfcc = mel_db @ _dct()

    # pitch: the strongest normalised autocorrelation peak between 70 and 500 Hz, parabola-refined
    ac = np.fft.irfft(power2.astype(np.complex64), axis=-1)[:, : LAGS[1] + 2]
    ac = ac / (ac[:, :1] + 1e-12) / _window_autocorrelation()
    rows = np.arange(len(ac))
    lag = ac[:, LAGS[0] : LAGS[1]].argmax(axis=-1) + LAGS[0]
    before, peak, after = ac[rows, lag - 1], ac[rows, lag], ac[rows, lag + 1]
    curve = before - 2 * peak + after
    shift = np.clip(0.5 * (before - after) / np.where(np.abs(curve) > 1e-9, curve, -1e9), -0.5, 0.5)
    semitones = 12 * np.log2(SAMPLE_RATE / (lag + shift) / 55.0)
    voiced = speech & (peak > VOICED)

    total = power.sum(axis=-1) + 1e-10
    centroid = (power @ _frequencies_khz()) / total
    cumulative = np.cumsum(power, axis=-1)
    rolloff = (cumulative < 0.85 * cumulative[:, -1:]).sum(axis=-1) * (SAMPLE_RATE / N_FFT / 1000)
    flatness = np.mean(np.log(power[:, 1:] + 1e-10), axis=-1) - np.log(np.mean(power[:, 1:], axis=-1) + 1e-10)
    alpha = 10 * np.log10((power[:, 33:161].sum(axis=-1) + 1e-10) / (power[:, 1:33].sum(axis=-1) + 1e-10))
    flux = np.r_[0.0, np.sqrt(np.mean(np.diff(np.log(mel + 1e-10) / 10, axis=0) ** 2, axis=-1))]
    signs = np.signbit(frames)
    zcr = np.count_nonzero(signs[:, 1:] != signs[:, :-1], axis=-1) / (N_FFT - 1)
    frame_lld = np.column_stack([energy_db, centroid, rolloff, flatness, alpha, flux, zcr, peak])

    if voiced.sum() >= 3:
        pitch = semitones[voiced]
        change = np.abs(np.diff(pitch)).mean()
        pitch_stats = np.r_[_functionals(pitch[:, None]), pitch.max() - pitch.min(), change]
    else:
        pitch_stats = np.full(7, np.nan)
    features = [
        _functionals(mfcc[speech]),
        _delta(mfcc)[speech].std(axis=0),
        _functionals(frame_lld[speech]),
        _delta(frame_lld[:, :2])[speech].std(axis=0),
        mel_db[speech].mean(axis=0),
        mel_db[speech].std(axis=0),
        pitch_stats,
        [voiced.mean(), speech.mean()],
    ]
    return np.concatenate(features).astype(np.float32)


def voice_features(windows: Sequence[np.ndarray]) -> np.ndarray:
    """16 kHz segments (each fitted to 2 s) -> (N, 299) float32 features, NaN where a window has no pitch."""
    if len(windows) == 0:
        return np.zeros((0, N_FEATURES), np.float32)
    return np.stack([window_features(fit_window(w)) for w in windows])


def clip_windows(samples: np.ndarray, hop_s: float = CLIP_HOP_S) -> list[np.ndarray]:
    """The 2 s pieces (views) that cover a 16 kHz clip, overlapping by `WINDOW_S - hop_s`."""
    return [seg for _, _, seg in sliding_windows(samples, SAMPLE_RATE, WINDOW_S, hop_s)]


Stats = tuple[np.ndarray, np.ndarray, float]  # (mean, std, context) for `FeatureNorm.apply`


@dataclass(frozen=True)
class FeatureNorm:
    """Standardises features with a recording's own statistics, shrunk towards the training speakers'.

    `mean` and `std` are the training speakers' average voice: the mean of the per-speaker means
    and the root mean within-speaker variance. `prior_windows` is how many windows that average
    weighs against the recording's: a single window is standardised almost entirely with the
    prior, a speaker's minute of speech almost entirely with its own statistics (speaker
    normalisation). The model is told which: its last input, the *context*, is the recording's
    weight `n / (n + prior_windows)` for `n` windows heard (0 = the training average only).
    """

    mean: np.ndarray
    std: np.ndarray
    prior_windows: float

    def stats(self, features: np.ndarray, count: np.ndarray | None = None) -> Stats:
        """(mean, std, context) for `features` (N, D), or for a running `(mean, var)` pair of `count` windows."""
        if count is None:
            features = np.asarray(features, np.float64)
            count = np.sum(~np.isnan(features), axis=0)
            filled = np.where(np.isnan(features), 0.0, features)
            mean = filled.sum(axis=0) / np.maximum(count, 1)
            var = np.where(np.isnan(features), 0.0, (filled - mean) ** 2).sum(axis=0) / np.maximum(count, 1)
        else:
            mean, var = features
        weight = count / (count + self.prior_windows)
        shrunk = weight * mean + (1 - weight) * self.mean
        variance = weight * var + (1 - weight) * self.std**2
        return shrunk, np.sqrt(variance + 1e-6 * self.std**2 + 1e-12), float(np.max(weight, initial=0.0))

    def prior(self) -> Stats:
        """The training speakers' average alone: for a window heard without any context."""
        return self.mean, self.std, 0.0

    def apply(self, features: np.ndarray, stats: Stats | None = None) -> np.ndarray:
        """(N, D) -> (N, D + 1) float32 model input: standardised features (NaN -> 0, the average), context."""
        mean, std, context = self.stats(features) if stats is None else stats
        z = np.nan_to_num((features - mean) / std, nan=0.0)
        return np.column_stack([z, np.full(len(z), context)]).astype(np.float32)

    def to_json(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "prior_windows": self.prior_windows}

    @classmethod
    def from_json(cls, data: dict) -> FeatureNorm:
        mean, std = np.asarray(data["mean"], np.float64), np.asarray(data["std"], np.float64)
        if mean.shape != (N_FEATURES,) or std.shape != (N_FEATURES,):
            raise ValueError(f"expected {N_FEATURES} means and deviations, got {mean.shape} and {std.shape}")
        return cls(mean, std, float(data["prior_windows"]))


class RunningStats:
    """Feature statistics of a live voice, forgetting slowly (`memory` windows) so a new speaker takes over."""

    def __init__(self, memory: float = 240.0) -> None:
        self.decay = 1.0 - 1.0 / memory
        self.count = np.zeros(N_FEATURES)
        self._sum = np.zeros(N_FEATURES)
        self._squares = np.zeros(N_FEATURES)

    def add(self, features: np.ndarray) -> None:
        for row in np.atleast_2d(features):
            seen = ~np.isnan(row)
            value = np.where(seen, row, 0.0)
            self.count = self.decay * self.count + seen
            self._sum = self.decay * self._sum + value
            self._squares = self.decay * self._squares + value**2

    def moments(self) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
        """((mean, variance), count) of what was added, for `FeatureNorm.stats`."""
        safe = np.maximum(self.count, 1e-12)
        mean = self._sum / safe
        return (mean, np.maximum(self._squares / safe - mean**2, 0.0)), self.count

    def clear(self) -> None:
        self.count[:], self._sum[:], self._squares[:] = 0.0, 0.0, 0.0


def norm_file(model_path: str | Path) -> Path:
    """The JSON next to a voice model that holds its `FeatureNorm` (`voice_mlp.tflite` -> `voice_mlp.json`)."""
    return Path(model_path).with_suffix(".json")
