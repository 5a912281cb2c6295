// The OBS overlay: boxes, labels and emoji for the faces FER Cam sees, on a transparent page.
// Boxes arrive in the analysed image's pixels; the page stands for the camera picture, letterboxed
// like the "FER Cam" output, so the layer lines up with the video at any Browser Source size.
"use strict";
const STALE_MS = 1000;
const UNSURE_COLOR = "#ebebeb";
const SPEAKS = 0.5; // a face's speaking probability from which it is shown speaking (fercam/speaking/heard.py)
const MARK_COLOR = "#78e678", AMBER = "#ffb000";
const canvas = document.getElementById("overlay");
const emoji = {};
let latest = null, receivedAt = 0;
let labels = []; // the label tabs last drawn, [x, y, width, height] each
let marks = []; // the speaking marks last drawn, {id, rect: [x, y, width, height], text}
let show = { show_boxes: true, show_labels: true, show_emoji: true, unsure_faces: "unsure" };

function emojiImage(name) {
  if (!emoji[name]) {
    emoji[name] = new Image();
    emoji[name].src = "/emoji/" + name + ".png";
  }
  return emoji[name];
}

function draw() {
  const ctx = canvas.getContext("2d");
  canvas.width = innerWidth;
  canvas.height = innerHeight;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  labels = [];
  marks = [];
  if (!latest || performance.now() - receivedAt > STALE_MS) return;
  const [w, h] = latest.size;
  const scale = Math.min(canvas.width / w, canvas.height / h);
  const dx = (canvas.width - w * scale) / 2, dy = (canvas.height - h * scale) / 2;
  for (const face of latest.faces) {
    const [x1, y1, x2, y2] = face.box.map((v, i) => v * scale + (i % 2 ? dy : dx));
    const unsure = face.unsure && show.unsure_faces === "unsure"; // the user's "Show unsure faces as"
    const color = unsure ? UNSURE_COLOR : FERCAM.COLORS[face.emotion];
    const size = Math.max(12, (x2 - x1) / 7);
    if (show.show_boxes) {
      ctx.lineWidth = Math.max(2, size / 5);
      ctx.strokeStyle = color;
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    }
    if (show.show_labels) {
      const text = unsure ? "unsure" : face.emotion + " " + Math.round(face.confidence * 100) + "%";
      ctx.font = "bold " + size + "px system-ui, sans-serif";
      const tab = [x1, y1 - size * 1.4, ctx.measureText(text).width + size * 0.6, size * 1.4];
      if (tab[1] < 0) tab[1] = Math.max(0, y1); // a face at the top edge: the tab inside its box, never cut
      tab[0] = Math.max(0, Math.min(tab[0], canvas.width - tab[2]));
      ctx.fillStyle = "rgba(0, 0, 0, 0.6)";
      ctx.fillRect(...tab);
      ctx.fillStyle = color;
      ctx.fillText(text, tab[0] + size * 0.3, tab[1] + size * 1.05);
      labels.push(tab);
    }
    const image = emojiImage(face.emotion);
    if (show.show_emoji && !unsure && image.complete && image.naturalWidth) {
      const side = (x2 - x1) / 3;
      const left = x2 + side * 1.1 > canvas.width ? x1 - side * 1.1 : x2 + side * 0.1; // the side with room
      ctx.drawImage(image, left, y1, side, side); // beside the box, clear of the label
    }
    if (face.speaking >= SPEAKS) drawSpeaking(ctx, face, x1, y1, size);
  }
  if (latest.voice && latest.voice.off_screen) drawOffScreen(ctx, latest.voice);
}

// A sound-wave glyph `size` across at (x, y): a dot and two arcs opening to the right.
function drawMark(ctx, x, y, size) {
  const ox = x + size * 0.2, oy = y + size / 2;
  ctx.strokeStyle = ctx.fillStyle = MARK_COLOR;
  ctx.lineWidth = Math.max(1.5, size / 10);
  ctx.beginPath();
  ctx.arc(ox, oy, size / 9, 0, 2 * Math.PI);
  ctx.fill();
  for (const r of [size / 3, (2 * size) / 3]) {
    ctx.beginPath();
    ctx.arc(ox, oy, r, -Math.PI / 4, Math.PI / 4);
    ctx.stroke();
  }
}

// The face that speaks: the mark and the person's reading (face and voice pooled) above its label.
function drawSpeaking(ctx, face, x1, y1, size) {
  const text = face.person ? face.person.label : "speaking";
  ctx.font = "bold " + size + "px system-ui, sans-serif";
  const h = size * 1.4, w = h + ctx.measureText(text).width + size * 0.6;
  const rect = [Math.max(0, Math.min(x1, canvas.width - w)), Math.max(0, y1 - h * (show.show_labels ? 2 : 1)), w, h];
  ctx.fillStyle = "rgba(0, 0, 0, 0.6)";
  ctx.fillRect(...rect);
  drawMark(ctx, rect[0] + size * 0.2, rect[1] + (h - size) / 2, size);
  ctx.fillStyle = face.person && face.person.disagree ? AMBER : "#e8e8e8";
  ctx.fillText(text, rect[0] + h, rect[1] + size * 1.05);
  marks.push({ id: face.id, rect, text });
}

// A voice that no visible face matches: said in the top-left corner.
function drawOffScreen(ctx, voice) {
  const size = Math.max(12, canvas.height / 30);
  const named = voice.confidence === null ? voice.emotion || "" : voice.emotion + " " + Math.round(voice.confidence * 100) + "%";
  const text = "voice (off screen)" + (named ? ": " + named : "");
  ctx.font = "bold " + size + "px system-ui, sans-serif";
  const rect = [4, 4, ctx.measureText(text).width + size * 0.8, size * 1.4];
  ctx.fillStyle = "rgba(0, 0, 0, 0.6)";
  ctx.fillRect(...rect);
  ctx.fillStyle = "#e8e8e8";
  ctx.fillText(text, rect[0] + size * 0.4, rect[1] + size * 1.05);
  marks.push({ id: null, rect, text });
}

FERCAM.socket("/ws/events", (text) => {
  const message = JSON.parse(text);
  if (message.type === "analysis") {
    latest = message;
    receivedAt = performance.now();
    requestAnimationFrame(draw);
  } else if (message.type === "status" && message.settings) {
    show = message.settings;
  }
});
setInterval(draw, 250); // clears the layer when the analyses stop
window.fercamOverlay = { last: () => latest, settings: () => show, labels: () => labels, marks: () => marks };
