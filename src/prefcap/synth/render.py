"""Audio for scenes: one small synthesiser per event class, mixed on the scene's timeline.

Each synthesiser makes an acoustically distinct texture whose attributes a listener can hear: pitch moves
the fundamental, rate the repetition period, loudness the level (soft is 14 dB below loud). Noise is
shaped in the frequency domain with numpy alone.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from prefcap.synth.scene import Event, Scene

LOUD_RMS, SOFT_RMS, FLOOR_RMS = 0.12, 0.024, 0.0015


def _noise(rng: np.random.Generator, n: int, sr: int, low: float, high: float) -> np.ndarray:
    """White noise band-limited to [low, high] Hz, unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / sr)
    spectrum[(freqs < low) | (freqs > high)] = 0
    x = np.fft.irfft(spectrum, n)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def _pulses(n: int, sr: int, period: float, jitter: float, rng: np.random.Generator, start: float = 0.05):
    """Onset sample indices of a repeating sound with a given period (seconds)."""
    t, onsets = start, []
    while t < n / sr:
        onsets.append(int(t * sr))
        t += period * (1 + jitter * rng.uniform(-1, 1))
    return onsets


def _place(n: int, onsets: list[int], grain: np.ndarray) -> np.ndarray:
    out = np.zeros(n)
    for onset in onsets:
        end = min(n, onset + len(grain))
        out[onset:end] += grain[: end - onset]
    return out


def _decay(sr: int, seconds: float, tau: float) -> np.ndarray:
    return np.exp(-np.arange(int(seconds * sr)) / (tau * sr))


def _siren(rng, n, sr, a):
    t = np.arange(n) / sr
    centre = 1000.0 if a["pitch"] == "high" else 480.0
    freq = centre * (1 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.35, 0.6) * t + rng.uniform(0, 6.3)))
    phase = 2 * np.pi * np.cumsum(freq) / sr
    return np.sin(phase) + 0.3 * np.sin(2 * phase)


def _beeping(rng, n, sr, a):
    f = 2000.0 if a["pitch"] == "high" else 800.0
    length = int(0.08 * sr)
    grain = np.sin(2 * np.pi * f * np.arange(length) / sr) * np.hanning(length) ** 0.3
    period = 0.22 if a["rate"] == "fast" else 0.6
    return _place(n, _pulses(n, sr, period, 0.0, rng), grain)


def _bell(rng, n, sr, a):
    f0 = 1100.0 if a["pitch"] == "high" else 380.0
    t = np.arange(int(1.5 * sr)) / sr
    grain = sum(
        amp * np.sin(2 * np.pi * f0 * ratio * t) * np.exp(-t / (0.9 / ratio**0.5))
        for ratio, amp in ((1.0, 1.0), (2.76, 0.6), (5.4, 0.35), (8.93, 0.2))
    )
    period = 0.55 if a["rate"] == "fast" else 1.4
    return _place(n, _pulses(n, sr, period, 0.05, rng), grain)


