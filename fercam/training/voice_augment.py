"""Audio augmentation that matches how the app hears people: room noise, reverberation, gain, a phone codec.

Every effect works on float32 16 kHz mono in -1..1 and takes a `numpy.random.Generator`, so a
training run is reproducible. `augment` chains a random subset of them.
"""

from __future__ import annotations

import numpy as np

RATE = 16000


def coloured_noise(n: int, rng: np.random.Generator, slope: float) -> np.ndarray:
    """Unit-RMS noise whose power falls as 1/f**slope (0 white, 1 pink, 2 brown): fans, traffic, hum of rooms."""
    spectrum = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    spectrum *= 1.0 / np.maximum(freqs, 20.0) ** (slope / 2)
    noise = np.fft.irfft(spectrum, n)
    return (noise / (np.sqrt(np.mean(noise**2)) + 1e-12)).astype(np.float32)


def add_noise(x: np.ndarray, rng: np.random.Generator, snr_db: tuple[float, float] = (5.0, 30.0)) -> np.ndarray:
    """Room noise at a random signal-to-noise ratio (relative to the clip's RMS)."""
    snr = rng.uniform(*snr_db)
    rms = np.sqrt(np.mean(x**2)) + 1e-9
    return x + coloured_noise(len(x), rng, rng.uniform(0.0, 2.0)) * rms * 10 ** (-snr / 20)


def reverberate(x: np.ndarray, rng: np.random.Generator, rt60: tuple[float, float] = (0.15, 0.9)) -> np.ndarray:
    """A synthetic room: exponentially decaying noise as the impulse response (RT60 in seconds), direct path kept."""
    decay = rng.uniform(*rt60)
    t = np.arange(int(decay * RATE)) / RATE
    response = rng.standard_normal(len(t)) * 10 ** (-3 * t / decay)  # -60 dB at t = RT60
    response[0] = 1.0 / rng.uniform(0.3, 1.0)  # direct-to-reverberant ratio varies with distance
    wet = np.fft.irfft(np.fft.rfft(x, len(x) + len(t)) * np.fft.rfft(response, len(x) + len(t)))[: len(x)]
    return (wet * np.sqrt(np.mean(x**2) / (np.mean(wet**2) + 1e-12))).astype(np.float32)


def change_gain(x: np.ndarray, rng: np.random.Generator, db: tuple[float, float] = (-25.0, 12.0)) -> np.ndarray:
    """A quieter or louder microphone; loud ones clip at full scale, as cheap inputs do."""
    return np.clip(x * 10 ** (rng.uniform(*db) / 20), -1.0, 1.0)


def phone_codec(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """G.711 mu-law telephone speech: 8 kHz (300-3400 Hz band), 8-bit companding, back to 16 kHz."""
    spectrum = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(len(x), 1 / RATE)
    spectrum[(freqs < 300) | (freqs > 3400)] = 0
    narrow = np.fft.irfft(spectrum, len(x))[::2]  # band-limited below 4 kHz, so decimation does not alias
    mu = 255.0
    coded = np.sign(narrow) * np.log1p(mu * np.minimum(np.abs(narrow), 1.0)) / np.log1p(mu)
    coded = np.round(coded * 127) / 127
    decoded = np.sign(coded) * np.expm1(np.abs(coded) * np.log1p(mu)) / mu
    return np.interp(np.arange(len(x)) / 2, np.arange(len(decoded)), decoded).astype(np.float32)


EFFECTS = (reverberate, add_noise, phone_codec, change_gain)  # the order a real signal meets them


def augment(x: np.ndarray, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    """Each effect applied with probability `p` (at least one), in the order sound meets them."""
    chosen = rng.random(len(EFFECTS)) < p
    if not chosen.any():
        chosen[rng.integers(len(EFFECTS))] = True
    x = np.asarray(x, np.float32)
    for effect, on in zip(EFFECTS, chosen):
        if on:
            x = effect(x, rng)
    return np.asarray(x, np.float32)
