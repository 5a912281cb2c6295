"""The development loop and the combined reading: folds by person, the shipped rule against the card, the
second opinion's runtime and when it is read again, the "unsure" flag, and `fercam evaluate` on a labelled photo
folder."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SHARED, load_tool

import fercam
from fercam.annotate import LabelAnnotator, annotators_for
from fercam.apps.analyze.analyze import analyze_inputs
from fercam.apps.cli import main
from fercam.combined import CombinedReading, Combiner, load_combined_reading
from fercam.emotion import load_classifier
from fercam.litert import LiteRTModel, ModelError
from fercam.paths import model_file
from fercam.pipeline import face_crops, read_image
from fercam.refresh import Look, RefreshRule, Remembered
from fercam.second_opinion import RAF_TO_FER, SECOND_MODEL, AlignedEmotionModel, aligned_faces, softmax
from fercam.settings import Settings
from fercam.training import combiner_rule, fit_combiner, nested
from fercam.training.stacking import balance_weights, fit_softmax
from fercam.training.wild import held_out_estimate, person_folds, read_photo_set, scored
from fercam.types import EMOTIONS, Analysis, Box, Detection, Face

DEV = SHARED / "data" / "wild_faces_dev"


@pytest.fixture(scope="module")
def dev():
    if not (DEV / "labels.csv").is_file():
        pytest.skip(f"wild_faces_dev not found at {DEV} (it sits beside the project root in CI)")
    return read_photo_set(DEV)


def largest_top(faces) -> int:
    return int(max(faces, key=lambda f: f.box.width * f.box.height).top) if faces else -1


def assert_persons_on_one_side(persons, folds) -> None:
    by_person: dict[str, set[int]] = {}
    for person, fold in zip(persons, folds):
        by_person.setdefault(person, set()).add(int(fold))
    split = {p: f for p, f in by_person.items() if len(f) > 1}
    assert not split, f"persons on both sides of a fold: {list(split)[:5]}"


def test_folds_never_put_one_person_on_both_sides():
    # made-up persons shaped like wild_faces_dev: 929 faces of 501 persons, one actor with 151 of them
    rng = np.random.default_rng(3)
    counts = np.r_[151, rng.permutation(np.r_[np.ones(350, int), np.tile([2, 2, 3, 3, 3, 3, 4], 21), [2, 3, 3]])]
    assert counts.sum() == 929 and len(counts) == 501
    persons = tuple(rng.permutation(np.repeat([f"person{i}" for i in range(501)], counts)))
    folds = person_folds(persons, 5)
    assert_persons_on_one_side(persons, folds)
    sizes = np.bincount(folds)
    assert len(sizes) == 5 and sizes.min() > 0.8 * len(folds) / 5  # even folds despite the actor
    # one giant, many singletons, a few families of odd sizes, names out of order
    persons = ["giant"] * 200 + [f"p{i}" for i in rng.permutation(300)] + [f"f{i % 17}" for i in range(170)]
    persons = [persons[i] for i in rng.permutation(len(persons))]
    for k in (2, 3, 5, 10):
        folds = person_folds(tuple(persons), k)
        assert_persons_on_one_side(persons, folds)
        assert set(folds) == set(range(k))
    assert (person_folds(tuple(persons), 5) == person_folds(tuple(persons), 5)).all()  # deterministic


def test_folds_given_labels_share_out_every_class():
    # a rare class spread over many small persons, beside a big person who is mostly one class
    rng = np.random.default_rng(5)
    persons = [f"p{i}" for i in range(400) for _ in range(int(rng.integers(1, 4)))] + ["big"] * 60
    labels = rng.choice(7, size=len(persons), p=[0.2, 0.04, 0.04, 0.25, 0.12, 0.15, 0.2])
    labels[-60:] = 3
    folds = person_folds(tuple(persons), 5, labels)
    assert_persons_on_one_side(persons, folds)
    shares = np.array([np.bincount(labels[folds == f], minlength=7) for f in range(5)]) / np.bincount(labels)
    off = np.abs(shares - 0.2)
    assert np.delete(off, 3, axis=1).max() < 0.04, shares.round(2)  # each fold holds about a fifth of every class
    assert off[:, 3].max() < 0.08  # but the big person's 60 happy faces (a quarter of them) stay together
    unaware = person_folds(tuple(persons), 5)
    unaware_shares = np.array([np.bincount(labels[unaware == f], minlength=7) for f in range(5)]) / np.bincount(labels)
    assert np.abs(shares - 0.2).max() < np.abs(unaware_shares - 0.2).max()


def test_fit_combiner_groups_by_person_or_film_and_says_what_is_missing(tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "labels.csv").write_text("file,label,movie\na.png,happy,Airheads\n")
    assert read_photo_set(tmp_path).persons == ("Airheads",)  # a film's cast stays on one side of a split
    (tmp_path / "labels.csv").write_text("file,label\na.png,happy\n")
    assert fit_combiner.main(["--data", str(tmp_path), "--out", str(tmp_path / "rule.json")]) == 2
    assert "needs a person (or movie) column" in capsys.readouterr().err
    assert not (tmp_path / "rule.json").exists()


def made_up_faces(n: int = 300, seed: int = 0, groups: int = 60, width: int = 512) -> combiner_rule.Faces:
    """Faces whose second model's features carry the label weakly; MTCNN misses a tenth, YuNet finds them."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 7, n)
    outputs = {"mtcnn_found": rng.random(n) > 0.1, "yunet_found": np.ones(n, bool)}
    for d in ("mtcnn", "yunet"):
        for key in ("ours", "second", "second_flip"):
            logits = rng.normal(size=(n, 7)) + 1.5 * np.eye(7)[y]
            outputs[f"{d}_{key}"] = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)
        outputs[f"{d}_second_feat"] = rng.normal(size=(n, width)).astype(np.float32)
        outputs[f"{d}_second_feat"][:, :7] += np.eye(7)[y]
    names = np.array([f"set/g{g}" for g in rng.integers(0, groups, n)])
    return combiner_rule.Faces(np.array([f"{i}.jpg" for i in range(n)]), y, names, np.full(n, "set"), outputs)


