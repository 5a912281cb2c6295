"""The sound stage of `fercam analyze`: an input's voice timeline (voice_timeline.csv), streamed in blocks
with a progress bar, and its summary for summary.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fercam.apps.stopping import check_stop
from fercam.source_specs import STREAM_SCHEMES

if TYPE_CHECKING:
    from fercam.apps.analyze.results import InputResult, Options


@dataclass
class Voice:
    """An input's voice windows, and how far into the media they reach."""

    windows: list
    until: float  # the media time the voice timeline reaches
    unsure_below: float = 0.0  # a speech window whose top probability is under this is "unsure"


def analyze_voice(spec: str, result: InputResult, options: Options, position: int, *, until_s=None, audio_only=False):
    """The voice timeline of the input's sound up to `until_s`, or None (no sound, or unusable sound: noted).
    Streamed in blocks with a progress bar; a stop request ends it at the next block (about a second). Its file,
    voice_timeline.csv, is written once the faces are known (`speakers.write_voice_timeline`)."""
    from tqdm import tqdm

    from fercam.emotion import ModelError
    from fercam.media import has_audio
    from fercam.voice.audio import AudioError, AudioFile
    from fercam.voice.classifier import VoiceTimeline, load_voice_classifier

    if spec.lower().startswith(STREAM_SCHEMES) or not (audio_only or has_audio(spec)):
        return None
    caught_up = result.interrupted  # the frames stopped: the voice only catches up to them (a second signal ends it)
    try:
        with AudioFile(spec) as audio:
            timeline = VoiceTimeline(load_voice_classifier(), offset=audio.offset)
            total = audio.duration if until_s is None else min(audio.duration or until_s, until_s)
            bar = tqdm(
                total=total or None,
                unit="s",
                desc=f"voice {Path(spec).stem[:14]}",
                position=position,
                leave=True,
                disable=not options.progress,
                bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}]" if total else None,
            )
            try:
                for block in audio.blocks(until_s=until_s):
                    timeline.feed(block)
                    step = len(block) / audio.sample_rate
                    if bar.total:  # a declared duration may fall a few ms short of what decodes
                        bar.total = max(bar.total, bar.n + step)
                    bar.update(step)
                    if not caught_up:
                        check_stop()
            except KeyboardInterrupt:
                result.interrupted = True
            finally:
                bar.close()
            windows = timeline.windows()
            if audio.skipped_s:
                result.notes.append(f"the sound is damaged: {audio.skipped_s:.2f} s could not be decoded (silence)")
    except (AudioError, ModelError) as exc:  # the face outputs still complete without the voice
        result.notes.append(f"voice skipped: {exc}")
        return None
    if not any(w.speech for w in windows):
        result.notes.append("no speech found in the sound track")
    return Voice(windows, timeline.offset + timeline.seconds, timeline.classifier.unsure_below)


def voice_summary(voice: Voice) -> dict:
    """Counts of every window the timeline says ("no speech", "unsure", an emotion), shares of the speech, and a
    dominant emotion only when one is heard more often than "unsure" (see `report.dominant_emotion`)."""
    from fercam.apps.analyze.report import READINGS, dominant_emotion

    windows = voice.windows
    spoken = [w for w in windows if w.speech]
    shares = {name: sum(w.label == name for w in spoken) / max(len(spoken), 1) for name in READINGS}
    return {
        "windows": len(windows),
        "speech_windows": len(spoken),
        "no_speech_windows": len(windows) - len(spoken),
        "unsure_windows": sum(w.label == "unsure" for w in spoken),
        "unsure_below": round(voice.unsure_below, 4),
        "dominant_emotion": dominant_emotion(shares) if spoken else None,
        "share_of_speech": {name: round(share, 4) for name, share in shares.items()} if spoken else {},
    }
