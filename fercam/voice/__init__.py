"""Emotion from the voice: decoding and speech (`audio`), the microphone (`microphone`), features (`features`),
the model and the recording timeline (`classifier`), live listening (`listener`)."""
