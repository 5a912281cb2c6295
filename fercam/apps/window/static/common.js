// Shared by the control and overlay pages: the token, the API and self-healing sockets.
// The token comes from the link the page was opened with (?token=...) and stays in this page's memory: it goes
// out in a header with each request and in the query of each socket, never in a cookie (cookies reach every
// port of 127.0.0.1, so any other local server would receive them).
"use strict";
const FERCAM = (() => {
  const token = new URLSearchParams(location.search).get("token") || "";
  const REPLACED = 1008; // the server closes sockets with this code when "New link" replaced their token
  const COLORS = { angry: "#e5484d", disgust: "#46a758", fear: "#8e4ec6", happy: "#f5d90a",
                   sad: "#3e63dd", surprise: "#f76b15", neutral: "#9ba1a6" };

  async function api(path, body) {
    const headers = { "X-FerCam-Token": token };
    const options = body === undefined ? { headers } :
      { method: "POST", headers: { ...headers, "Content-Type": "application/json" }, body: JSON.stringify(body) };
    const response = await fetch(path, options);
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || response.statusText);
    return data;
  }

  // A socket that reconnects after a second whenever it drops (FER Cam restarting, a laptop waking up),
  // unless its link was replaced: then only the new link works.
  function socket(path, onMessage, onState) {
    const ws = new WebSocket("ws://" + location.host + path + "?token=" + encodeURIComponent(token));
    ws.binaryType = "blob";
    ws.onopen = () => onState && onState(true);
    ws.onmessage = (event) => onMessage(event.data);
    ws.onclose = (event) => {
      onState && onState(false, event.code === REPLACED ? event.reason : "");
      if (event.code !== REPLACED) setTimeout(() => socket(path, onMessage, onState), 1000);
    };
  }

  return { api, socket, COLORS };
})();
