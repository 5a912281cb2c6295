"""The handlers behind each `fercam` subcommand; they print for humans and return exit codes.

`fercam train` and `fercam evaluate` are in `fercam.apps.model_commands`.
"""

from __future__ import annotations

import json
import sys

from fercam.defaults import DEFAULT_PORT
from fercam.settings import Settings, SettingsStore, default_settings_path


def _settings(args, *, saved: bool = True) -> Settings:
    """This run's command-line choices on top of the saved settings (tray) or the defaults (headless)."""
    settings = SettingsStore(default_settings_path()).get() if saved else Settings()
    changes = {"detector": getattr(args, "detector", None), "fps": getattr(args, "fps", None)}
    if getattr(args, "size", None):
        changes["width"], changes["height"] = args.size
    if getattr(args, "mirror", False):
        changes["mirror"] = True
    return settings.replace(**{k: v for k, v in changes.items() if v is not None})


def _notify(message: str) -> None:
    print(f"fercam: {message}", file=sys.stderr)


def run(args) -> int:
    from fercam.apps.headless import choose_mode, run_headless
    from fercam.devices import has_display
    from fercam.pipeline import Mode

    headless = args.no_tray or not has_display()
    settings = _settings(args, saved=not headless)
    source = args.source or settings.camera
    if args.microphone:
        _check_microphone(args, headless)
        settings = settings.replace(voice=True)
    if args.serve and headless:
        store = SettingsStore(initial=settings)
        return _serve(store, source, args.sink, args.vcam_backend, args.port, microphone=args.microphone)
    if not headless:
        store = SettingsStore(default_settings_path(), initial=settings)
        return _run_tray(store, source, args.sink, args.vcam_backend, args.port)
    _check_outputs(source, args.sink, args.events, args.overwrite)
    mode = Mode(args.mode) if args.mode else Mode.LIVE if args.microphone else choose_mode(source, args.sink)
    if mode is Mode.LIVE:
        size, rate = f"{settings.width}x{settings.height}", f"{settings.fps} fps"
    else:  # every frame of the source into a file: its own rate, and its size unless --size
        size, rate = _file_size(args.size) if args.size else "the source's size", "the source's rate"
        if args.fps:
            _notify(f"--fps {args.fps} is not used here: a file keeps the source's rate (every frame is written)")
    mirror = "on" if settings.mirror else "off"
    print(f"{source} -> {args.sink}: {size} at {rate}, detector {settings.detector}, mirror {mirror}")
    frames = run_headless(
        source,
        args.sink,
        settings,
        mode=mode,
        max_frames=args.max_frames,
        events=args.events,
        vcam_backend=args.vcam_backend,
        overwrite=args.overwrite,
        size=args.size,
        notify=_notify,
        microphone=args.microphone,
    )
    print(f"{frames} frames from {source} -> {args.sink}")
    return 0


def _check_microphone(args, headless: bool) -> None:
    """`--microphone CLIP`: a recording with sound, heard live, without the tray (which keeps the user's settings)."""
    from fercam.voice.clip_microphone import check_clip

    if not headless:
        raise ValueError("--microphone needs --no-tray (with or without --serve)")
    if args.mode and args.mode != "live":
        raise ValueError(f"--microphone is heard in real time: it needs --mode live, not --mode {args.mode}")
    check_clip(args.microphone)


def _file_size(size: tuple[int, int]) -> str:
    """The size a video file gets for `--size`, as it will be: H.264 (yuv420p) takes even sides only."""
    width, height = (side - side % 2 for side in size)
    return f"{width}x{height}" + ("" if (width, height) == tuple(size) else " (H.264 needs even sides)")


def _check_outputs(source: str, sink: str, events: str | None, overwrite: bool) -> None:
    """Refuse outputs that are the input (also through links or another path), each other, or already there."""
    from fercam.apps.analyze.outputs import check_outputs
    from fercam.sinks import sink_parts

    files = [part[5:] for part in sink_parts(sink) if part.startswith("file:")]
    check_outputs([source], files + ([events] if events else []), overwrite=overwrite)


def tray(_args) -> int:
    from fercam.devices import has_display

    if _open_running_window():  # one FER Cam per user: a second `fercam` shows the first one's window
        return 0
    if not has_display():
        raise RuntimeError(
            "no display for the tray icon; run headless: fercam run --no-tray --source 0 --sink virtualcam"
        )
    return _run_tray(SettingsStore(default_settings_path()), None, "virtualcam", None, DEFAULT_PORT)


def _refuse_highgui(sink: str) -> None:
    """The tray and the server own the main thread, and OpenCV windows may only live there."""
    from fercam.sinks import sink_parts

    if "window" in sink_parts(sink):
        raise ValueError("--sink window needs --no-tray (without --serve); the FER Cam window shows the video")


def _run_tray(store: SettingsStore, source: str | None, sink: str, vcam_backend: str | None, port: int) -> int:
    _refuse_highgui(sink)
    from fercam.apps.app import App, microphone_problem
    from fercam.apps.tray.tray import Tray
    from fercam.apps.window.run import detector_choices, start_window
    from fercam.sources import list_cameras

    cameras = list_cameras()
    app = App(store, sink_spec=sink, vcam_backend=vcam_backend, source_spec=source, notify=_notify)
    tray = Tray(app, store, cameras=cameras, detectors=detector_choices(), voice_problem=microphone_problem())
    server = start_window(app, quit=tray.quit, cameras=cameras, port=port)
    print(f"FER Cam window: {server.url}", flush=True)
    tray.window_link, tray.on_stuck = server.launch_url, server.stop
    app.open_window = tray.open_window
    try:
        tray.run()
    finally:
        app.stop()  # every output file finished before we exit
        server.stop()
    return 0