def test_the_nested_estimate_takes_no_decision_on_the_faces_it_scores(monkeypatch):
    faces = made_up_faces(width=48)
    recipes = (combiner_rule.RECIPES[0], combiner_rule.RECIPES[-1])  # probabilities alone; with zoo features, YuNet
    fits = []
    real_fit = combiner_rule.fit_rule
    monkeypatch.setattr(nested, "fit_rule", lambda r, f, tau=0.0: fits.append(set(f.groups)) or real_fit(r, f, tau))
    estimate = nested.nested(faces, recipes, log=lambda _: None)
    folds = estimate["folds"]
    per_fold = len(fits) // 5
    assert per_fold == nested.FOLDS * len(recipes) + 1  # inner folds x recipes, then the fold's own fit
    for f in range(5):
        held_out = set(faces.groups[folds == f])
        assert held_out and all(not (fit & held_out) for fit in fits[f * per_fold : (f + 1) * per_fold])
    s = scored(estimate["probs"], estimate["found"], faces.y)
    assert s["accuracy"] > 0.5 and s["samples"] == len(faces.y)  # it learnt the made-up signal
    assert all(tau in combiner_rule.TAU_GRID for _, tau in estimate["chosen"])


def test_the_logit_adjustments_tau_follows_its_stated_rule():
    def score(accuracy, balanced, recalls):
        recall = dict(zip(EMOTIONS, recalls))
        return {"accuracy": accuracy, "balanced_accuracy": balanced, "recall": recall, "confusion": np.eye(7)}

    common = [0.8, 0.05, 0.2, 0.9, 0.6, 0.7, 0.8]
    scores = {
        0.0: score(0.620, 0.50, common),
        0.25: score(0.612, 0.53, common),  # within a point of the best accuracy, best balanced among those
        0.5: score(0.600, 0.56, [0.7, 0.2, 0.3, 0.8, 0.5, 0.6, 0.6]),  # better balanced, but 2 points of accuracy
        1.0: score(0.560, 0.55, [0.6, 0.3, 0.4, 0.7, 0.5, 0.6, 0.5]),  # the first with every class at 25%
    }
    assert nested.tau_by_accuracy_window(scores) == 0.25
    assert nested.tau_by_recall_floor(scores) == 1.0
    del scores[1.0]
    assert nested.tau_by_recall_floor(scores) == 0.5  # none reaches the floor: the best balanced


def test_a_rule_on_features_runs_the_same_in_the_app(tmp_path):
    """The fitter's rule (principal components folded into the weights) as the app's Combiner applies it."""
    faces = made_up_faces(seed=1)
    recipe = combiner_rule.Recipe("probabilities + zoo features", True, 0.3, 1.0)
    rule = combiner_rule.fit_rule(recipe, faces)
    path = tmp_path / "rule.json"
    path.write_text(
        json.dumps(
            {"inputs": ["ours", "zoo", "zoo_features"], "weights": rule.weights.tolist(), "bias": rule.bias.tolist()}
            | {"unsure_below": 0.5, "fallback_detector": "yunet"}
        )
    )
    combiner = Combiner.load(path)
    assert combiner.reads_features and combiner.weights.shape == (7, 14 + 512)
    o, use = faces.outputs, ~faces.outputs["mtcnn_found"]
    ours = np.where(use[:, None], o["yunet_ours"], o["mtcnn_ours"])
    second = np.hstack([np.where(use[:, None], o[f"yunet_{k}"], o[f"mtcnn_{k}"]) for k in ("second", "second_feat")])
    assert np.allclose(combiner.logits(ours, second), rule.logits(faces), atol=1e-4)
    # a file without the logit adjustment reads as tau 0; with it, the app subtracts what the fitter did
    adjusted = combiner_rule.fit_rule(recipe, faces, tau=0.5)
    assert np.allclose(adjusted.logits(faces), rule.logits(faces) - 0.5 * np.log(rule.class_share))
    path.write_text(path.read_text()[:-1] + f', "tau": 0.5, "class_share": {rule.class_share.tolist()}}}')
    assert np.allclose(Combiner.load(path).logits(ours, second), adjusted.logits(faces), atol=1e-4)
    # a file that names inputs the app cannot give is one clear error
    path.write_text(json.dumps({"inputs": ["ours", "zoo_mirror"], "weights": [], "bias": [], "unsure_below": 0}))
    with pytest.raises(ModelError, match="inputs must be"):
        Combiner.load(path)


def test_the_fitter_recovers_a_known_rule():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 4))
    true_w = rng.normal(size=(3, 4)) * 3
    y = np.array([rng.choice(3, p=np.exp(z) / np.exp(z).sum()) for z in x @ true_w.T])
    w, b = fit_softmax(x, y, k=3, l2=1e-4)
    agree = ((x @ w.T + b).argmax(1) == (x @ true_w.T).argmax(1)).mean()
    assert agree > 0.95, agree


