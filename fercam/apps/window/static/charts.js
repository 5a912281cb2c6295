// Per-face emotion charts over the last minute, drawn from the analysis stream; while the voice is on, a strip
// under each face's lines shows its voice (the voice's emotion while that face spoke) and its legend the person.
"use strict";
const Charts = (() => {
  const WINDOW_MS = 60000;
  const SPEAKS = 0.5; // as fercam/speaking/heard.py
  const history = new Map(); // face id -> [{t, probs, voice}]
  let emotions = [];

  // While this face speaks: the voice's emotion ("unsure" where it names none) and the person's reading.
  function voiceOf(face, message) {
    if (!(face.speaking >= SPEAKS) || !message.voice) return null;
    return { emotion: message.voice.confidence === null ? "unsure" : message.voice.emotion, person: face.person };
  }

  function add(message) {
    emotions = message.emotions;
    const now = Date.now();
    for (const face of message.faces) {
      if (!history.has(face.id)) history.set(face.id, []);
      history.get(face.id).push({ t: now, probs: face.probs, voice: voiceOf(face, message) });
    }
    for (const [id, points] of history) {
      while (points.length && now - points[0].t > WINDOW_MS) points.shift();
      if (!points.length) history.delete(id);
    }
  }

  function chartFor(container, id) {
    let box = container.querySelector(`[data-face="${id}"]`);
    if (box) return box.querySelector("canvas");
    box = document.createElement("div");
    box.className = "chart";
    box.dataset.face = id;
    const title = document.createElement("div");
    title.className = "legend";
    title.append(`Face ${id}: `);
    for (const name of emotions) {
      const span = document.createElement("span");
      span.style.color = FERCAM.COLORS[name];
      span.textContent = name;
      title.append(span);
    }
    const voice = document.createElement("span");
    voice.className = "voice";
    title.append(voice);
    const canvas = document.createElement("canvas");
    box.append(title, canvas);
    container.append(box);
    return canvas;
  }

  // Axes in the canvas's own margins: probability 0-1 on the left, the last minute below ("now" at the right).
  const LEFT = 28;
  const BOTTOM = 14;

  function axes(ctx, width, height, x, y, now) {
    ctx.font = "10px sans-serif";
    ctx.fillStyle = ctx.strokeStyle = "#888";
    ctx.lineWidth = 0.5;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const p of [0, 0.5, 1]) {
      ctx.beginPath();
      ctx.moveTo(LEFT, y(p));
      ctx.lineTo(width, y(p));
      ctx.stroke();
      ctx.fillText(p.toFixed(1), LEFT - 3, Math.min(Math.max(y(p), 5), height - BOTTOM - 5));
    }
    ctx.textBaseline = "bottom";
    for (const [ago, text] of [[60000, "-60 s"], [30000, "-30 s"], [0, "now"]]) {
      ctx.textAlign = ago === WINDOW_MS ? "left" : ago === 0 ? "right" : "center";
      ctx.fillText(text, x(now - ago), height);
    }
  }

  function plot(canvas, points, now) {
    canvas.width = canvas.clientWidth || 600;
    canvas.height = canvas.clientHeight || 120;
    const ctx = canvas.getContext("2d");
    const x = (t) => LEFT + (canvas.width - LEFT) * (1 - (now - t) / WINDOW_MS);
    const y = (p) => (canvas.height - BOTTOM) * (1 - p) + 1;
    axes(ctx, canvas.width, canvas.height, x, y, now);
    emotions.forEach((name, k) => {
      ctx.strokeStyle = FERCAM.COLORS[name];
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      points.forEach((point, i) => (i ? ctx.lineTo : ctx.moveTo).call(ctx, x(point.t), y(point.probs[k])));
      ctx.stroke();
    });
    for (const point of points) { // the voice strip: when this face spoke, in the voice's colour
      if (!point.voice) continue;
      ctx.fillStyle = FERCAM.COLORS[point.voice.emotion] || "#ebebeb";
      ctx.fillRect(x(point.t), canvas.height - BOTTOM - 6, 3, 6);
    }
  }

  // The legend's voice: what this face's voice says while it speaks, with the person's reading (amber when the two
  // disagree); afterwards, when it last spoke and what its voice said then.
  function legend(box, points, now) {
    const span = box.querySelector(".voice");
    const last = points.findLast((point) => point.voice);
    const person = last && last.voice.person;
    const speaking = last && last === points[points.length - 1];
    const said = last ? "voice " + last.voice.emotion + (person ? " \u2013 " + person.label : "") : "";
    const ago = last ? Math.round((now - last.t) / 1000) : 0;
    span.textContent = !last ? "" : speaking ? "speaking, " + said : "spoke " + ago + " s ago, " + said;
    span.style.color = speaking && person && person.disagree ? "#ffb000" : "";
  }

  function draw(container) {
    const now = Date.now();
    for (const box of container.querySelectorAll("[data-face]")) {
      if (!history.has(Number(box.dataset.face))) box.remove();
    }
    if (history.size) container.querySelector("p.hint")?.remove();
    for (const [id, points] of history) {
      const canvas = chartFor(container, id);
      plot(canvas, points, now);
      legend(canvas.parentElement, points, now);
    }
  }

  // Another source: its faces are other people, whatever ids the new tracker gives them.
  function reset() {
    history.clear();
  }

  const oldest = () => Math.min(...[...history.values()].map((points) => points[0].t));
  return { add, draw, reset, faces: () => history.size, oldest };
})();
