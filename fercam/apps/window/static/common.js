// Shared by the control and overlay pages: the token, the API and self-healing sockets.
"use strict";
const FERCAM = (() => {
  const token = new URLSearchParams(location.search).get("token") || "";
  const query = token ? "?token=" + encodeURIComponent(token) : "";
  const COLORS = { angry: "#e5484d", disgust: "#46a758", fear: "#8e4ec6", happy: "#f5d90a",
                   sad: "#3e63dd", surprise: "#f76b15", neutral: "#9ba1a6" };

  async function api(path, body) {
    const options = body === undefined ? {} :
      { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
    const response = await fetch(path + query, options);
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || response.statusText);
    return data;
  }

  // A socket that reconnects after a second whenever it drops (FER Cam restarting, a laptop waking up).
  function socket(path, onMessage, onState) {
    const ws = new WebSocket("ws://" + location.host + path + query);
    ws.binaryType = "blob";
    ws.onopen = () => onState && onState(true);
    ws.onmessage = (event) => onMessage(event.data);
    ws.onclose = () => { onState && onState(false); setTimeout(() => socket(path, onMessage, onState), 1000); };
  }

  return { api, socket, COLORS };
})();
