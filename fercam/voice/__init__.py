"""Emotion from the voice: audio decoding and the microphone (`audio`), features (`features`), the model (`classifier`)."""
