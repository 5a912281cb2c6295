"""One reading per person (fercam/speaking/person.py): the face and the voice pooled by the stated rule."""

from __future__ import annotations

import numpy as np
import pytest

from fercam.speaking.person import FACE_WEIGHT, VOICE_WEIGHT, pool
from fercam.types import EMOTIONS


def one_hot_ish(emotion: str, sure: float) -> np.ndarray:
    p = np.full(len(EMOTIONS), (1 - sure) / (len(EMOTIONS) - 1))
    p[EMOTIONS.index(emotion)] = sure
    return p


def test_the_rule_is_log_linear_pooling_with_the_voice_weighted_by_its_held_out_skill():
    assert FACE_WEIGHT == 1.0 and VOICE_WEIGHT == pytest.approx(0.69, abs=0.005)
    rng = np.random.default_rng(0)
    face, voice = rng.dirichlet(np.ones(7)), rng.dirichlet(np.ones(7))
    expected = face * voice**VOICE_WEIGHT
    np.testing.assert_allclose(pool(face, voice).probs, expected / expected.sum(), rtol=1e-5)


def test_a_voice_that_agrees_makes_the_person_surer_and_a_flat_voice_changes_nothing():
    face = one_hot_ish("angry", 0.45)
    agreeing = pool(face, one_hot_ish("angry", 0.6))
    assert agreeing.emotion == "angry" and agreeing.confidence > 0.6 and not agreeing.disagree
    assert agreeing.label().startswith("face+voice: angry ")
    flat = pool(face, np.full(7, 1 / 7))
    np.testing.assert_allclose(flat.probs, face, rtol=1e-5)


def test_two_sure_sources_of_different_emotions_disagree_and_both_stay_visible():
    reading = pool(one_hot_ish("happy", 0.8), one_hot_ish("angry", 0.7))
    assert reading.disagree and (reading.face, reading.voice) == ("happy", "angry")
    assert reading.label() == "face happy / voice angry: disagree"
    assert reading.record()["disagree"] is True
    # an unsure voice of another emotion only tempers the face: no disagreement
    tempered = pool(one_hot_ish("happy", 0.8), one_hot_ish("angry", 0.3))
    assert not tempered.disagree and tempered.emotion == "happy" and tempered.confidence < 0.8


@pytest.mark.parametrize("bad", [np.ones(6), np.full(7, np.nan), -np.ones(7), np.zeros(7)])
def test_a_reading_that_is_not_seven_probabilities_is_refused_with_a_clear_error(bad):
    with pytest.raises(ValueError, match="seven|7 non-negative"):
        pool(bad, np.full(7, 1 / 7))
