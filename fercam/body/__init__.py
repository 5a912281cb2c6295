"""Body-language cues beside the face and the voice: posture and head gestures per tracked face.

The stage is `fercam.body.reader.BodyCueReader` (`read(frame, faces) -> {face id: BodyCues}`); the
cues are measured rules, documented in docs/BODY_CUES.md, and never an emotion.
"""
