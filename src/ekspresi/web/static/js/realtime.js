/* Real-time page: webcam -> JPEG frames (<= 640 px wide) over a WebSocket, at most ONE
   frame in flight (the next is captured only when the previous answer arrived), numbered
   boxes and labels on an overlay canvas (the same numbers as the chips below the video), a
   frames/s counter and a 30-second chart of each emotion that breaks its lines where the
   stream paused or no face was seen. A camera selector, a mirror toggle, and the whole
   session (every answer since "Start camera") as a CSV download.
   Each frame goes with its capture time ({"time": s} before the JPEG) and the server
   follows the faces: boxes and chips carry each face's track number (the same person
   keeps it), and its label is the track's smoothed one unless "Smooth labels" is off
   (remembered), which shows each frame's own answer (raw_scores). */
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
  const cameraSelect = document.getElementById("camera");
  const mirrorBox = document.getElementById("mirror");
  const smoothBox = document.getElementById("smooth");
  const csvBtn = document.getElementById("download-session");
  const MAX_SESSION_ROWS = 200000;

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
  let session = [];            // every answer since Start: {t, frame, faces}
  let sessionStart = 0;
  let lastFaces = [];          // the latest answer's faces as sent, by track number

  function setStatus(text) { statusEl.textContent = text; }

  function socketUrl() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    return `${proto}//${location.host}/api/v1/stream`;
  }

  function connect() {
    ws = new WebSocket(socketUrl());
    ws.binaryType = "arraybuffer";
    ws.onopen = () => { setStatus(E.t("js.rt.live")); inFlight = false; waitingForFrame = false; pump(); };
    ws.onmessage = (ev) => onAnswer(JSON.parse(ev.data));
    ws.onclose = () => {
      inFlight = false;
      if (stream) { setStatus(E.t("js.rt.reconnecting")); setTimeout(connect, 1000); }
    };
  }

  /* Send the next NEW camera frame: with requestVideoFrameCallback we never send the same
     frame twice, so frames/s counts real, distinct frames (at most the camera's rate). */
  function pump() {
    if (!stream || paused || inFlight || waitingForFrame || !ws || ws.readyState !== WebSocket.OPEN) return;
    if ("requestVideoFrameCallback" in video) {
      waitingForFrame = true;
      video.requestVideoFrameCallback((now, meta) => {
        waitingForFrame = false;
        capture((meta && (meta.captureTime || meta.expectedDisplayTime)) || now);
      });
    } else {
      capture(performance.now());
    }
  }

  /* `when`: the frame's capture time (ms, performance.now()'s clock): the server smooths
     over these times, so a frame the camera or the network dropped does not count. */
  function capture(when) {
    if (!stream || paused || inFlight || !ws || ws.readyState !== WebSocket.OPEN) return;
    const vw = video.videoWidth, vh = video.videoHeight;
    if (!vw || !vh) { setTimeout(pump, 50); return; }
    const t = (when || performance.now()) / 1000;
    const scale = Math.min(1, MAX_WIDTH / vw);
    grab.width = Math.round(vw * scale);
    grab.height = Math.round(vh * scale);
    grab.getContext("2d").drawImage(video, 0, 0, grab.width, grab.height);
    frameScale = 1 / scale;
    inFlight = true;
    grab.toBlob((blob) => {
      if (!blob || !ws || ws.readyState !== WebSocket.OPEN) { inFlight = false; return; }
      ws.send(JSON.stringify({ time: t }));
      ws.send(blob);
    }, "image/jpeg", JPEG_QUALITY);
  }

  function largest(faces) {
    return faces.reduce((a, f) => (!a || f.box[2] * f.box[3] > a.box[2] * a.box[3] ? f : a), null);
  }

  /* The face as the page shows it: the track's smoothed scores, or with "Smooth labels"
     off this frame's own (raw_scores, sent while the server smooths). */
  function shown(face) {
    if (smoothBox.checked || !face.raw_scores) return face;
    const scores = face.raw_scores;
    const top = Object.keys(scores).reduce((a, b) => (scores[a] >= scores[b] ? a : b));
    return { ...face, scores, label: top, confidence: scores[top] };
  }

  function onAnswer(data) {
    inFlight = false;
    const now = performance.now();
    if (data.error) {
      setStatus(E.t("js.rt.server_error", { why: data.error }));
    } else {
      answered.push(now);
      answered = answered.filter((t) => now - t <= 2000);
      const span = answered.length > 1 ? (answered[answered.length - 1] - answered[0]) / 1000 : 0;
      fpsEl.textContent = span > 0 ? ((answered.length - 1) / span).toFixed(1) : "0.0";
      latencyEl.textContent = data.elapsed_ms.toFixed(0);
      // listed by track number, so each person's chip keeps its place
      lastFaces = [...data.faces].sort((a, b) => (a.track_id || 0) - (b.track_id || 0));
      const faces = lastFaces.map(shown);
      drawOverlay(faces);
      const top = largest(faces);
      const last = history[history.length - 1];
      if (last && !last.gap && now - last.t > 1500) markGap(last.t);  // the stream stalled
      if (top) {
        if (!classes.length) { classes = Object.keys(top.scores); buildLegend(); }
        history.push({ t: now, scores: top.scores });
      } else {
        markGap(now);
      }
      if (session.length < MAX_SESSION_ROWS) session.push({ t: now, frame: data.frame, faces });
      csvBtn.disabled = false;
      history = history.filter((h) => now - h.t <= WINDOW_MS);
      if (now - lastChart > 100) { drawChart(now); lastChart = now; }
    }
    if (!paused) setTimeout(pump, 0);
  }

  /* The picture box takes the camera's own shape, so video and boxes fill it exactly. */
  video.addEventListener("loadedmetadata", () => {
    if (video.videoWidth && video.videoHeight) {
      document.getElementById("video-wrap").style.aspectRatio = `${video.videoWidth} / ${video.videoHeight}`;
    }
  });

  function drawOverlay(faces) {
    overlay.width = video.videoWidth;
    overlay.height = video.videoHeight;
    const ctx = overlay.getContext("2d");
    ctx.clearRect(0, 0, overlay.width, overlay.height);
    const numbers = faces.map((f, i) => f.track_id || i + 1);   // the track's number
    E.drawFaces(ctx, faces, frameScale, { numbers, mirror: mirrorBox.checked });
    countEl.textContent = String(faces.length);
    overlay.dataset.faces = String(faces.length);
    overlay.dataset.tracks = JSON.stringify(numbers);
    overlay.dataset.mirror = String(mirrorBox.checked);
    facesList.replaceChildren(...faces.map((f, i) => {
      const li = E.el("li", { "data-emotion": f.label, "data-track": String(numbers[i]), text: E.tag(f, numbers[i]) });
      return li;
    }));
  }

  function buildLegend() {
    const legend = document.getElementById("legend");
    legend.replaceChildren(...classes.map((c) => E.el("span", { "data-emotion": c, text: E.label(c) })));
  }

  function drawChart(now) {
    E.lineChart(chart, history.map((h) => (h.gap ? h : { x: h.t, scores: h.scores })), classes, {
      from: now - WINDOW_MS, to: now,
      ticks: [30, 20, 10, 0].map((sec) => ({ x: now - sec * 1000, label: sec ? E.t("js.rt.seconds_ago", { s: sec }) : E.t("js.rt.now") })),
    });
  }

  /* A break in the chart's lines: paused, stopped, or no face in the frame. */
  function markGap(t) {
    const last = history[history.length - 1];
    if (last && !last.gap) history.push({ t, gap: true });
  }

  function clearLive() {
    fpsEl.textContent = "–";
    latencyEl.textContent = "–";
    countEl.textContent = "–";
    facesList.replaceChildren();
    overlay.getContext("2d").clearRect(0, 0, overlay.width, overlay.height);
    overlay.dataset.faces = "0";
    lastFaces = [];
    answered = [];
  }

  /* Every answer of the session, one row per face (a frame without faces gets one row),
     seconds since "Start camera". */
  function sessionCsv() {
    const first = session.find((a) => a.faces.length);
    const cls = first ? Object.keys(first.faces[0].scores) : classes;
    const rows = [["time_s", "frame", "face", "track", "x", "y", "w", "h", "label", "confidence",
      ...cls.map((c) => "p_" + c)]];
    for (const a of session) {
      const t = ((a.t - sessionStart) / 1000).toFixed(3);
      if (!a.faces.length) rows.push([t, a.frame, "", "", "", "", "", "", "", "", ...cls.map(() => "")]);
      a.faces.forEach((f, i) => rows.push([t, a.frame, i + 1, f.track_id || "", ...f.box, f.label, f.confidence.toFixed(6),
        ...cls.map((c) => (f.scores[c] || 0).toFixed(6))]));
    }
    return E.csvText(rows);
  }

  async function start() {
    if (stream) { stop(); return; }
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      setStatus(E.t("js.rt.no_camera_api"));
      return;
    }
    setStatus(E.t("js.rt.asking"));
    try {
      stream = await openCamera(cameraSelect.value);
    } catch (err) {
      setStatus(E.t("js.rt.no_camera", { why: err.message }));
      stream = null;
      return;
    }
    await listCameras();
    session = [];
    sessionStart = performance.now();
    history = [];
    csvBtn.disabled = true;
    video.srcObject = stream;
    await video.play();
    placeholder.hidden = true;
    startBtn.textContent = E.t("js.rt.stop");
    pauseBtn.disabled = false;
    paused = false;
    connect();
  }

  function openCamera(deviceId) {
    /* Only a width is asked for: the camera keeps its own aspect ratio (a 16:9 camera
       asked for 640x480 was cropped to 4:3 and faces at its edges were lost). Frames are
       scaled down to MAX_WIDTH before they are sent. */
    const video = { width: { ideal: 1280 } };
    if (deviceId) video.deviceId = { exact: deviceId };
    return navigator.mediaDevices.getUserMedia({ video, audio: false });
  }

  /* Labels of the cameras are readable only once the user allowed one: list them then. */
  async function listCameras() {
    let cams = [];
    try {
      cams = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "videoinput");
    } catch (_) { return; }
    const active = stream && stream.getVideoTracks()[0] ? stream.getVideoTracks()[0].getSettings().deviceId : "";
    cameraSelect.replaceChildren(...cams.map((d, i) => {
      const o = E.el("option", { value: d.deviceId, text: d.label || E.t("js.rt.camera_n", { n: i + 1 }) });
      if (d.deviceId === active) o.selected = true;
      return o;
    }));
    cameraSelect.disabled = cams.length < 2;
    cameraSelect.closest(".camera-choice").hidden = cams.length === 0;
  }

  async function switchCamera() {
    if (!stream) return;
    let next;
    try {
      next = await openCamera(cameraSelect.value);
    } catch (err) {
      setStatus(E.t("js.rt.camera_failed", { why: err.message }));
      return;
    }
    stream.getTracks().forEach((t) => t.stop());
    stream = next;
    video.srcObject = stream;
    await video.play();
    markGap(performance.now());
  }

  function applyMirror() {
    video.classList.toggle("mirrored", mirrorBox.checked);
    try { localStorage.setItem("ekspresi.mirror", mirrorBox.checked ? "1" : "0"); } catch (_) { /* private mode */ }
  }

  function applySmooth() {
    try { localStorage.setItem("ekspresi.smooth", smoothBox.checked ? "1" : "0"); } catch (_) { /* private mode */ }
    if (stream && lastFaces.length) drawOverlay(lastFaces.map(shown));
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
    startBtn.textContent = E.t("js.rt.start");
    pauseBtn.disabled = true;
    pauseBtn.textContent = E.t("js.rt.pause");
    markGap(performance.now());
    clearLive();
    setStatus(E.t("js.rt.off"));
  }

  function togglePause() {
    paused = !paused;
    pauseBtn.textContent = E.t(paused ? "js.rt.resume" : "js.rt.pause");
    setStatus(E.t(paused ? "js.rt.paused" : "js.rt.live"));
    if (paused) { fpsEl.textContent = "0.0"; markGap(performance.now()); }
    else { answered = []; pump(); }
  }

  startBtn.addEventListener("click", start);
  pauseBtn.addEventListener("click", togglePause);
  cameraSelect.addEventListener("change", switchCamera);
  try { mirrorBox.checked = localStorage.getItem("ekspresi.mirror") === "1"; } catch (_) { /* private mode */ }
  applyMirror();
  mirrorBox.addEventListener("change", applyMirror);
  try { smoothBox.checked = localStorage.getItem("ekspresi.smooth") !== "0"; } catch (_) { /* private mode */ }
  smoothBox.addEventListener("change", applySmooth);
  csvBtn.addEventListener("click", () => {
    if (!session.length) return;
    const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-");
    E.download(new Blob([sessionCsv()], { type: "text/csv" }), `ekspresi-session-${stamp}.csv`);
  });
  setInterval(() => { if ((!stream || paused) && history.length) drawChart(performance.now()); }, 1000);
  drawChart(performance.now());
})();
