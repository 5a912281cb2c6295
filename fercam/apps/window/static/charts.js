// Per-face emotion charts over the last minute, drawn from the analysis stream.
"use strict";
const Charts = (() => {
  const WINDOW_MS = 60000;
  const history = new Map(); // face id -> [{t, probs}]
  let emotions = [];

  function add(message) {
    emotions = message.emotions;
    const now = Date.now();
    for (const face of message.faces) {
      if (!history.has(face.id)) history.set(face.id, []);
      history.get(face.id).push({ t: now, probs: face.probs });
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
    const canvas = document.createElement("canvas");
    box.append(title, canvas);
    container.append(box);
    return canvas;
  }

  function plot(canvas, points, now) {
    canvas.width = canvas.clientWidth || 600;
    canvas.height = canvas.clientHeight || 120;
    const ctx = canvas.getContext("2d");
    const x = (t) => canvas.width * (1 - (now - t) / WINDOW_MS);
    const y = (p) => canvas.height * (1 - p) - 1;
    emotions.forEach((name, k) => {
      ctx.strokeStyle = FERCAM.COLORS[name];
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      points.forEach((point, i) => (i ? ctx.lineTo : ctx.moveTo).call(ctx, x(point.t), y(point.probs[k])));
      ctx.stroke();
    });
  }

  function draw(container) {
    const now = Date.now();
    for (const box of container.querySelectorAll("[data-face]")) {
      if (!history.has(Number(box.dataset.face))) box.remove();
    }
    if (history.size) container.querySelector("p.hint")?.remove();
    for (const [id, points] of history) plot(chartFor(container, id), points, now);
  }

  // Another source: its faces are other people, whatever ids the new tracker gives them.
  function reset() {
    history.clear();
  }

  const oldest = () => Math.min(...[...history.values()].map((points) => points[0].t));
  return { add, draw, reset, faces: () => history.size, oldest };
})();
