"""The combined reading of a colour face: our FER2013 model and a second opinion, weighed by a learnt rule.

Our model (`fercam.emotion`) reads a 48 px grey crop; it was trained on FER2013 and is right about half
the time on colour photographs of real people. The second opinion (`fercam.second_opinion`) is the
OpenCV-zoo MobileFaceNet trained on RAF-DB (in-the-wild photographs), which reads a 112 px colour face
aligned by the detector's five landmarks. A small multinomial logistic regression on both models'
log-probabilities and, if the rule file says so, the zoo model's 512 penultimate features, fitted on
`wild_faces_dev` and `sfew_train` and chosen by nested held-out-persons-and-films folds
(`python -m fercam.training.fit_combiner`), turns the two readings into one; it ships as a JSON file and
runs here with numpy alone. The same file holds the confidence under which a reading is called "unsure".
This module holds that rule and the reading that runs both models and the rule on a frame's faces; when a face's
second opinion is read again is `fercam.refresh.RefreshRule`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from fercam.contracts import EmotionClassifier
from fercam.crops import face_crops
from fercam.litert import ModelError
from fercam.paths import model_file
from fercam.refresh import DEFAULT_REFRESH, STEADY, Look, RefreshRule, Remembered, pose_shape
from fercam.second_opinion import FEATURES, AlignedEmotionModel, aligned_faces, softmax
from fercam.tracking import greedy_match
from fercam.types import EMOTIONS, Detection

COMBINER = "fer_combiner.json"
EPS = 1e-4  # floor under probabilities before a log: one model's certainty must not overrule everything


# What a rule may read, and how many numbers each gives: our model's and the zoo model's probabilities
# (entering as logs), and the zoo model's penultimate features.
INPUT_SIZES = {"ours": len(EMOTIONS), "zoo": len(EMOTIONS), "zoo_features": FEATURES}


@dataclass(frozen=True)
class Combiner:
    """softmax(W @ inputs + b - tau * log class_share), inputs = [log p_ours, log p_second] and, if the rule
    reads them, the second model's penultimate features; the confidence under which a reading is "unsure", and
    the detector to try in a picture where the default finds no face (None: none), as fitted together. The
    last term is the logit adjustment (Menon et al. 2021): it lifts the classes rare among the faces the rule
    was fitted on (disgust, fear); a file without `tau` has none."""

    weights: np.ndarray  # (7, 14) or (7, 14 + 512)
    bias: np.ndarray  # (7,)
    unsure_below: float
    fallback_detector: str | None = None
    inputs: tuple[str, ...] = ("ours", "zoo")
    tau: float = 0.0
    class_share: np.ndarray = field(default_factory=lambda: np.full(len(EMOTIONS), 1 / len(EMOTIONS)))

    @property
    def reads_features(self) -> bool:
        """Whether the rule needs the second model's features beside its probabilities."""
        return "zoo_features" in self.inputs

    @classmethod
    def load(cls, path: str | Path | None = None) -> Combiner:
        path = Path(path) if path is not None else model_file(COMBINER)
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            weights, bias = np.array(data["weights"], np.float64), np.array(data["bias"], np.float64)
            unsure_below, fallback = float(data["unsure_below"]), data.get("fallback_detector")
            inputs = tuple(data.get("inputs", ("ours", "zoo")))
            tau = float(data.get("tau", 0.0))
            share = np.array(data.get("class_share", [1 / len(EMOTIONS)] * len(EMOTIONS)), np.float64)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{path}: not a combiner file ({exc})") from None
        if inputs not in (("ours", "zoo"), ("ours", "zoo", "zoo_features")):
            raise ModelError(f"{path}: inputs must be ours, zoo[, zoo_features], got {', '.join(map(str, inputs))}")
        width = sum(INPUT_SIZES[name] for name in inputs)
        if weights.shape != (len(EMOTIONS), width) or bias.shape != (len(EMOTIONS),):
            raise ModelError(f"{path}: weights must be 7x{width} and bias 7, got {weights.shape} and {bias.shape}")
        if share.shape != (len(EMOTIONS),) or not (share > 0).all():
            raise ModelError(f"{path}: class_share must be 7 positive shares, got {share.tolist()}")
        return cls(weights, bias, unsure_below, fallback, inputs, tau, share)

    def combine(self, ours: np.ndarray, second: np.ndarray) -> np.ndarray:
        """(N, 7) combined probabilities from our model's (N, 7) probabilities and the second model's
        (N, 7) probabilities, followed by its (N, 512) features where the rule reads them."""
        return softmax(self.logits(ours, second))

    def logits(self, ours: np.ndarray, second: np.ndarray) -> np.ndarray:
        k = len(EMOTIONS)
        x = features(ours, second[:, :k])
        if self.reads_features:
            x = np.hstack([x, second[:, k:].astype(np.float64)])
        return x @ self.weights.T + self.offset

    @cached_property
    def offset(self) -> np.ndarray:
        """The bias with the logit adjustment folded in, once per rule rather than per call."""
        return self.bias - self.tau * np.log(self.class_share)