def test_classes_are_balanced_by_their_weight_not_their_number():
    # one actor's 100 disgust faces (weighing 0.1 each, 10 in all) beside 50 angry and 50 disgust singletons
    groups = np.array(["actor"] * 100 + [f"p{i}" for i in range(100)])
    y = np.r_[np.ones(100, int), np.zeros(50, int), np.ones(50, int)]
    group = combiner_rule.group_weights(groups)
    totals = lambda w: np.bincount(y, w * group, minlength=2)  # noqa: E731
    assert np.allclose(totals(balance_weights(y, 2, 1.0, mass=group)), [60, 60])
    assert totals(balance_weights(y, 2, 1.0))[1] < 0.5 * totals(balance_weights(y, 2, 1.0))[0]  # by number: not


def test_the_shipped_rule_gives_the_numbers_the_card_states(dev):
    """The fixed subset (every 15th dev picture), read by fercam.analyze_image from the shipped files."""
    rule = json.loads(model_file("fer_combiner.json").read_text())
    check = rule["check"]
    card = model_file("README.md").read_text()
    assert f"{check['correct']} of {len(check['files'])} right" in card
    predicted = [largest_top(fercam.analyze_image(cv2.imread(str(dev.path(name))))) for name in check["files"]]
    labels = np.array(check["labels"])
    differ = sum(a != b for a, b in zip(predicted, check["predicted"]))
    assert differ <= 1, f"{differ} pictures read differently from when the rule was fitted"
    assert abs(int((np.array(predicted) == labels).sum()) - check["correct"]) <= 1
    old = load_classifier()
    alone = [largest_top(read_image(cv2.imread(str(dev.path(n))), fercam.load_detector(), old)) for n in check["files"]]
    assert (np.array(alone) == labels).sum() < check["correct"]  # the combination is why the reading changed


def test_evaluate_knows_the_folders_the_rule_was_fitted_on(dev, tmp_path):
    rule = json.loads(model_file("fer_combiner.json").read_text())
    estimate = held_out_estimate(DEV)
    assert estimate == rule["estimate"]["nested"]["wild_faces_dev"]
    assert estimate["balanced_accuracy"] == pytest.approx(np.mean(list(estimate["recall"].values())), abs=1e-3)
    assert held_out_estimate(tmp_path / "my_photos") is None


def test_a_broken_rule_file_is_one_clear_error(tmp_path):
    path = tmp_path / "rule.json"
    path.write_text('{"weights": [[1, 2]], "bias": [0], "unsure_below": 0.5}')
    with pytest.raises(ModelError, match="7x14"):
        Combiner.load(path)
    path.write_text("not json")
    with pytest.raises(ModelError, match="not a combiner file"):
        Combiner.load(path)


class CountingModel(AlignedEmotionModel):
    """The real zoo model, counting the faces it reads."""

    calls = 0

    def read_aligned(self, faces):  # predict_aligned reads through it too
        self.calls += len(faces)
        return super().read_aligned(faces)


def shifted(detection: Detection, dx: float = 0.0, nose: float = 0.0) -> Detection:
    """The detection moved `dx` box widths to the right, its nose moved `nose` box widths along the eyes."""
    box, w = detection.box, detection.box.width
    points = [(x + dx * w + (nose * w if i == 2 else 0), y) for i, (x, y) in enumerate(detection.landmarks)]
    return Detection(Box(box.x1 + dx * w, box.y1, box.x2 + dx * w, box.y2), detection.score, tuple(points))


def test_a_faces_second_opinion_is_reused_until_the_rule_says_read_it_again(media_dir):
    image = cv2.imread(str(media_dir / "fer_justin.jpg"))  # a face the two models read differently
    detections = fercam.load_detector().detect(image)
    assert len(detections) == 1
    second = CountingModel()
    reading = CombinedReading(load_classifier(), second, Combiner.load(), refresh=RefreshRule(every_s=1.0))
    first = reading.classify(image, detections, 0.0)
    again = reading.classify(image, detections, 0.5)  # same face, same pose, half a second on
    assert second.calls == 1 and np.allclose(first, again)
    assert reading._memory[0].second.shape == (7 + 512,)  # the shipped rule reads the features: they are kept too
    reading.classify(image, detections, 1.2)  # the steady rate: once a second at least
    assert second.calls == 2
    reading.classify(image, [shifted(detections[0], dx=0.01)], 1.3)  # a little shake: still the same reading
    assert second.calls == 2
    reading.classify(image, [shifted(detections[0], dx=0.3)], 1.4)  # moved by a third of its width
    assert second.calls == 3
    reading.classify(image, [shifted(detections[0], dx=0.3, nose=0.1)], 1.5)  # turned: the nose off centre
    assert second.calls == 4
    reading.forget()  # an unrelated picture: nothing is reused
    reading.classify(image, [shifted(detections[0], dx=0.3, nose=0.1)], 1.6)
    assert second.calls == 5 and reading.second_reads == 5
    for _ in range(2):  # without a time (a single picture), every face is read afresh
        reading.classify(image, detections)
    assert second.calls == 7
    # a face without landmarks keeps our model's reading
    bare = [Detection(d.box, d.score) for d in detections]
    ours = load_classifier().predict_faces(face_crops(image, [d.box for d in detections]))
    assert np.allclose(reading.classify(image, bare, 2.0), ours, atol=1e-5)
    assert not np.allclose(first, ours, atol=1e-2)


def due(rule: RefreshRule, *args) -> bool:
    """Whether the rule reads the face again (it says why; here only whether)."""
    return rule.reason(*args) is not None


