// The control page: preview, toggles, camera, detector, output, status and charts.
"use strict";
const $ = (id) => document.getElementById(id);
const TOGGLES = [["show_boxes", "Boxes"], ["show_labels", "Labels"], ["show_emoji", "Emoji"],
  ["show_probs", "Probabilities"], ["voice", "Voice"], ["mirror", "Mirror"], ["body_cues", "Body cues"],
  ["paused", "Pause overlays (plain video)"]];
const preview = { frames: 0, times: [] }; // read by the tests, shown as "fps here"
let state = null;
let chartSource = null; // the source the charts' faces were seen on

function showError(error) {
  const box = $("error");
  box.hidden = !error;
  box.textContent = error || "";
}

async function change(settings) {
  try {
    const data = await FERCAM.api("/api/settings", settings);
    render(data);
    if (data.pending) showError(data.pending); // a stream still opening: the video goes on meanwhile
  } catch (error) {
    showError(String(error.message || error));
  }
}

function render(data) {
  state = data;
  const s = data.settings;
  $("toggles").replaceChildren(...TOGGLES.map(([key, title]) => {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.id = "toggle-" + key;
    box.checked = s[key];
    box.onchange = () => change({ [key]: box.checked });
    const why = data.unavailable[key];
    box.disabled = Boolean(why) && !s[key];
    label.append(box, " " + title + (why ? " (" + why + ")" : ""));
    label.className = why ? "off" : "";
    return label;
  }));
  $("unsure-faces").value = s.unsure_faces;
  $("unsure-faces").onchange = () => change({ unsure_faces: $("unsure-faces").value });
  const source = data.status.source; // a --source file or URL shows as itself, never as "Camera 0"
  const webcam = (c) => /^\d+$/.test(c);
  // Only webcams that were found: a saved "0" on a machine without one is not offered as "Camera 0".
  const cameras = [...new Set([...data.cameras, ...(webcam(source) ? [] : [source])])];
  const options = cameras.map((c) => new Option(webcam(c) ? "Camera " + c : c, c));
  if (!data.cameras.length) options.unshift(Object.assign(new Option("No webcam found", ""), { disabled: true }));
  $("camera").replaceChildren(...options);
  $("camera").value = cameras.includes(source) ? source : "";
  $("detectors").replaceChildren(...Object.entries(data.detectors).map(([name, reason]) => {
    const label = document.createElement("label");
    const radio = document.createElement("input");
    Object.assign(radio, { type: "radio", name: "detector", value: name, checked: s.detector === name });
    radio.disabled = reason !== null;
    radio.onchange = () => change({ detector: name });
    label.append(radio, " " + name + (reason ? " (" + reason + ")" : ""));
    label.className = reason ? "off" : "";
    return label;
  }));
  for (const key of ["width", "height", "fps"]) if (document.activeElement !== $(key)) $(key).value = s[key];
  $("overlay-url").textContent = "OBS overlay: " + data.overlay_url;
  renderStatus(data.status);
}

function renderStatus(status) {
  const rows = { "Video": status.running ? status.fps + " fps" : "stopped", "Analysis": status.analysis_hz + " Hz",
    "Faces": status.faces, "Frames sent": status.frames_sent, "Source": status.source };
  $("status").replaceChildren(...Object.entries(rows).flatMap(([k, v]) => {
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = k;
    dd.textContent = v;
    return [dt, dd];
  }));
  $("state").textContent = status.error ? "analysis error" : status.running ? "running" : "stopped";
  $("state").className = "pill " + (status.running && !status.error ? "ok" : "bad");
  showError(status.error);
  $("notices").replaceChildren(...status.notices.map((text) => {
    const li = document.createElement("li");
    li.textContent = text;
    return li;
  }));
}

// Draw the newest JPEG only: while one decodes, later frames replace the waiting one.
let pending = null, decoding = false;
function showFrame(blob) {
  pending = blob;
  if (decoding) return;
  decoding = true;
  const next = pending;
  pending = null;
  createImageBitmap(next).then((bitmap) => {
    const canvas = $("preview");
    if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
      Object.assign(canvas, { width: bitmap.width, height: bitmap.height });
    }
    canvas.getContext("2d").drawImage(bitmap, 0, 0);
    bitmap.close();
    const now = performance.now();
    preview.frames += 1;
    preview.times = [...preview.times.filter((t) => now - t < 2000), now];
  }).catch(() => {}).finally(() => {
    decoding = false;
    if (pending) showFrame(pending);
  });
}

function onEvent(text) {
  const message = JSON.parse(text);
  if (message.type === "status") {
    if (chartSource !== null && chartSource !== message.source) Charts.reset(); // other faces: charts afresh
    chartSource = message.source;
    if (state) state.status = message;
    renderStatus(message);
  } else if (message.type === "analysis") {
    window.fercamLatest = message;
    Charts.add(message);
  }
}

async function start() {
  $("camera").onchange = () => change({ camera: $("camera").value });
  $("camera-form").onsubmit = (e) => { e.preventDefault(); change({ camera: $("camera-text").value.trim() }); };
  $("output-form").onsubmit = (e) => {
    e.preventDefault();
    change({ width: Number($("width").value), height: Number($("height").value), fps: Number($("fps").value) });
  };
  $("quit").onclick = async () => { await FERCAM.api("/api/quit", {}); document.body.textContent = "FER Cam quit."; };
  $("new-link").onclick = async () => { location.href = (await FERCAM.api("/api/link", {})).url; };
  $("copy-overlay").onclick = () => navigator.clipboard.writeText(state.overlay_url);
  try {
    render(await FERCAM.api("/api/state"));
  } catch (error) {
    document.body.textContent = "FER Cam: " + error.message;
    return;
  }
  FERCAM.socket("/ws/video", showFrame);
  FERCAM.socket("/ws/events", onEvent, (open, replaced) => {
    if (replaced) document.body.textContent = "FER Cam: " + replaced + ". Open the new link.";
  });
  setInterval(() => {
    $("preview-fps").textContent = Math.max(0, preview.times.length - 1) / 2;
    Charts.draw($("charts"));
  }, 500);
}

window.fercamPreview = preview;
start();
