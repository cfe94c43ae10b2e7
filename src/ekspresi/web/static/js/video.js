/* Video page: upload one clip to /api/v1/video/jobs, follow its progress (server-sent events:
   percent, frames done, time left; the Cancel button stops it), play the annotated copy the server wrote,
   and chart each followed face's emotions over the clip (lines break where the face was not
   seen; a vertical line follows the video's playhead; clicking a chart seeks there).
   Downloads: the annotated clip, the timeline as CSV (server-made) and everything as JSON. */
"use strict";

(() => {
  const E = Ekspresi;
  const zone = document.getElementById("dropzone");
  const message = document.getElementById("message");
  const resultBox = document.getElementById("video-result");
  const player = document.getElementById("annotated-video");
  const tracksBox = document.getElementById("tracks");
  const summary = document.getElementById("video-summary");
  const everySelect = document.getElementById("every");
  let last = null;
  let charts = [];  // {canvas, points, classes}
  const progressBox = document.getElementById("video-progress-box");
  const bar = document.getElementById("video-progress");
  const barText = document.getElementById("video-progress-text");
  let current = null;  // the job being followed: {job, source, resolve}

  const stem = (name) => E.stem(name, "video");

  /* The analysed frames of one track: {x: seconds, scores}, with a gap wherever an analysed
     frame did not have that face. */
  function trackPoints(timeline, id) {
    const points = [];
    for (const row of timeline) {
      const face = row.faces.find((f) => f.track_id === id);
      if (face) points.push({ x: row.time, scores: face.scores });
      else if (points.length && !points[points.length - 1].gap) points.push({ gap: true });
    }
    return points;
  }

  function ticks(duration) {
    const step = duration > 60 ? 10 : duration > 20 ? 5 : duration > 8 ? 2 : 1;
    const out = [];
    for (let s = 0; s <= duration + 1e-6; s += step) out.push({ x: s, label: E.t("js.video.seconds", { s }) });
    return out;
  }

  function redrawCharts() {
    const t = player.currentTime || 0;
    for (const c of charts) {
      E.lineChart(c.canvas, c.points, c.classes, { from: 0, to: last.duration_s || 1,
        ticks: ticks(last.duration_s || 1), marker: t, aspect: 0.38 });
    }
  }

  function trackCard(track, data) {
    const classes = Object.keys(track.scores);
    const seen = E.t(track.frames === 1 ? "js.video.frames_one" : "js.video.frames_many", { n: track.frames });
    const first = data.timeline.find((r) => r.frame === track.first_frame);
    const lastRow = data.timeline.find((r) => r.frame === track.last_frame);
    const span = first && lastRow ? E.t("js.video.span", { from: first.time.toFixed(1), to: lastRow.time.toFixed(1) }) : "";
    const card = E.el("article", { class: "card track-card", "data-emotion": track.label, "data-track": String(track.track_id) });
    const canvas = E.el("canvas", { class: "track-chart", "aria-label": E.t("js.video.chart_label", { id: track.track_id }) });
    card.append(
      E.el("h3", {}, [E.el("span", { text: E.t("js.video.face", { id: track.track_id }) }),
        E.el("span", { class: "muted small", text: E.t("js.video.seen", { seen, span }) })]),
      E.el("div", { class: "face-top", text: `${E.label(track.label)} · ${E.pct(track.confidence)}` }),
      E.el("div", { class: "face-sub", text: E.t("js.video.mean", { seen }) }),
      canvas,
      E.el("div", { class: "legend" }, classes.map((c) => E.el("span", { "data-emotion": c, text: E.label(c) }))),
    );
    const points = trackPoints(data.timeline, track.track_id);
    charts.push({ canvas, points, classes });
    canvas.addEventListener("click", (e) => {
      const r = canvas.getBoundingClientRect();
      const frac = Math.min(1, Math.max(0, (e.clientX - r.left - 34) / (r.width - 44)));
      player.currentTime = frac * (data.duration_s || 0);
    });
    return card;
  }

  function show(data, file) {
    last = data;
    charts = [];
    resultBox.hidden = false;
    document.getElementById("video-name").textContent = file.name || E.t("js.video.untitled");
    const v = data.video;
    summary.textContent = E.t("js.video.summary", { w: v.width, h: v.height, duration: data.duration_s.toFixed(1),
      fps: v.fps.toFixed(1), analysed: v.frames_analyzed, read: v.frames_read,
      faces: E.t(data.tracks.length === 1 ? "js.faces_one" : "js.faces_many", { n: data.tracks.length }),
      elapsed: (data.elapsed_ms / 1000).toFixed(1) });
    const clipLink = document.getElementById("download-clip");
    if (data.clip_url) {
      player.src = data.clip_url;
      clipLink.href = data.clip_url;
      clipLink.download = `${stem(file.name)}.annotated${data.clip_type === "video/mp4" ? ".mp4" : ".webm"}`;
      clipLink.hidden = false;
    } else {
      player.removeAttribute("src");
      clipLink.hidden = true;
    }
    const csvLink = document.getElementById("download-video-csv");
    csvLink.href = data.csv_url;
    csvLink.download = `${stem(file.name)}.timeline.csv`;
    tracksBox.replaceChildren();
    if (!data.tracks.length) {
      tracksBox.append(E.el("div", { class: "message warn", id: "no-face", text: E.t("js.video.no_face") }));
    }
    data.tracks.forEach((t) => tracksBox.append(trackCard(t, data)));
    requestAnimationFrame(redrawCharts);
  }

  function showProgress(p) {
    if (p.percent === null) bar.removeAttribute("value");
    else bar.value = p.percent;
    const parts = [];
    if (p.percent !== null) parts.push(E.t("js.video.percent", { p: Math.floor(p.percent) }));
    parts.push(E.t(p.total ? "js.video.frames_done" : "js.video.frames_done_unknown", { done: p.done, total: p.total }));
    if (p.eta_s !== null && p.done) parts.push(E.t("js.video.eta", { s: Math.ceil(p.eta_s) }));
    barText.textContent = parts.join(" · ");
  }

  /* Follow a job's events until its result (resolved), failure (rejected) or cancelling
     (resolved with null). */
  function follow(job) {
    return new Promise((resolve, reject) => {
      const source = new EventSource(job.events_url);
      current = { job, source, resolve };
      progressBox.hidden = false;
      showProgress({ percent: null, done: 0, total: 0, eta_s: null });
      source.addEventListener("progress", (e) => showProgress(JSON.parse(e.data)));
      source.addEventListener("result", (e) => { source.close(); resolve(JSON.parse(e.data)); });
      source.addEventListener("failed", (e) => {
        source.close();
        const d = JSON.parse(e.data);
        reject(new Error(`${d.detail} (HTTP ${d.status})`));
      });
      source.addEventListener("cancelled", () => {
        source.close();
        E.showMessage(message, E.t("js.video.cancelled"));
        resolve(null);
      });
      source.addEventListener("error", () => {   // the connection itself broke
        if (source.readyState === EventSource.CLOSED) reject(new Error(E.t("js.video.lost")));
      });
    });
  }

  async function upload(file) {
    E.showMessage(message, "");
    E.busy(zone, true);
    const every = everySelect.value;
    try {
      const job = await E.postImage("/api/v1/video/jobs" + (every ? `?every=${every}` : ""), file);
      const data = await follow(job);
      if (data) show(data, file);
    } catch (err) {
      resultBox.hidden = true;
      E.showMessage(message, err.message, "error");
    } finally {
      E.busy(zone, false);
      progressBox.hidden = true;
      current = null;
    }
  }

  document.getElementById("cancel-video").addEventListener("click", async () => {
    if (!current) return;
    const { job, source, resolve } = current;
    source.close();
    try { await fetch(job.cancel_url, { method: "DELETE" }); } catch (_) { /* gone already */ }
    E.showMessage(message, E.t("js.video.cancelled"));
    resolve(null);
  });

  document.getElementById("download-video-json").addEventListener("click", () => {
    if (last) E.download(new Blob([JSON.stringify(last, null, 2)], { type: "application/json" }), `${stem(document.getElementById("video-name").textContent)}.ekspresi.json`);
  });
  player.addEventListener("timeupdate", () => { if (last) redrawCharts(); });
  player.addEventListener("seeked", () => { if (last) redrawCharts(); });
  window.addEventListener("resize", () => { if (last) redrawCharts(); });
  E.setupDropzone(zone, (files) => upload(files[0]));
})();
