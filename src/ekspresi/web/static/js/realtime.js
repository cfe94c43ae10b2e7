/* Real-time page: webcam -> JPEG frames (<= 640 px wide) over a WebSocket, at most ONE
   frame in flight (the next is captured only when the previous answer arrived), boxes and
   labels on an overlay canvas, a frames/s counter and a 30-second chart of each emotion. */
"use strict";

(() => {
  const E = Ekspresi;
  const MAX_WIDTH = 640;
  const JPEG_QUALITY = 0.8;
  const WINDOW_MS = 30000;

  const video = document.getElementById("video");
  const overlay = document.getElementById("overlay");
  const chart = document.getElementById("chart");
  const startBtn = document.getElementById("start");
  const pauseBtn = document.getElementById("pause");
  const fpsEl = document.getElementById("fps");
  const latencyEl = document.getElementById("latency");
  const countEl = document.getElementById("face-count");
  const statusEl = document.getElementById("rt-status");
  const facesList = document.getElementById("rt-faces");
  const placeholder = document.getElementById("video-placeholder");
  const grab = document.createElement("canvas");

  let stream = null;
  let ws = null;
  let paused = false;
  let inFlight = false;       // a frame is at the server: send nothing else
  let waitingForFrame = false; // waiting for the camera's next frame
  let frameScale = 1;          // video pixels per sent-frame pixel
  let answered = [];           // timestamps of answers, for frames/s
  let history = [];            // {t, scores} of the largest face
  let classes = [];
  let lastChart = 0;

  function setStatus(text) { statusEl.textContent = text; }

  function socketUrl() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    return `${proto}//${location.host}/api/v1/stream`;
  }

  function connect() {
    ws = new WebSocket(socketUrl());
    ws.binaryType = "arraybuffer";
    ws.onopen = () => { setStatus("Live."); inFlight = false; waitingForFrame = false; pump(); };
    ws.onmessage = (ev) => onAnswer(JSON.parse(ev.data));
    ws.onclose = () => {
      inFlight = false;
      if (stream) { setStatus("Connection lost, reconnecting…"); setTimeout(connect, 1000); }
    };
  }

  /* Send the next NEW camera frame: with requestVideoFrameCallback we never send the same
     frame twice, so frames/s counts real, distinct frames (at most the camera's rate). */
  function pump() {
    if (!stream || paused || inFlight || waitingForFrame || !ws || ws.readyState !== WebSocket.OPEN) return;
    if ("requestVideoFrameCallback" in video) {
      waitingForFrame = true;
      video.requestVideoFrameCallback(() => { waitingForFrame = false; capture(); });
    } else {
      capture();
    }
  }

  function capture() {
    if (!stream || paused || inFlight || !ws || ws.readyState !== WebSocket.OPEN) return;
    const vw = video.videoWidth, vh = video.videoHeight;
    if (!vw || !vh) { setTimeout(pump, 50); return; }
    const scale = Math.min(1, MAX_WIDTH / vw);
    grab.width = Math.round(vw * scale);
    grab.height = Math.round(vh * scale);
    grab.getContext("2d").drawImage(video, 0, 0, grab.width, grab.height);
    frameScale = 1 / scale;
    inFlight = true;
    grab.toBlob((blob) => {
      if (!blob || !ws || ws.readyState !== WebSocket.OPEN) { inFlight = false; return; }
      ws.send(blob);
    }, "image/jpeg", JPEG_QUALITY);
  }

  function largest(faces) {
    return faces.reduce((a, f) => (!a || f.box[2] * f.box[3] > a.box[2] * a.box[3] ? f : a), null);
  }

  function onAnswer(data) {
    inFlight = false;
    const now = performance.now();
    if (data.error) {
      setStatus("Server: " + data.error);
    } else {
      answered.push(now);
      answered = answered.filter((t) => now - t <= 2000);
      const span = answered.length > 1 ? (answered[answered.length - 1] - answered[0]) / 1000 : 0;
      fpsEl.textContent = span > 0 ? ((answered.length - 1) / span).toFixed(1) : "0.0";
      latencyEl.textContent = data.elapsed_ms.toFixed(0);
      drawOverlay(data.faces);
      const top = largest(data.faces);
      if (top) {
        if (!classes.length) { classes = Object.keys(top.scores); buildLegend(); }
        history.push({ t: now, scores: top.scores });
      }
      history = history.filter((h) => now - h.t <= WINDOW_MS);
      if (now - lastChart > 100) { drawChart(now); lastChart = now; }
    }
    if (!paused) setTimeout(pump, 0);
  }

  function drawOverlay(faces) {
    overlay.width = video.videoWidth;
    overlay.height = video.videoHeight;
    const ctx = overlay.getContext("2d");
    ctx.clearRect(0, 0, overlay.width, overlay.height);
    E.drawFaces(ctx, faces, frameScale);
    countEl.textContent = String(faces.length);
    overlay.dataset.faces = String(faces.length);
    facesList.replaceChildren(...faces.map((f, i) => {
      const li = E.el("li", { "data-emotion": f.label, text: `${i + 1}. ${f.label} ${Math.round(f.confidence * 100)}%` });
      return li;
    }));
  }

  function buildLegend() {
    const legend = document.getElementById("legend");
    legend.replaceChildren(...classes.map((c) => E.el("span", { "data-emotion": c, text: c })));
  }

  function drawChart(now) {
    const dpr = window.devicePixelRatio || 1;
    const cssW = chart.clientWidth || 560, cssH = Math.round(cssW * 0.46);
    if (chart.width !== Math.round(cssW * dpr)) {
      chart.width = Math.round(cssW * dpr);
      chart.height = Math.round(cssH * dpr);
    }
    const ctx = chart.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const W = cssW, H = cssH, left = 34, bottom = 20, top = 14, right = 8;
    const pw = W - left - right, ph = H - top - bottom;
    ctx.clearRect(0, 0, W, H);
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = "#62657a";
    ctx.strokeStyle = "#e3e5ee";
    ctx.lineWidth = 1;
    for (let v = 0; v <= 1.0001; v += 0.25) {
      const y = top + ph * (1 - v);
      ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(W - right, y); ctx.stroke();
      ctx.fillText(`${Math.round(v * 100)}%`, 2, y - 6);
    }
    for (let s = 0; s <= 30; s += 10) {
      const x = left + pw * (1 - s / 30);
      ctx.textAlign = s === 0 ? "right" : "center";
      ctx.fillText(s === 0 ? "now" : `-${s}s`, x, H - 14);
    }
    ctx.textAlign = "left";
    if (history.length < 2) return;
    ctx.lineWidth = 2;
    for (const c of classes) {
      ctx.strokeStyle = E.color(c);
      ctx.beginPath();
      history.forEach((h, i) => {
        const x = left + pw * (1 - (now - h.t) / WINDOW_MS);
        const y = top + ph * (1 - (h.scores[c] || 0));
        if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
      });
      ctx.stroke();
    }
  }

  async function start() {
    if (stream) { stop(); return; }
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      setStatus("This browser cannot use a camera here (a webcam needs https or localhost).");
      return;
    }
    setStatus("Asking for the camera…");
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
    } catch (err) {
      setStatus("No camera: " + err.message);
      stream = null;
      return;
    }
    video.srcObject = stream;
    await video.play();
    placeholder.hidden = true;
    startBtn.textContent = "Stop camera";
    pauseBtn.disabled = false;
    paused = false;
    connect();
  }

  function stop() {
    waitingForFrame = false;
    const s = stream;
    stream = null;
    if (ws) ws.close();
    ws = null;
    if (s) s.getTracks().forEach((t) => t.stop());
    video.srcObject = null;
    placeholder.hidden = false;
    startBtn.textContent = "Start camera";
    pauseBtn.disabled = true;
    pauseBtn.textContent = "Pause";
    fpsEl.textContent = "0.0";
    overlay.getContext("2d").clearRect(0, 0, overlay.width, overlay.height);
    setStatus("Camera off.");
  }

  function togglePause() {
    paused = !paused;
    pauseBtn.textContent = paused ? "Resume" : "Pause";
    setStatus(paused ? "Paused." : "Live.");
    if (paused) fpsEl.textContent = "0.0";
    else { answered = []; pump(); }
  }

  startBtn.addEventListener("click", start);
  pauseBtn.addEventListener("click", togglePause);
  drawChart(performance.now());
})();