def test_the_rule_reads_again_when_our_models_reading_moves_or_the_call_is_close():
    rule = RefreshRule(every_s=1.0, ours_moved=0.25, close=0.1)
    box = Box(100, 100, 200, 200)
    calm = np.array([0.05, 0, 0, 0.1, 0.05, 0.1, 0.7], np.float32)
    then = Look(box, np.array([0.0, 0.5, 0.8]), calm)
    face = Remembered(np.full(7, 1 / 7), 0.0, then, box, 0.0, calm)
    clear = calm  # the combined reading: neutral well ahead
    assert not due(rule, face, then, 0.5, clear)
    smile = np.array([0.05, 0, 0, 0.5, 0.05, 0.1, 0.3], np.float32)  # 0.4 of the probability moved
    assert due(rule, face, Look(box, then.shape, smile), 0.5, clear)
    assert due(rule, face, Look(box, np.array([0.0, 0.5, 1.0]), calm), 0.5, clear)  # the mouth widened
    assert due(rule, face, Look(box, None, calm), 0.5, clear)  # the landmarks are gone
    assert due(rule, face, then, -0.1, clear)  # time went back (a new recording)
    tie = np.array([0.05, 0, 0, 0.42, 0.05, 0.1, 0.38], np.float32)  # a close call: a stale opinion could flip it
    assert due(rule, face, then, 0.5, tie) and not due(rule, face, then, 0.5, np.roll(calm, 1))
    assert not due(rule, face, then, 0.04, tie)  # a close call waits for the frame after next (`close_every_s`)
    assert due(rule, face, Look(box, then.shape, smile), 0.04, tie)  # ...a changed face does not
    floor = RefreshRule(every_s=1.0, soonest_s=0.15)  # never sooner than 0.15 s after the last reading
    assert not due(floor, face, Look(box, then.shape, smile), 0.1, tie) and due(floor, face, then, 0.2, tie)
    assert floor.reason(face, Look(box, then.shape, smile), 0.2, clear) == "ours_moved"
    assert floor.reason(face, then, -0.1, clear) == "every_s"


def test_a_face_read_in_alternating_views_is_not_read_again_for_the_views_difference():
    """LIVE reads a face and its mirror image on alternate calls: two readings 0.3 apart, neither moving."""
    image = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    landmarks = ((80.0, 90.0), (120.0, 90.0), (100.0, 110.0), (85.0, 130.0), (115.0, 130.0))
    detection = Detection(Box(50, 50, 150, 150), 0.99, landmarks)
    views = [[0.1, 0, 0, 0.45, 0.25, 0.1, 0.1], [0.1, 0, 0, 0.15, 0.55, 0.1, 0.1]]

    class Alternating:
        calls = 0

        def predict_faces(self, crops):
            self.calls += 1
            return np.array([views[self.calls % 2]], np.float32)

    second = CountingModel()
    reading = CombinedReading(Alternating(), second, Combiner.load(), refresh=RefreshRule(every_s=10.0, close=0.0))
    for frame in range(8):
        reading.classify(image, [detection], frame / 30)
    assert second.calls == 1 and reading.refresh_reasons == {"new": 1}
    views[:] = [[0.1, 0, 0, 0.75, 0.0, 0.05, 0.1]] * 2  # both views now read a smile: that is seen
    for frame in range(8, 10):
        reading.classify(image, [detection], frame / 30)
    assert second.calls == 2 and reading.refresh_reasons == {"new": 1, "ours_moved": 1}


def test_faces_due_together_are_read_again_one_a_call_the_longest_kept_first():
    """LIVE: the faces of a call are often due at once; reading them all in one frame is a spike in latency."""
    image = np.random.default_rng(0).integers(0, 256, (200, 600, 3), dtype=np.uint8)
    landmarks = ((30.0, 40.0), (70.0, 40.0), (50.0, 60.0), (35.0, 80.0), (65.0, 80.0))
    detections = [
        Detection(Box(x, 0, x + 100, 100), 0.99, tuple((px + x, py) for px, py in landmarks)) for x in (0, 200, 400)
    ]

    class Steady:
        def predict_faces(self, crops):
            return np.tile(np.array([0.1, 0, 0, 0.6, 0.1, 0.1, 0.1], np.float32), (len(crops), 1))

    second = CountingModel()
    rule = RefreshRule(every_s=1.0, close=0.0, at_once=1)
    reading = CombinedReading(Steady(), second, Combiner.load(), refresh=rule)
    reading.classify(image, detections, 0.0)
    assert second.calls == 3  # new faces have no opinion to keep: all read at once
    reads = []
    for now in (0.5, 1.0, 1.05, 1.1, 1.15):  # all three due at 1.0: one a call
        before = second.calls
        reading.classify(image, detections, now)
        reads.append(second.calls - before)
    assert reads == [0, 1, 1, 1, 0]
    assert sorted(face.at for face in reading._memory) == [1.0, 1.05, 1.1]
    assert reading.refresh_reasons == {"new": 3, "every_s": 3}


