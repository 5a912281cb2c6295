"""The real CLI, in process: what a user types, what they get, and one-line errors."""

from __future__ import annotations

import json
import sys

import cv2
import pytest
from conftest import count_frames

from fercam.apps.cli import main

BENCH_KEYS = {
    "output_fps",
    "latency_p50_ms",
    "latency_p95_ms",
    "analysis_hz",
    "emotion_refresh_hz_per_face",
    "classifier_ms_per_face",
    "second_opinion_hz_per_face",
    "cpu_cores",
    "cpu_cores_by_stage",
    "first_frame_s",
    "first_annotated_s",
    "rss_mb",
}


@pytest.fixture(scope="module")
def woman_run(media_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    code = main(
        [
            "run",
            "--source",
            str(media_dir / "fer_woman2.mp4"),
            "--sink",
            f"file:{out / 'out.mp4'}",
            "--events",
            str(out / "ev.jsonl"),
            "--no-tray",
        ]
    )
    return code, out


def test_run_annotates_every_frame_of_a_video_into_a_file(woman_run):
    code, out = woman_run
    assert code == 0
    capture = cv2.VideoCapture(str(out / "out.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 464


def test_run_events_have_one_line_per_frame_with_faces(woman_run):
    _, out = woman_run
    events = [json.loads(line) for line in (out / "ev.jsonl").read_text().splitlines()]
    assert [e["frame"] for e in events] == list(range(464))
    with_face = [e for e in events if e["faces"]]
    assert len(with_face) >= 0.9 * 464
    face = with_face[0]["faces"][0]
    assert set(face) == {"id", "box", "emotion", "confidence", "unsure", "probs"} and len(face["box"]) == 4
    assert list(face["probs"]) == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert {f["id"] for e in with_face for f in e["faces"]} == {1}


def test_run_into_a_registered_virtual_camera_backend(media_dir, recording_backend, capsys):
    code = main(
        [
            "run",
            "--source",
            str(media_dir / "fer_test.mp4"),
            "--sink",
            "virtualcam",
            "--no-tray",
            "--vcam-backend",
            "fercam-test",
            "--max-frames",
            "12",
            "--size",
            "640x360",
        ]
    )
    assert code == 0
    (camera,) = recording_backend.instances
    assert len(camera.frames) == 12 and camera.frames[0].shape == (360, 640, 3) and camera.closed


def test_two_faces_in_a_photo(media_dir, tmp_path):
    events = tmp_path / "ev.jsonl"
    assert (
        main(
            [
                "run",
                "--source",
                str(media_dir / "two_people.jpg"),
                "--sink",
                f"file:{tmp_path / 'o.mp4'}",
                "--events",
                str(events),
                "--no-tray",
            ]
        )
        == 0
    )
    (event,) = [json.loads(line) for line in events.read_text().splitlines()]
    assert len(event["faces"]) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--source", "missing.mp4", "--sink", "file:o.mp4", "--no-tray"], "no such file"),
        (["run", "--source", "{video}", "--sink", "printer", "--no-tray"], "unknown sink"),
        (["run", "--source", "{junk}", "--sink", "file:o.mp4", "--no-tray"], "cannot read video"),
        (["run", "--source", "{video}", "--sink", "virtualcam", "--vcam-backend", "nope", "--no-tray"], "fix:"),
        (
            [
                "run",
                "--source",
                "{video}",
                "--sink",
                "file:o.mp4",
                "--detector",
                "nope",
                "--no-tray",
                "--max-frames",
                "2",
            ],
            "unknown face detector",
        ),
    ],
)
def test_bad_input_is_one_line_and_non_zero(args, message, media_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "junk.mp4").write_text("not a video")
    args = [a.format(video=media_dir / "fer_test.mp4", junk=tmp_path / "junk.mp4") for a in args]
    assert main(args) != 0
    err = capsys.readouterr().err
    assert message in err.lower() and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_usage_errors_do_not_raise(capsys):
    assert main(["run", "--size", "big"]) == 2
    assert main(["no-such-command"]) == 2


def test_devices_lists_webcams_and_the_fer_cam_output(capsys, monkeypatch):
    from fercam.devices import VideoDevice

    monkeypatch.setattr("fercam.devices.probe_webcams", lambda: {0: "1280x720"})
    devices = [VideoDevice("/dev/video0", "Integrated Camera", False), VideoDevice("/dev/video9", "FER Cam", True)]
    monkeypatch.setattr("fercam.devices.video_devices", lambda: devices)
    assert main(["devices"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "webcams: camera 0 (1280x720)",
        "video device /dev/video0: Integrated Camera",
        "video device /dev/video9: FER Cam  <- FER Cam output",
    ]


def test_devices_on_a_machine_without_any(capsys, monkeypatch):
    monkeypatch.setattr("fercam.devices.video_devices", lambda: [])
    monkeypatch.setattr(sys, "platform", "linux")
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "webcams: none found" in out and 'virtual camera "FER Cam": not found; fix: ' in out


def test_bench_without_a_source_or_a_webcam_measures_the_shipped_clip(capsys, monkeypatch):
    from fercam.paths import SAMPLE_CLIP

    monkeypatch.setattr("fercam.devices.probe_webcams", lambda: {})  # as on a machine without a webcam
    assert main(["bench", "--json", "--seconds", "3", "--size", "640x480"]) == 0
    out, err = capsys.readouterr()
    result = json.loads(out)  # stdout is one JSON object; which source was used is said on stderr too
    assert f"measuring the sample clip {SAMPLE_CLIP}" in err and result["source"] == str(SAMPLE_CLIP)
    assert BENCH_KEYS <= set(result)
    assert result["output_fps"] > 0 and result["rss_mb"] > 0 and 0 < result["cpu_cores"] < 2.5
    assert {"capture", "analysis", "render", "send"} <= set(result["cpu_cores_by_stage"])


def test_bench_says_its_result_in_words_against_the_goals():
    from fercam.apps.bench.bench import format_report

    result = {
        "source": "clip.mp4", "size": "1280x720", "faces": 1, "detector": "mtcnn", "seconds": 10.0,
        "output_fps": 30.0, "latency_p95_ms": 12.5, "analysis_hz": 22.0, "emotion_refresh_hz_per_face": 12.0,
        "first_frame_s": 0.2, "first_annotated_s": 0.4, "rss_mb": 180.0, "cpu_cores": 0.25,
        "classifier_ms_per_face": 3.1, "second_opinion_hz_per_face": 1.2, "detector_full_scan_ms": 20.0,
        "full_scans_per_s": 0.5, "detector_tracked_ms": 3.0, "tracked_searches_per_s": 4.0,
        "cpu_cores_by_stage": {"analysis": 0.2, "render": 0.05},
    }  # fmt: skip
    text = format_report(result)
    assert "30.0 fps out: real time (goal >= 29.5)" in text
    assert "0.25 of a core: heavy (goal <= 0.2)" in text  # the 720p one-face goal
    assert "12.5 ms from camera to call (95% of frames): late (goal <= 10)" in text
    assert "first annotated frame after 0.4 s: quick" in text and "second opinion 1.2 times a second" in text
    assert "0.15 of a core: light" in format_report({**result, "cpu_cores": 0.15})
    other = format_report({**result, "size": "640x480"})  # no scenario: no CPU goal, the others hold
    assert "0.25 of a core\n" in other and "30.0 fps out: real time" in other
    assert "{" not in text  # words, not a dict


def test_bench_analyze_times_every_stage_of_analyze(media_dir, capsys):
    clip = media_dir / "fer_test.mp4"
    assert main(["bench", "--analyze", str(clip), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    stages = result["cpu_ms_per_frame_by_stage"]
    assert result["frames"] == count_frames(clip) and result["fps"] > 0
    assert set(stages) == {"decode", "detect", "classify", "second opinion", "track", "body", "timeline",
                           "write video", "voice", "other"}  # fmt: skip
    assert all(stages[k] > 0 for k in ("decode", "detect", "classify", "second opinion", "write video", "voice"))
    assert abs(sum(v for k, v in stages.items() if k != "voice") - result["cpu_ms_per_frame"]) < 0.1
    # one face in every frame: the second opinion on the first and again when it changed, not on every frame
    assert 0 < result["second_opinions"] < result["faces_read"] // 2 and result["faces_read"] >= result["frames"] - 5
    # how often a second, and why: the face was new once, then each reading has a reason
    assert result["second_opinions_per_s"] > 0 and result["second_opinion_reasons"]["new"] >= 1
    assert sum(result["second_opinion_reasons"].values()) >= result["second_opinions"]


def test_bench_without_a_source_takes_the_first_webcam_that_opens(monkeypatch):
    from fercam.apps.bench.bench import default_source

    monkeypatch.setattr("fercam.devices.probe_webcams", lambda: {2: "640x480"})  # no webcam here: its probe
    assert default_source() == ("2", "no --source: measuring webcam 2 (640x480)")


def test_bench_takes_only_ascii_digits_for_a_webcam():
    from fercam.apps.bench.parts import TiledSource
    from fercam.contracts import SourceError

    with pytest.raises(SourceError, match="no such file or folder: ²"):  # "²".isdigit() is true, int("²") fails
        TiledSource("²", (640, 480), 1, 30)


def test_bench_soak_samples_memory_and_rate(media_dir, capsys):
    args = ["bench", "--json", "--soak", "25", "--source", str(media_dir / "fer_test.mp4"), "--size", "640x360"]
    assert main(args) == 0
    soak = json.loads(capsys.readouterr().out)
    assert soak["frames_sent"] > 500 and soak["rss_mb_end"] > 50
    assert abs(soak["rss_growth_pct"]) < 20 and soak["fps_end"] > 20


def test_bench_model_times_the_shipped_classifier(capsys):
    assert main(["bench", "--model", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"].endswith("fer_cnn.tflite")
    assert result["ms_per_face"] > 0 and result["load_s"] > 0 and result["file_mb"] > 0
    assert isinstance(result["meets_goals"], bool)


def test_bench_model_rejects_a_missing_file(tmp_path, capsys):
    assert main(["bench", "--model", str(tmp_path / "none.tflite")]) == 1
    assert "model file not found" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["evaluate", "models/fer_cnn.tflite"], "--data is required"),
        (["train", "--out", "runs/x"], "--data is required"),
    ],
)
def test_an_installed_fercam_never_guesses_paths_into_a_checkout(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where ../shared does not exist
    assert main(args) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args", [["run", "--max-frames", "-5"], ["run", "--fps", "0"], ["run", "--size", "0x0"], ["bench", "--faces", "0"]]
)
def test_option_values_out_of_range_are_usage_errors(args, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "expected a whole number" in err or "size must be between" in err


def test_the_performance_page_names_the_machine_and_marks_each_goal():
    from fercam.apps.bench.goals import SCENARIOS, START_GOALS, met
    from fercam.apps.bench.perfpage import machine, performance_page

    result = {
        "size": "1280x720",
        "faces": 1,
        "output_fps": 30.0,
        "latency_p95_ms": 4.0,
        "analysis_hz": 24.0,
        "emotion_refresh_hz_per_face": 12.0,
        "cpu_cores": 0.35,
        "first_frame_s": 0.3,
        "first_annotated_s": 0.4,
        "rss_mb": 160.0,
        "cpu_cores_by_stage": {"analysis": 0.12},
    }
    goals = {**SCENARIOS[0]["goals"], **START_GOALS}
    result["goals_met"] = {key: met(result[key], goal) for key, goal in goals.items()}
    assert result["goals_met"]["cpu_cores"] is False and result["goals_met"]["output_fps"] is True
    model = {"ms_per_face": 2.0, "file_mb": 1.2, "load_s": 0.01}
    page = performance_page([result], model, None, "fercam bench --matrix")
    assert machine().split(",")[0] in page and "| 1280x720 | 1 | 30.0 ✓ |" in page and "0.35 ✗" in page


def test_a_regenerated_performance_page_keeps_the_sections_it_did_not_measure():
    from fercam.apps.bench.perfpage import performance_page

    result = {"size": "1280x720", "faces": 1, "goals_met": {}, "cpu_cores_by_stage": {"analysis": 0.1}}
    result.update({key: 1.0 for key in ("output_fps", "latency_p95_ms", "analysis_hz", "cpu_cores", "rss_mb")})
    result.update({"emotion_refresh_hz_per_face": 12.0, "first_frame_s": 0.3, "first_annotated_s": 0.4})
    model = {"ms_per_face": 2.0, "file_mb": 1.2, "load_s": 0.01}
    old = performance_page([result], model, None, "old", "")
    old += "\n## Offline analysis, hand-kept\n\nmeasured by hand\n\n## Soak: 600 s at 1280x720, one face\n\nold soak\n"
    page = performance_page([result], model, None, "new", old)
    assert page.count("# Performance") == 1 and "`new`" in page and "`old`" not in page
    assert "measured by hand" in page and "old soak" in page  # no new soak: the last one stays
    soak = {"seconds": 60, "size": "1280x720", "frames_sent": 1800, "rss_mb_after_warmup": 160, "rss_mb_end": 161}
    soak.update({"rss_growth_pct": 0.6, "fps_start": 30.0, "fps_end": 29.9})
    page = performance_page([result], model, soak, "new", old)
    assert "measured by hand" in page and "old soak" not in page and "## Soak: 60 s" in page
