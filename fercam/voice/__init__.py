"""Emotion from the voice: decoding and the microphone (`audio`), features (`features`), the model (`classifier`)."""