def test_of_the_faces_due_those_that_changed_are_read_before_those_only_due_by_time_or_a_close_call():
    """LIVE reads one known face a call: a face that moved, turned or whose reading moved goes before faces that are
    only due by the clock or by a close call, even those kept longer (which wait a call); new faces come at once."""
    box = Box(0, 0, 100, 100)
    look = Look(box, None, np.full(7, 1 / 7, np.float32))

    def kept(at: float) -> Remembered:
        return Remembered(np.zeros(7, np.float32), at, look, box, at, look.ours)

    reading = CombinedReading(None, None, Combiner.load(), refresh=RefreshRule(at_once=1))
    known = [kept(0.0), kept(0.5), kept(0.7), None, kept(0.1)]
    assert reading._chosen(["close", "ours_moved", "turned", "new", "every_s"], known) == [1, 3]
    assert reading._chosen(["close", None, "box_moved", "new", "every_s"], known) == [2, 3]
    assert reading._chosen(["close", None, None, "new", "every_s"], known) == [0, 3]  # then the longest kept
    everyone = CombinedReading(None, None, Combiner.load(), refresh=RefreshRule())
    assert everyone._chosen(["close", "ours_moved", None, "new", "every_s"], known) == [0, 1, 3, 4]


def test_the_shipped_second_model_reads_a_frames_faces_in_one_call_as_one_by_one(media_dir):
    image = cv2.imread(str(media_dir / "two_people.jpg"))
    faces = [f for f in aligned_faces(image, fercam.load_detector().detect(image)) if f is not None]
    assert len(faces) == 2
    model = AlignedEmotionModel()
    together = model.predict_aligned(faces)
    alone = np.concatenate([model.predict_aligned([face]) for face in faces])
    assert together.shape == (2, 7) and np.allclose(together, alone, atol=1e-5)
    assert np.allclose(together.sum(axis=1), 1, atol=1e-5)
    assert model.predict_aligned([]).shape == (0, 7)
    probabilities, features = model.read_aligned(faces)
    _, features_alone = model.read_aligned(faces[:1])
    assert np.allclose(probabilities, together) and features.shape == (2, 512)
    assert np.allclose(features[:1], features_alone, atol=1e-4) and not np.allclose(features[0], features[1], atol=0.01)
    assert [a.shape for a in model.read_aligned([])] == [(0, 7), (0, 512)]


def test_a_models_outputs_are_read_by_the_names_declared(tmp_path):
    """The zoo file's two outputs come by their signature names, whatever order LiteRT lists them in; a file
    without the declared outputs is one clear error."""
    path, shape = model_file(SECOND_MODEL), (112, 112, 3)
    face = np.random.default_rng(0).integers(0, 256, (1, *shape)).astype(np.float32)
    logits, features = LiteRTModel(path, input_shape=shape, outputs={"logits": 7, "features": 512}).run(face)
    swapped = LiteRTModel(path, input_shape=shape, outputs={"features": 512, "logits": 7}).run(face)
    assert logits.shape == (1, 7) and np.array_equal(swapped[0], features) and np.array_equal(swapped[1], logits)
    with pytest.raises(ModelError, match="scores"):
        LiteRTModel(path, input_shape=shape, outputs={"logits": 7, "scores": 512})
    with pytest.raises(ModelError, match="256"):
        LiteRTModel(path, input_shape=shape, outputs={"logits": 7, "features": 256})
    with pytest.raises(ModelError, match="logits"):  # our FER2013 model names no such output
        LiteRTModel(model_file("fer_cnn.tflite"), input_shape=(48, 48, 1), outputs={"logits": 7})


def test_the_float_second_model_reads_the_dev_faces_as_the_zoos_int8_file(dev):
    """The shipped LiteRT file against the zoo's int8 ONNX file run by OpenCV, on every 10th dev picture."""
    detector, mine = fercam.load_detector(), AlignedEmotionModel()
    zoo = cv2.dnn.readNetFromONNX(str(model_file("fer_mobilefacenet_2022july_int8.onnx")))
    agree, differences = [], []
    for name in dev.files[::10]:
        image = cv2.imread(str(dev.path(name)))
        found = detector.detect(image)
        face = aligned_faces(image, found[:1])[0] if found else None
        if face is None:
            continue
        zoo.setInput(cv2.dnn.blobFromImage(face, 1 / 127.5, (112, 112), (127.5,) * 3, swapRB=True))
        theirs = softmax(zoo.forward().astype(np.float64))[0, RAF_TO_FER]
        ours = mine.predict_aligned([face])[0]
        agree.append(ours.argmax() == theirs.argmax())
        differences.append(np.abs(ours - theirs).max())
    assert len(agree) > 80
    assert np.mean(agree) >= 0.93 and np.median(differences) < 0.05, (np.mean(agree), np.median(differences))


def video_frame(clip, index: int) -> np.ndarray:
    video = cv2.VideoCapture(str(clip))
    video.set(cv2.CAP_PROP_POS_FRAMES, index)
    frame = video.read()[1]
    video.release()
    return frame


