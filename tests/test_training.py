"""Training and evaluation tools on small slices of the real data (they need fercam[train])."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import cv2
import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="training tools need the train extra: pip install 'fercam[train]'")

from fercam.apps.cli import main  # noqa: E402
from fercam.emotion import load_classifier  # noqa: E402
from fercam.litert import ModelError  # noqa: E402
from fercam.paths import model_file  # noqa: E402
from fercam.training.calibrate import MAX_ACCURACY_COST, MIN_RECALL, TAUS, fit_logit_bias, recall  # noqa: E402
from fercam.training.data import DataError, class_weights, ferplus_distribution, load_splits, validation_split  # noqa: E402
from fercam.training.models import (  # noqa: E402
    SERVING_CROP,
    dtype_policy,
    float32_copy,
    framed,
    make_fernet,
    make_model,
    with_softmax,
)
from fercam.training.rebuild import rebuild_fernet, rebuild_serving  # noqa: E402
from fercam.training.train import (  # noqa: E402
    TrainConfig,
    distillation_targets,
    soft_targets,
    start_from,
    train,
)
from fercam.types import EMOTIONS  # noqa: E402


@pytest.fixture(scope="module")
def small_splits(fer_npz):
    splits = load_splits(fer_npz)
    return splits.train.subset(np.arange(300)), splits.test.subset(np.arange(70))


def test_npz_splits_have_faces_labels_and_votes(fer_npz):
    splits = load_splits(fer_npz)
    assert splits.train.x.shape == (28709, 48, 48) and splits.train.x.dtype == np.uint8
    assert len(splits.test) == 3589
    assert np.bincount(splits.train.y)[1] == 436  # disgust, the rare class
    assert splits.train.votes.shape == (28709, 10)


def test_kaggle_csv_and_class_folders_load_the_same_faces(tmp_path, small_splits):
    train, test = small_splits
    path = tmp_path / "fer2013.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["emotion", "pixels", "Usage"])
        for data, usage in ((train, "Training"), (test, "PublicTest")):
            for x, y in zip(data.x[:20], data.y[:20]):
                writer.writerow([int(y), " ".join(map(str, x.ravel())), usage])
    from_csv = load_splits(path)
    assert np.array_equal(from_csv.train.x, train.x[:20]) and np.array_equal(from_csv.test.y, test.y[:20])
    for part, data in (("train", train), ("test", test)):
        for i, (x, y) in enumerate(zip(data.x[:10], data.y[:10])):
            folder = tmp_path / "faces" / part / EMOTIONS[y]
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / f"{i}.png"), x)
    from_folders = load_splits(tmp_path / "faces")
    assert len(from_folders.train) == 10 and sorted(from_folders.train.y) == sorted(train.y[:10])


@pytest.mark.parametrize("content", ["", "emotion,pixels,Usage\n0,1 2 3,Training\n", "not,a\ncsv,file\n"])
def test_bad_data_files_raise_one_clear_error(tmp_path, content):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError, match="bad.csv"):
        load_splits(path)
    with pytest.raises(DataError, match="not found"):
        load_splits(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable"):
        load_splits(tmp_path / "junk.npz")


def test_targets_weights_and_split_handle_imbalance(fer_npz):
    train = load_splits(fer_npz).train
    fit, val = validation_split(train.y, 0.1, seed=1)
    assert not set(fit) & set(val) and (np.bincount(train.y[val]) > 0).all()
    targets = soft_targets(train.subset(np.arange(500)), 0.3)
    assert np.allclose(targets.sum(1), 1) and (targets.argmax(1) == train.y[:500]).all()
    votes = ferplus_distribution(train.votes[:500])
    assert np.allclose(np.nansum(votes, 1)[~np.isnan(votes).any(1)], 1)
    weights = class_weights(train.y, 0.5)
    assert weights[1] > 3 * weights[3]  # disgust weighs more than happy
    assert np.isclose(weights[train.y].mean(), 1)


def test_logit_bias_buys_recall_for_rare_classes():
    rng = np.random.default_rng(0)
    labels = rng.choice(7, 2000, p=[0.14, 0.02, 0.14, 0.25, 0.17, 0.11, 0.17])
    logits = rng.normal(size=(2000, 7)) + 2.0 * np.eye(7)[labels]
    logits[:, 1] -= 2.5  # a model that under-predicts disgust
    bias = fit_logit_bias(logits, labels)
    before, after = np.argmax(logits, 1), np.argmax(logits + bias, 1)
    assert recall(after, labels, 1) > recall(before, labels, 1)
    assert all(recall(after, labels, c) >= floor for c, floor in MIN_RECALL.items())


def test_logit_bias_keeps_a_weak_models_accuracy():
    rng = np.random.default_rng(1)
    labels = rng.choice(7, 2000, p=[0.14, 0.02, 0.14, 0.25, 0.17, 0.11, 0.17])
    logits = rng.normal(size=(2000, 7)) + 0.5 * np.eye(7)[labels]  # barely better than chance
    logits[:, 3] += 1.0  # and mostly says happy
    logits[:, [1, 2]] -= 2.0
    accuracy = lambda bias: (np.argmax(logits + bias, 1) == labels).mean()  # noqa: E731
    best_tau_only = max(accuracy(-tau * np.log(np.bincount(labels) / len(labels))) for tau in TAUS)
    assert accuracy(fit_logit_bias(logits, labels)) >= best_tau_only - MAX_ACCURACY_COST - 1e-9


@pytest.mark.slow
def test_training_smoke_exports_a_litert_model_that_agrees(tmp_path, fer_npz):
    config = TrainConfig(data=str(fer_npz), out=str(tmp_path / "run"), epochs=1, limit=320, batch_size=32)
    metrics = train(config)
    run = tmp_path / "run"
    for name in (
        "config.json",
        "history.csv",
        "checkpoint.keras",
        "model.keras",
        "model.tflite",
        "metrics.json",
        "confusion.png",
        "per_class.png",
    ):
        assert (run / name).is_file(), name
    assert 0 <= metrics["accuracy"] <= 1 and set(metrics["per_class"]) == set(EMOTIONS)
    faces = load_splits(fer_npz).test.x[:5]
    litert, keras_model = load_classifier(run / "model.tflite"), load_classifier(run / "model.keras")
    assert np.abs(litert.predict_faces(faces) - keras_model.predict_faces(faces)).mean() < 0.02  # int8 weights
    assert metrics["litert_vs_keras"]["decisive_agreement"] >= 0.98
    assert json.loads((run / "state.json").read_text()) == {"epoch": 1}  # what --resume continues from
    resumed = train(config, resume=True)  # already at its last epoch: resumes, re-exports
    assert resumed["samples"] == metrics["samples"]
    assert json.loads((run / "config.json").read_text())["precision"] in ("float32", "mixed_bfloat16")

    student = replace(config, out=str(tmp_path / "student"), teachers=(str(run / "model.keras"),), precision="float32")
    assert train(student)["samples"] == metrics["samples"]
    assert (tmp_path / "student" / "model.tflite").is_file()


@pytest.mark.slow
def test_distillation_blends_labels_with_the_teachers_mean_view(tmp_path, fer_npz):
    paths = [tmp_path / "teacher1.keras", tmp_path / "teacher2.keras"]
    for path in paths:
        with_softmax(make_fernet()).save(path)
    config = TrainConfig(data=str(fer_npz), out=str(tmp_path), teachers=tuple(map(str, paths)), teacher_weight=0.25)
    blend = distillation_targets(config)
    faces = load_splits(fer_npz).test.x[:4]
    labels = np.eye(len(EMOTIONS), dtype=np.float32)[[0, 1, 2, 3]]
    taught = np.mean([load_classifier(path, views="single").predict_faces(faces) for path in paths], axis=0)
    got = np.asarray(blend(faces[..., None].astype(np.float32), labels))
    np.testing.assert_allclose(got, 0.75 * labels + 0.25 * taught, atol=1e-5)
    np.testing.assert_allclose(got.sum(axis=1), 1, atol=1e-5)


def test_the_serving_frame_is_the_centre_crop_scaled_back_to_48(fer_npz):
    net = make_fernet()
    faces = load_splits(fer_npz).test.x[:4].astype(np.float32)
    margin = (48 - SERVING_CROP) // 2
    cropped = np.stack([cv2.resize(f[margin:-margin, margin:-margin], (48, 48)) for f in faces])  # bilinear
    want = net.predict(cropped[..., None], verbose=0)
    np.testing.assert_allclose(framed(net).predict(faces[..., None], verbose=0), want, atol=1e-4)
    assert not np.allclose(net.predict(faces[..., None], verbose=0), want, atol=1e-3)


def test_the_wide_teacher_is_fernet_at_twice_the_width_and_exports_in_float32():
    import keras

    def filters(model):
        return [layer.filters for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]

    assert filters(make_model("fernet-wide")) == [2 * f for f in filters(make_model("fernet"))]
    with dtype_policy("mixed_bfloat16"):  # as trained where the CPU has bf16
        trained = make_model("fernet-wide")
    copy = float32_copy(trained)
    assert copy.name == "fernet-wide" and {layer.dtype_policy.name for layer in copy.layers} == {"float32"}
    for got, want in zip(copy.get_weights(), trained.get_weights()):
        np.testing.assert_array_equal(got, want)


@pytest.mark.slow
def test_fine_tuning_starts_from_a_trained_models_weights(tmp_path):
    import keras

    trained = with_softmax(framed(make_fernet()), logit_bias=np.arange(7) / 7)  # as finish() saves it
    trained.save(tmp_path / "trained.keras")
    model = make_fernet()
    start_from(model, str(tmp_path / "trained.keras"))
    for got, want in zip(model.get_weights(), trained.get_weights()):
        np.testing.assert_array_equal(got, want)
    other = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(), keras.layers.Dense(7)])
    other.save(tmp_path / "other.keras")
    with pytest.raises(ModelError, match="not a fernet model"):
        start_from(make_fernet(), str(tmp_path / "other.keras"))


def test_the_shipped_tflite_rebuilds_as_the_keras_model_it_serves(fer_npz):
    faces = load_splits(fer_npz).test.x[:256]
    served = load_classifier(views="single").predict_faces(faces)
    rebuilt = rebuild_serving(model_file("fer_cnn.tflite")).predict(faces[..., None].astype(np.float32), verbose=0)
    assert (served.argmax(1) == rebuilt.argmax(1)).mean() >= 0.98  # the file's activations run in int8
    assert np.abs(served - rebuilt).mean() < 0.005


@pytest.mark.slow
def test_fine_tuning_the_shipped_tflite_starts_where_it_is(tmp_path, fer_npz):
    """At a learning rate of ~0 a short run must not move the model: its rebuilt batch norms
    hold the statistics that training batches bring (an identity norm would be renormalised)."""
    import keras

    shipped = str(model_file("fer_cnn.tflite"))
    config = TrainConfig(
        data=str(fer_npz), out=str(tmp_path), epochs=1, limit=640, learning_rate=1e-9, init=shipped,
        teachers=(shipped,), precision="float32",
    )  # fmt: skip
    train(config)
    faces = load_splits(fer_npz).test.x[:256, ..., None].astype(np.float32)
    tuned = framed(keras.models.load_model(tmp_path / "checkpoint.keras")).predict(faces, verbose=0)
    before = framed(rebuild_fernet(shipped)).predict(faces, verbose=0)
    assert (tuned.argmax(1) == before.argmax(1)).mean() >= 0.95


def test_a_tflite_that_is_not_a_fernet_is_a_clear_error(tmp_path, fer_npz, capsys):
    with pytest.raises(ModelError, match="not a fernet model"):
        rebuild_fernet(model_file("voice_mlp.tflite"))
    args = ["train", "--data", str(fer_npz), "--out", str(tmp_path / "run"), "--limit", "64", "--epochs", "1"]
    assert main([*args, "--teacher", str(model_file("mtcnn_onet.tflite"))]) != 0
    err = capsys.readouterr().err
    assert "not a fernet model" in err and "Traceback" not in err


def test_train_cli_rejects_a_start_model_that_is_not_a_model(tmp_path, fer_npz, capsys):
    (tmp_path / "notes.keras").write_text("not a model")
    args = ["train", "--data", str(fer_npz), "--out", str(tmp_path / "run"), "--limit", "64", "--epochs", "1"]
    assert main([*args, "--init", str(tmp_path / "notes.keras")]) != 0
    err = capsys.readouterr().err
    assert "not a Keras model" in err and "Traceback" not in err


def test_evaluate_cli_writes_metrics_and_figures(tmp_path, fer_npz, capsys):
    out = tmp_path / "eval"
    args = ["evaluate", "models/fer_cnn.tflite", "--data", str(fer_npz), "--out", str(out), "--limit", "200"]
    assert main([*args, "--no-mirror"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["samples"] == 200 and metrics["mirror"] is False
    assert (out / "confusion.png").stat().st_size > 1000 and (out / "per_class.png").is_file()
    assert "accuracy" in capsys.readouterr().out


def test_train_cli_rejects_a_missing_data_file(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "nope.npz"), "--out", str(tmp_path / "run")]) != 0
    err = capsys.readouterr().err
    assert "data not found" in err and "Traceback" not in err


@pytest.mark.slow
def test_the_backbone_comparison_tool_times_an_epoch(fer_npz):
    from conftest import load_tool

    tool = load_tool("compare_backbones")
    config = TrainConfig(data=str(fer_npz), out="unused", limit=640, batch_size=32, precision="float32")
    seconds = tool.epoch_seconds(config)
    assert 0 < seconds < 600  # the command in docs/BACKBONES.md runs (it raised TypeError before)