def _engine(rng, n, sr, a):
    t = np.arange(n) / sr
    f0 = 110.0 if a["pitch"] == "high" else 45.0
    f0 = f0 * (1 + 0.02 * np.sin(2 * np.pi * 0.3 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    tone = sum(np.sin(k * phase) / k for k in range(1, 12))
    rumble = _noise(rng, n, sr, 20, 400)
    return (tone + 0.5 * rumble) * (1 + 0.3 * np.sin(2 * np.pi * f0 / 4 * t))


def _rain(rng, n, sr, a):
    hiss = _noise(rng, n, sr, 1500, sr / 2)
    drops = np.zeros(n)
    positions = rng.integers(0, n, size=int(90 * n / sr))
    drops[positions] = rng.uniform(2, 5, size=len(positions))
    drops = np.convolve(drops, _decay(sr, 0.01, 0.002), mode="same")
    return hiss + drops


def _knocking(rng, n, sr, a):
    t = np.arange(int(0.12 * sr)) / sr
    grain = (np.sin(2 * np.pi * 190 * t) + 0.6 * np.sin(2 * np.pi * 420 * t)) * np.exp(-t / 0.025)
    gap, onsets, time = (0.16 if a["rate"] == "fast" else 0.34), [], 0.05
    while time < n / sr:
        for k in range(int(rng.integers(2, 4))):
            onsets.append(int((time + k * gap) * sr))
        time += 3 * gap + 0.5
    return _place(n, [o for o in onsets if o < n], grain)


def _footsteps(rng, n, sr, a):
    length = int(0.09 * sr)
    burst = _noise(rng, length, sr, 60, 900) * np.exp(-np.arange(length) / (0.02 * sr))
    thump = np.sin(2 * np.pi * 85 * np.arange(length) / sr) * np.exp(-np.arange(length) / (0.03 * sr))
    period = 0.3 if a["rate"] == "fast" else 0.65
    return _place(n, _pulses(n, sr, period, 0.06, rng), burst + thump)


def _clock(rng, n, sr, a):
    length = int(0.004 * sr)
    tick = _noise(rng, length, sr, 3000, sr / 2)
    tock = 0.6 * _noise(rng, length, sr, 1500, 4000)
    period = 0.25 if a["rate"] == "fast" else 0.5
    onsets = _pulses(n, sr, period, 0.0, rng)
    return _place(n, onsets[0::2], tick) + _place(n, onsets[1::2], tock)


def _birds(rng, n, sr, a):
    low, high = (3000.0, 4600.0) if a["pitch"] == "high" else (1700.0, 2700.0)
    length = int(0.06 * sr)
    t = np.arange(length) / sr
    out = np.zeros(n)
    period = 0.12 if a["rate"] == "fast" else 0.35
    for onset in _pulses(n, sr, period, 0.3, rng):
        f = np.linspace(low, high, length) * rng.uniform(0.95, 1.05)
        grain = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.sin(np.pi * t / t[-1]) ** 2
        end = min(n, onset + length)
        out[onset:end] += grain[: end - onset]
    return out


def _whistle(rng, n, sr, a):
    t = np.arange(n) / sr
    f = (2600.0 if a["pitch"] == "high" else 1250.0) * (1 + 0.015 * np.sin(2 * np.pi * 5.5 * t))
    return np.sin(2 * np.pi * np.cumsum(f) / sr) + 0.15 * _noise(rng, n, sr, 1000, 6000)


def _drum(rng, n, sr, a):
    t = np.arange(int(0.3 * sr)) / sr
    f = 50 + 70 * np.exp(-t / 0.04)
    grain = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / 0.12)
    grain[: int(0.01 * sr)] += 0.5 * _noise(rng, int(0.01 * sr), sr, 500, 5000)
    period = 0.3 if a["rate"] == "fast" else 0.6
    return _place(n, _pulses(n, sr, period, 0.0, rng), grain)


_PENTATONIC = np.array([0, 2, 4, 7, 9, 12])


def _piano(rng, n, sr, a):
    root = 523.25 if a["pitch"] == "high" else 130.81
    t = np.arange(int(0.9 * sr)) / sr
    out = np.zeros(n)
    for onset in _pulses(n, sr, 0.3, 0.0, rng):
        f0 = root * 2 ** (rng.choice(_PENTATONIC) / 12)
        grain = sum(np.sin(2 * np.pi * f0 * k * t) / k**1.5 for k in range(1, 7)) * np.exp(-t / 0.35)
        end = min(n, onset + len(grain))
        out[onset:end] += grain[: end - onset]
    return out


def _alarm(rng, n, sr, a):
    t = np.arange(n) / sr
    low, high = (1400.0, 1800.0) if a["pitch"] == "high" else (600.0, 800.0)
    f = np.where((t // 0.15) % 2 == 0, low, high)
    return np.sign(np.sin(2 * np.pi * np.cumsum(f) / sr))


def _wind(rng, n, sr, a):
    t = np.arange(n) / sr
    gusts = 1 + 0.6 * np.sin(2 * np.pi * rng.uniform(0.2, 0.45) * t + rng.uniform(0, 6.3))
    return _noise(rng, n, sr, 30, 500) * gusts + 0.3 * _noise(rng, n, sr, 300, 700) * gusts**2


SYNTHS: dict[str, Callable[[np.random.Generator, int, int, dict[str, str]], np.ndarray]] = {
    "siren": _siren, "beeping": _beeping, "bell": _bell, "engine": _engine, "rain": _rain,
    "knocking": _knocking, "footsteps": _footsteps, "clock": _clock, "birds": _birds,
    "whistle": _whistle, "drum": _drum, "piano": _piano, "alarm": _alarm, "wind": _wind,
}


def render_event(rng: np.random.Generator, event: Event, sr: int) -> np.ndarray:
    """The event's sound, at its level, with 20 ms fades (no clicks at the edges)."""
    n = max(1, int(round((event.offset - event.onset) * sr)))
    x = SYNTHS[event.cls](rng, n, sr, event.attributes)
    x = x / (np.sqrt(np.mean(x**2)) + 1e-12)
    fade = min(int(0.02 * sr), n // 2)
    if fade:
        ramp = np.linspace(0, 1, fade)
        x[:fade] *= ramp
        x[-fade:] *= ramp[::-1]
    return x * (LOUD_RMS if event.attributes["loudness"] == "loud" else SOFT_RMS)


def render_scene(scene: Scene, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Mix a scene's events on its timeline over a faint noise floor; float32 in [-1, 1]."""
    n = int(round(scene.duration * sr))
    mix = FLOOR_RMS * rng.standard_normal(n)
    for event in scene.events:
        start = int(round(event.onset * sr))
        sound = render_event(rng, event, sr)[: n - start]
        mix[start : start + len(sound)] += sound
    peak = np.abs(mix).max()
    if peak > 0.99:
        mix *= 0.99 / peak
    return mix.astype(np.float32)