def test_analyze_reads_a_photo_as_analyze_image_does(media_dir, tmp_path):
    """A picture MTCNN misses and the fallback (YuNet) finds: `fercam analyze` gives analyze_image's faces."""
    photo = tmp_path / "missed.png"
    dim = (video_frame(media_dir / "fer_test.mp4", 80) * 0.15).astype(np.uint8)  # her face in a dim room
    cv2.imwrite(str(photo), dim)
    image = cv2.imread(str(photo))
    assert not fercam.load_detector("mtcnn").detect(image)  # the case the fallback is for
    expected = fercam.analyze_image(image)
    assert expected
    (result,) = analyze_inputs([str(photo)], tmp_path / "out", jobs=1)
    assert not result.error
    with (tmp_path / "out" / "missed" / "timeline.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == len(expected)
    for row, face in zip(rows, expected):
        box = [float(row[k]) for k in ("x1", "y1", "x2", "y2")]
        assert np.allclose(box, [face.box.x1, face.box.y1, face.box.x2, face.box.y2], atol=1)
        assert np.allclose([float(row[e]) for e in EMOTIONS], face.probs, atol=1e-3)


def test_unsure_faces_are_flagged_and_drawn_as_the_setting_says(media_dir):
    reading = load_combined_reading()
    for name in ("fer_justin.jpg", "fr_obama.jpg", "skimage_astronaut.jpg", "two_people.jpg"):
        faces = read_image(cv2.imread(str(media_dir / name)), fercam.load_detector(), reading)
        for face in faces:
            assert face.unsure == (face.confidence < reading.unsure_below)
    shaky = Face(1, Box(40, 60, 200, 220), 0.99, [0.3, 0.05, 0.05, 0.25, 0.15, 0.1, 0.1], unsure=True)
    sure = Face(1, Box(40, 60, 200, 220), 0.99, [0.3, 0.05, 0.05, 0.25, 0.15, 0.1, 0.1])
    blank = np.zeros((300, 300, 3), np.uint8)
    analysis = Analysis(0, 0.0, (shaky,))

    def drawn(settings):
        out = blank.copy()
        for annotator in annotators_for(settings):
            annotator.annotate(out, analysis)
        return out

    honest, labelled = drawn(Settings(unsure_faces="unsure")), drawn(Settings(unsure_faces="label"))
    assert not np.array_equal(honest, labelled)
    assert np.array_equal(labelled, drawn_for(sure, Settings(unsure_faces="unsure")))  # "label": as if sure
    grey = honest[60:220, 38:43].reshape(-1, 3)
    assert (np.abs(grey.astype(int) - 235).max(axis=1) < 3).mean() > 0.5  # the box is the unsure grey
    assert LabelAnnotator(honest=True).annotate(blank.copy(), analysis).any()


def drawn_for(face, settings):
    out = np.zeros((300, 300, 3), np.uint8)
    for annotator in annotators_for(settings):
        annotator.annotate(out, Analysis(0, 0.0, (face,)))
    return out


def test_the_unsure_setting_is_validated():
    settings, problems = Settings.from_dict({"unsure_faces": "maybe", "show_boxes": False})
    assert settings.unsure_faces == "unsure" and not settings.show_boxes
    assert problems == ['unsure_faces must be one of label, unsure, not "maybe"']


# The repository's pictures, labelled by eye, with who is in them: (source, frame or None, mirrored, label, person).
LABELLED = [
    ("fer_justin.jpg", None, False, "happy", "justin"),
    ("fer_justin.jpg", None, True, "happy", "justin"),
    ("fr_obama.jpg", None, False, "happy", "obama"),
    ("fr_obama.jpg", None, True, "happy", "obama"),
    ("two_people.jpg", None, False, "happy", "obama"),
    ("skimage_astronaut.jpg", None, False, "happy", "collins"),
    ("skimage_astronaut.jpg", None, True, "happy", "collins"),
    *[("fer_test.mp4", i, False, "neutral" if i == 0 else "happy", "phone") for i in (0, 40, 80, 110)],
    *[("fer_woman2.mp4", i, False, "happy" if i == 20 else "neutral", "presenter") for i in (20, 110, 240, 420)],
]


def test_fercam_evaluate_scores_a_labelled_photo_folder(media_dir, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    files, labels = [], []
    with (folder / "labels.csv").open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["file", "label", "person"])
        for n, (source, frame, mirrored, label, person) in enumerate(LABELLED):
            image = cv2.imread(str(media_dir / source)) if frame is None else video_frame(media_dir / source, frame)
            files.append(f"{n:02d}_{Path(source).stem}.png")
            cv2.imwrite(str(folder / files[-1]), cv2.flip(image, 1) if mirrored else image)
            out.writerow([files[-1], label, person])
            labels.append(EMOTIONS.index(label))
    assert main(["evaluate", "--data", str(folder), "--out", str(tmp_path / "report")]) == 0
    printed = capsys.readouterr().out
    assert "the app's reading: accuracy" in printed and "fold 5 (whole persons or films)" in printed
    assert "held out: the shipped rule was not fitted on this folder" in printed and "recall: angry" in printed
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    expected = [largest_top(fercam.analyze_image(cv2.imread(str(folder / name)))) for name in files]
    right = sum(p == label for p, label in zip(expected, labels))
    assert metrics["reading"]["accuracy"] == round(right / len(files), 4)
    assert (tmp_path / "report" / "confusion.png").stat().st_size > 1000
    (folder / "labels.csv").write_text("file,label\nnope.jpg,happy\n")
    assert main(["evaluate", "--data", str(folder), "--out", str(tmp_path / "r2")]) != 0
    assert "1 pictures not found, e.g. nope.jpg" in capsys.readouterr().err
    (folder / "labels.csv").write_text(f"file,label\n{files[0]},grumpy\n")
    assert main(["evaluate", "--data", str(folder), "--out", str(tmp_path / "r2")]) != 0
    assert "line 2: label 'grumpy'" in capsys.readouterr().err


def _run_tool(name: str, *args: str, timeout: float = 120):
    """Run `tools/NAME.py ARGS` as its README says (this tree on the path); it must succeed."""
    import os
    import subprocess
    import sys

    root = Path(__file__).parents[1]
    done = subprocess.run(
        [sys.executable, str(root / "tools" / f"{name}.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_the_face_mesh_opinion_reads_a_face_by_its_shape_not_its_size_or_a_slight_tilt():
    """The mesh tool's aligned shape: the same face tilted 5 degrees and shrunk reads as itself, a different
    person as someone else (what lets the shape stand for the expression). The crop is not turned upright,
    so a larger tilt moves the mesh itself (15 degrees: half the distance to another person; models/README.md)."""
    tool = load_tool("mesh_third_opinion")
    mesh, detector = tool.MeshReader(), fercam.load_detector("mtcnn")

    def shape(image):
        face = max(detector.detect(image), key=lambda d: d.box.width * d.box.height)
        return mesh.read(image, face.box)

    obama = cv2.imread(str(Path(__file__).parent / "media" / "fr_obama.jpg"))
    height, width = obama.shape[:2]
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), 5, 0.7)
    turned = cv2.warpAffine(obama, turn, (width, height), borderMode=cv2.BORDER_REPLICATE)
    other = cv2.imread(str(Path(__file__).parent / "media" / "fer_justin.jpg"))
    a, b, c = tool.aligned_shapes(np.stack([shape(obama), shape(turned), shape(other)]))
    assert np.linalg.norm(a - b) < 0.5 * np.linalg.norm(a - c)
    # and exactly invariant to a similarity transform of the points themselves
    points = shape(obama)
    moved = points.copy()
    moved[:, :2] = 2.5 * points[:, :2] @ np.array([[0.8, -0.6], [0.6, 0.8]]) + [40, -7]
    moved[:, 2] = 2.5 * points[:, 2] + 3
    np.testing.assert_allclose(*tool.aligned_shapes(np.stack([points, moved, shape(other)]))[:2], atol=1e-4)


def test_the_zoo_model_split_for_fine_tuning_reads_faces_as_the_shipped_model_does():
    """`tools/zoo_last_layers.py` fine-tunes the zoo network's head on the trunk's cached maps: split after its last
    residual block and run with the zoo's own head weights, it must read real aligned faces (both views) as the
    shipped LiteRT file does, or the fine-tuning would start from another model."""
    tool = load_tool("zoo_last_layers")
    zoo, detector, shipped = tool.SplitZoo(), fercam.load_detector("mtcnn"), AlignedEmotionModel()
    faces = []
    for name in ("fr_obama.jpg", "fer_justin.jpg"):
        image = cv2.imread(str(Path(__file__).parent / "media" / name))
        face = max(detector.detect(image), key=lambda d: d.box.width * d.box.height)
        aligned = aligned_faces(image, [face])[0]
        faces += [aligned, aligned[:, ::-1]]
    maps = zoo.trunk(np.stack(faces))
    assert maps.shape == (4, 7, 7, 128)
    logits, features = zoo.head(maps)
    probs, expected_features = shipped.read_aligned(faces)
    np.testing.assert_allclose(softmax(logits.numpy()[:, RAF_TO_FER]), probs, atol=1e-4)
    np.testing.assert_allclose(features.numpy(), expected_features, atol=1e-3)
    # the head reads the weights it is given (what the fine-tuning trains): without its classifier's matrix,
    # every face reads the same, its bias alone
    weights = dict(zoo.head_weights)
    classifier = next(name for name, value in weights.items() if value.shape == (512, 7))
    weights[classifier] = np.zeros_like(weights[classifier])
    logits, _ = zoo.head(maps, weights)
    assert np.ptp(logits.numpy(), axis=0).max() < 1e-6 < np.ptp(probs, axis=0).max()


def test_the_zoo_model_reads_a_crowd_without_growing_the_process():
    """A photo of thirty faces is read one face an invoke: the process does not keep an interpreter arena thirty
    faces deep (one batch of thirty grew it by 145 MB for good). Readings in one call equal those one by one:
    `test_the_shipped_second_model_reads_a_frames_faces_in_one_call_as_one_by_one`."""
    model = AlignedEmotionModel()
    photo = cv2.imread(str(Path(__file__).parent / "media" / "fr_obama.jpg"))
    face = max(fercam.load_detector("mtcnn").detect(photo), key=lambda d: d.box.width * d.box.height)
    aligned = aligned_faces(photo, [face])[0]
    crowd = [np.roll(aligned, shift, axis=1) for shift in range(30)]  # thirty slightly different faces
    model.read_aligned(crowd[:1])  # the arena for one face exists before measuring

    def resident_mb() -> float:
        return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 1e6

    before = resident_mb()
    probs, features = model.read_aligned(crowd)
    assert resident_mb() - before < 40
    assert probs.shape == (30, 7) and features.shape == (30, 512)
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5) and not np.allclose(features[0], features[15], atol=0.01)


def test_a_model_with_a_batch_limit_reads_a_longer_batch_in_parts_as_one():
    """`max_batch`: a batch longer than the limit is read in parts (the last one shorter) and comes back whole,
    row for row what one invoke gives."""
    faces = np.random.default_rng(1).integers(0, 256, (5, 48, 48, 1)).astype(np.float32)
    whole = LiteRTModel(model_file("fer_cnn.tflite"), input_shape=(48, 48, 1), outputs=7).run(faces)
    parted = LiteRTModel(model_file("fer_cnn.tflite"), input_shape=(48, 48, 1), outputs=7, max_batch=2).run(faces)
    assert parted.shape == (5, 7) and np.allclose(parted, whole, atol=1e-5)
    assert not np.allclose(parted[0], parted[4], atol=1e-3)


def test_the_idle_penalty_tool_times_each_live_part_back_to_back_and_paced(media_dir):
    """`tools/idle_penalty.py` (docs/PERFORMANCE.md): every part of a live frame's work gets a CPU time back to back and
    one with a camera period of sleep before each call, and the bench's camera is timed as a share of a core."""
    import re

    done = _run_tool("idle_penalty", "--clip", str(media_dir / "fer_woman2.mp4"), "--calls", "3", "--camera-s", "0.5")
    rows = re.findall(r"^(.+?)\s+([\d.]+) ms\s+([\d.]+) ms\s+([\d.]+)$", done.stdout, re.M)
    assert [name.strip() for name, *_ in rows] == [
        "decode the clip's next frame",
        "scale it to 1280x720",
        "copy a 1280x720 frame",
        "second opinion, one face",
        "our model, one face",
    ]
    assert all(float(busy) > 0 and float(paced) > 0 for _, busy, paced, _ in rows)
    camera = re.search(r"paced at 30 fps\): ([\d.]+) of a core", done.stdout)
    assert camera and 0 < float(camera.group(1)) < 2


def test_bench_against_runs_each_build_in_turn_and_the_floor_reads_each_face_once(media_dir):
    """`tools/bench_against.py` (docs/PERFORMANCE.md): another commit (here HEAD, in a worktree of its own), this
    tree, and this tree with the second opinion read once a face, each a real `fercam bench` in its own process;
    the floor reads the zoo model far less often than the shipped rule, and the worktree is gone afterwards."""
    import re
    import subprocess

    root = Path(__file__).parents[1]
    if not (root / ".git").exists():
        pytest.skip("not a git checkout: no other commit to check out")
    before = subprocess.run(["git", "-C", str(root), "worktree", "list"], capture_output=True, text=True).stdout
    args = ["--commit", "HEAD", "--rounds", "1", "--seconds", "3", "--source", str(media_dir / "fer_woman2.mp4")]
    done = _run_tool("bench_against", *args, timeout=300)
    reads = dict(re.findall(r"^round 1 (HEAD|this|once a face)\s.*second opinion ([\d.]+) a second", done.stdout, re.M))
    assert set(reads) == {"HEAD", "this", "once a face"}, done.stdout
    assert float(reads["once a face"]) < 0.5 * float(reads["this"])
    means = re.findall(r"^(HEAD|this|once a face)\s+mean ([\d.]+) of a core, ([\d.]+)x HEAD$", done.stdout, re.M)
    assert [name for name, *_ in means] == ["HEAD", "this", "once a face"] and means[0][2] == "1.00"
    assert all(0 < float(cores) < 2 for _, cores, _ in means)
    after = subprocess.run(["git", "-C", str(root), "worktree", "list"], capture_output=True, text=True).stdout
    assert after == before


def test_the_second_opinion_ceiling_gives_the_zoo_model_less_of_the_face():
    """`tools/second_opinion_ceiling.py` measures what a cheaper student could keep: each mode must take away what
    it says (the colour, the detail above N px) and nothing else, or the ceiling it reports is another's."""
    tool = load_tool("second_opinion_ceiling")
    photo = cv2.imread(str(Path(__file__).parent / "media" / "fr_obama.jpg"))
    face = max(fercam.load_detector("mtcnn").detect(photo), key=lambda d: d.box.width * d.box.height)
    aligned = aligned_faces(photo, [face])[0]
    assert tool.less_of(aligned, "none") is aligned
    grey = tool.less_of(aligned, "grey")
    assert grey.shape == aligned.shape and (grey == grey[:, :, :1]).all() and not (aligned == aligned[:, :, :1]).all()
    for size in (56, 64):
        small = tool.less_of(aligned, f"down{size}")
        assert small.shape == aligned.shape and np.abs(small.astype(int) - aligned).mean() > 1  # detail lost
        again = cv2.resize(cv2.resize(small, (size, size), interpolation=cv2.INTER_AREA), (112, 112))
        assert np.abs(again.astype(int) - small).mean() < np.abs(small.astype(int) - aligned).mean()  # no more
    both = tool.less_of(aligned, "grey56")
    assert (both == both[:, :, :1]).all() and np.abs(both.astype(int) - grey).mean() > 1


def test_the_class_offset_tool_lifts_a_rare_class_to_its_floor_only_where_accuracy_allows():
    """`tools/class_offsets.py` (tried, not adopted): the smallest offset in its steps that gives the class the
    recall floor, kept only when the accuracy it costs is within the cap."""
    tool = load_tool("class_offsets")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 700)
    # disgust's faces barely look like disgust: lifting it to a high recall takes other classes' faces
    logits = rng.normal(0, 1, (700, 7)) + np.where(y[:, None] == 1, 1.0, 3.0) * np.eye(7)[y]
    found = np.ones(700, bool)

    def scores(offsets):
        s = tool.scored(tool.softmax(logits + offsets), found, y)
        return s["accuracy"], s["recall"]["disgust"]

    base_accuracy, base_recall = scores(np.zeros(7))
    lifted = tool.offsets_for(logits, found, y, [1], floor=0.8, cap=1.0)
    accuracy, recall = scores(lifted)
    assert base_recall < 0.8 <= recall and lifted[1] > 0 and not np.delete(lifted, 1).any()
    one_step_less = lifted.copy()
    one_step_less[1] -= 0.25
    assert scores(one_step_less)[1] < 0.8  # the smallest step that reaches the floor
    cost = base_accuracy - accuracy
    assert cost > 0.01  # this floor is dear: it is kept only under a cap that allows its cost
    assert not tool.offsets_for(logits, found, y, [1], floor=0.8, cap=cost / 2).any()
    assert tool.offsets_for(logits, found, y, [1], floor=0.8, cap=cost + 1e-6)[1] == lifted[1]