def _serve(
    store: SettingsStore,
    source: str | None,
    sink: str,
    vcam_backend: str | None,
    port: int,
    *,
    open_now: bool = False,
    microphone: str | None = None,
) -> int:
    """FER Cam without a tray: the window is the whole interface (`run --serve`, `fercam window`)."""
    import threading

    from fercam.apps.app import App
    from fercam.apps.tray.tray import open_page
    from fercam.apps.window.run import serve_until_quit, start_window
    from fercam.source_specs import is_camera_index
    from fercam.sources import list_cameras

    _refuse_highgui(sink)
    done = threading.Event()
    app = App(
        store, sink_spec=sink, vcam_backend=vcam_backend, source_spec=source, notify=_notify, microphone=microphone
    )
    cameras = list_cameras() if source is None or is_camera_index(source) else []
    server = start_window(app, quit=done.set, cameras=cameras, port=port)
    print(f"FER Cam window: {server.url}", flush=True)
    app.open_window = lambda: None if open_now else open_page(server.launch_url())
    if open_now:
        open_page(server.launch_url())  # a one-time code on the browser's command line, never the token
    return serve_until_quit(app, server, done)


def _open_running_window() -> bool:
    """Opens the window of the FER Cam already running for this user, if one is: True then."""
    import webbrowser

    from fercam.apps.window.run import running_window_url

    url = running_window_url()  # a one-time launch link: the browser's command line never shows the token
    if url:
        print(f"FER Cam is already running: opening its window ({url.split('/launch/')[0]})", flush=True)
        webbrowser.open(url)
    return url is not None


def window(args) -> int:
    """Opens the window of the FER Cam already running, or starts FER Cam with the window as its interface."""
    if _open_running_window():
        return 0
    store = SettingsStore(default_settings_path())
    return _serve(store, None, "virtualcam", args.vcam_backend, args.port, open_now=True)


def devices(_args) -> int:
    from fercam.devices import CAMERA_NAME, driver_fix, probe_webcams, video_devices

    cameras = probe_webcams()
    print("webcams:", ", ".join(f"camera {i} ({size})" for i, size in cameras.items()) if cameras else "none found")
    found = video_devices()
    for device in found:
        mark = "  <- FER Cam output" if device.name == CAMERA_NAME else ""
        print(f"video device {device.node}: {device.name}{mark}")
    if sys.platform.startswith("linux") and CAMERA_NAME not in {d.name for d in found}:
        print(f'virtual camera "{CAMERA_NAME}": not found; fix: {driver_fix()}')
    return 0


def doctor(args) -> int:
    from fercam.apps.doctor import run_doctor

    return run_doctor(vcam_backend=args.vcam_backend)


def analyze(args) -> int:
    from fercam.apps.analyze.results import Options

    options = Options(every=args.every, duration=args.duration, video=not args.no_video, detector=args.detector)
    if args.cluster:
        from fercam.apps.analyze.cluster import analyze_on_cluster

        results = analyze_on_cluster(
            args.inputs, args.out, address=args.cluster, jobs=args.jobs, task_cpus=args.task_cpus, options=options
        )
    else:
        from fercam.apps.analyze.analyze import analyze_inputs

        results = analyze_inputs(args.inputs, args.out, options, jobs=args.jobs)
    for r in results:
        if r.error:
            print(f"fercam: failed {r.input}: {r.error}", file=sys.stderr)
        else:
            print(f"{r.input}: {r.summary_line()}")
    failed = sum(bool(r.error) for r in results)
    if len(results) > 1:
        print(f"{len(results) - failed} of {len(results)} inputs analysed, {failed} failed")
    if any(r.interrupted for r in results):
        from fercam.apps.stopping import exit_code

        return exit_code()  # as for Ctrl-C (130) or SIGTERM (143) anywhere else: the outputs hold what was done
    return 1 if failed else 0


def bench(args) -> int:
    from fercam.apps.bench import bench as live

    if args.report and not args.matrix:
        raise ValueError("--report writes the results of --matrix: add --matrix")

    if args.voice is not None or args.model is not None:
        return live.print_model_bench(args.voice, args.model, as_json=args.json)
    if args.analyze:
        from fercam.apps.bench.stages import print_analyze_profile

        return print_analyze_profile(args.analyze, args.detector, as_json=args.json)
    source = args.source
    if not source:
        source, which = live.default_source()
        print(f"fercam bench: {which}", file=sys.stderr)  # stdout stays one JSON object with --json
    if args.microphone:
        from fercam.voice.clip_microphone import check_clip

        check_clip(args.microphone)
    config = live.BenchConfig(
        source, args.size, args.faces, args.detector, args.seconds, compare=args.compare, microphone=args.microphone
    )
    soak = live.run_soak(config.__class__(**{**config.__dict__, "seconds": args.soak})) if args.soak else None
    if args.matrix:
        return live.print_matrix(source, args.seconds, soak, report=args.report, as_json=args.json)
    result = soak if soak else live.run_bench(config)
    print(json.dumps(result) if args.json or soak else live.format_report(result))
    return 0
