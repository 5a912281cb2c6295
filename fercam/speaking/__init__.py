"""Who is speaking: each face's mouth (`lips.MouthMeter`) against the voice (`voice_activity.VoiceActivity`), judged
by `attribution.SpeakerAttributor` (`update(t, {face id: mouth}) -> Speaking`); `clip.SpeakingReader` runs it on a
recording. How it works and what it gets wrong: docs/speaking.md."""
