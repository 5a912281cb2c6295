"""`fercam bench --microphone CLIP`: the live pipeline measured with the voice on, a recording's sound heard as the
microphone in real time (looped), so the voice's emotion, its voice-activity detector and who-is-speaking (Face
Mesh on the faces' mouths while speech was heard lately) all run as they do in a call."""

from __future__ import annotations

from fercam.live.speaking import LiveHearing


def hear(runner, clip: str) -> LiveHearing:
    """Start hearing `clip`'s sound as `runner`'s microphone."""
    from fercam.voice.clip_microphone import ClipMicrophone

    hearing = LiveHearing(ClipMicrophone(clip, loop=True))
    hearing.attach(runner)
    return hearing.start()


def figures(hearing: LiveHearing, seconds: float, clip: str) -> dict:
    """What who-is-speaking cost and did: its own thread's cores, mouths measured a second."""
    speaking = hearing.speaking
    return {
        "microphone": clip,
        "speaking_cpu_cores": round(speaking.cpu_s / seconds, 3),
        "mouth_frames_per_s": round(speaking.measured / seconds, 2),
    }


def report_line(result: dict) -> str:
    return (
        f"  microphone {result['microphone']}: who-is-speaking {result['speaking_cpu_cores']} of a core, faces' "
        f"mouths measured {result['mouth_frames_per_s']} times a second (counted in the total)"
    )