def features(ours: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The combiner's inputs: both models' log-probabilities side by side, (N, 14)."""
    return np.log(np.maximum(np.concatenate([ours, second], axis=1).astype(np.float64), EPS))


class CombinedReading:
    """Our grey-crop model and the aligned colour model on the same detections, combined (a `FaceClassifier`).

    A face without landmarks keeps our model's reading alone. Grey pictures stored as BGR are read the same
    way (most of the development set's photographs are grey, and the rule was fitted on them). Given the
    frame's `timestamp`, a face's second opinion is reused until `refresh` says it is due; without one (a
    single picture) every face is read afresh. `second_reads` counts the faces the zoo model read, and
    `refresh_reasons` why (faces that could not be aligned included)."""

    def __init__(
        self,
        classifier: EmotionClassifier,
        second: AlignedEmotionModel,
        combiner: Combiner,
        *,
        refresh: RefreshRule | None = DEFAULT_REFRESH,
    ) -> None:
        self.classifier, self.second, self.combiner = classifier, second, combiner
        self.unsure_below = combiner.unsure_below
        self.refresh = refresh  # None: the second opinion on every face of every frame
        self.second_reads = 0
        self.refresh_reasons: dict[str, int] = {}  # why faces were read again, counted ("new": not known)
        self._memory: list[Remembered] = []

    def classify(
        self, bgr_image: np.ndarray, detections: Sequence[Detection], timestamp: float | None = None
    ) -> np.ndarray:
        ours = self.classifier.predict_faces(face_crops(bgr_image, [d.box for d in detections]))
        second = self._second_opinions(bgr_image, detections, ours, timestamp)
        have = ~np.isnan(second).any(axis=1)
        if have.any():
            ours = ours.copy()
            ours[have] = self.combiner.combine(ours[have], second[have])
        return ours

    def forget(self) -> None:
        """The next picture is unrelated: no face in it is one seen before."""
        self._memory = []

    def _second_opinions(
        self, bgr_image: np.ndarray, detections: Sequence[Detection], ours: np.ndarray, now: float | None
    ) -> np.ndarray:
        """(N, 7) zoo-model probabilities, followed by its (N, 512) features where the rule reads them (what a
        face's memory keeps); NaN rows where a face cannot be aligned."""
        width = len(EMOTIONS) + (FEATURES if self.combiner.reads_features else 0)
        out = np.full((len(detections), width), np.nan, np.float32)
        remember = now is not None and self.refresh is not None
        if remember:  # faces not seen for a while are other faces by now
            self._memory = [m for m in self._memory if 0 <= now - m.seen_at < self.refresh.every_s]
        known = self._known(detections) if remember else [None] * len(detections)
        looks = [
            Look(d.box, pose_shape(d), p if face is None else (p + face.ours) / 2)
            for d, p, face in zip(detections, ours, known)
        ]
        reasons = [
            "new" if face is None else self.refresh.reason(face, look, now, self._combine(look, face))
            for look, face in zip(looks, known)
        ]
        todo = self._chosen(reasons, known)
        for i, (look, face) in enumerate(zip(looks, known)):
            if i in todo:
                self.refresh_reasons[reasons[i]] = self.refresh_reasons.get(reasons[i], 0) + 1
            else:
                out[i], face.seen, face.seen_at, face.ours = face.second, look.box, now, ours[i]
        aligned = aligned_faces(bgr_image, [detections[i] for i in todo])
        read = [i for i, face in zip(todo, aligned) if face is not None]
        if read:
            faces = [face for face in aligned if face is not None]
            probabilities, penultimate = self.second.read_aligned(faces)
            out[read] = np.hstack([probabilities, penultimate]) if self.combiner.reads_features else probabilities
            self.second_reads += len(read)
        if remember:
            stale = {id(known[i]) for i in todo if known[i] is not None}
            self._memory = [m for m in self._memory if id(m) not in stale] + [
                Remembered(out[i], now, looks[i], looks[i].box, now, ours[i]) for i in read
            ]
        return out

    def _chosen(self, reasons: list[str | None], known: list[Remembered | None]) -> list[int]:
        """The faces read now: every new one, and of the known ones due, up to `at_once`: those that changed first
        (`refresh.STEADY`), then the longest kept."""
        due = sorted(
            (i for i, face in enumerate(known) if face is not None and reasons[i]),
            key=lambda i: (reasons[i] in STEADY, known[i].at),
        )
        if self.refresh is not None and self.refresh.at_once:
            due = due[: self.refresh.at_once]
        return sorted([i for i, face in enumerate(known) if face is None] + due)

    def _combine(self, look: Look, face: Remembered) -> np.ndarray:
        """The combined reading of `look` with the face's kept opinion: is it a close call?"""
        return self.combiner.combine(look.ours[None], face.second[None])[0]

    def _known(self, detections: Sequence[Detection]) -> list[Remembered | None]:
        """Each detection's remembered face: the best overlap of a half or more with where a face was last seen,
        each remembered face matched once."""
        seen = [m.seen for m in self._memory]
        matched = greedy_match(seen, [d.box for d in detections], lambda a, b: 1 - a.iou(b), lambda _: 0.5)
        return [self._memory[matched[di]] if di in matched else None for di in range(len(detections))]


def load_combined_reading(
    classifier: EmotionClassifier | None = None,
    *,
    refresh: RefreshRule | None = DEFAULT_REFRESH,
    num_threads: int = 2,
    **options,
) -> CombinedReading:
    """The shipped combined reading: our model (or `classifier`; else `load_classifier(**options)`),
    the zoo model and `fer_combiner.json`; `refresh` None reads every face with both models every time.
    `num_threads` for each model: LIVE gives one (the video thread needs the other core); offline two, which read
    a frame's faces faster (our model all in one batch, the zoo model one face an invoke: `AlignedEmotionModel`)."""
    from fercam.emotion import load_classifier

    classifier = classifier or load_classifier(num_threads=num_threads, **options)
    second = AlignedEmotionModel(num_threads=num_threads)
    return CombinedReading(classifier, second, Combiner.load(), refresh=refresh)
