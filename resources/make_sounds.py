"""Generate Vigil's alert tones as small WAV files with the standard library only.

critical.wav: urgent two-tone (high/low, three times); major.wav: two calm beeps.
Run: `python resources/make_sounds.py`.
"""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

RATE = 16000
OUT = Path(__file__).resolve().parent / "sounds"
FADE_SECONDS = 0.01  # a short fade at each edge avoids audible clicks


def tone(frequency: float, seconds: float, volume: float = 0.6) -> list[float]:
    """A sine tone with faded edges, as samples in -1..1."""
    count = int(RATE * seconds)
    fade = int(RATE * FADE_SECONDS)
    samples = []
    for i in range(count):
        envelope = min(1.0, i / fade, (count - 1 - i) / fade)
        samples.append(volume * envelope * math.sin(2 * math.pi * frequency * i / RATE))
    return samples


def silence(seconds: float) -> list[float]:
    """Quiet samples."""
    return [0.0] * int(RATE * seconds)


def write(path: Path, samples: list[float]) -> None:
    """Write 16-bit mono PCM."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(b"".join(struct.pack("<h", int(s * 32767)) for s in samples))


def main() -> int:
    OUT.mkdir(exist_ok=True)
    critical: list[float] = []
    for _ in range(3):
        critical += tone(988, 0.14) + tone(659, 0.14)
    write(OUT / "critical.wav", critical)
    write(OUT / "major.wav", tone(784, 0.16, 0.5) + silence(0.08) + tone(784, 0.16, 0.5))
    print(f"sounds written to {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
