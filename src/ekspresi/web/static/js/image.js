/* Image test page: one or many images (picker, drop, paste, folder) are sent one at a time
   to /api/v1/analyze?preview=true. Several files get a results table; the selected image is
   drawn on the server's upright preview with a box per face, and each face is listed with
   its probability bars. Hovering (or focusing) a face card highlights its box. Downloads:
   the annotated image (PNG), and the results as CSV or JSON, for one image or all. */
"use strict";

(() => {
  const E = Ekspresi;
  const zone = document.getElementById("dropzone");
  const message = document.getElementById("message");
  const result = document.getElementById("result");
  const canvas = document.getElementById("annotated");
  const facesBox = document.getElementById("faces");
  const summary = document.getElementById("result-summary");
  const nameEl = document.getElementById("result-name");
  const batch = document.getElementById("batch");
  const batchBody = document.querySelector("#batch-table tbody");
  const progress = document.getElementById("batch-progress");

  let items = [];      // {name, file, status: queued|busy|done|error, data, error}
  let current = -1;    // index of the item shown below the table
  let picture = null;  // the loaded preview Image of the current item
  let highlight = -1;  // face under the pointer
  let runId = 0;       // a new batch cancels the rest of the previous one

  const stem = (name) => E.stem(name, "image");

  function redraw() {
    const item = items[current];
    if (!item || !item.data || !picture) return;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(picture, 0, 0);
    E.drawFaces(ctx, item.data.faces, item.data.preview_scale || 1,
      { numbered: item.data.faces.length > 1, highlight });
    canvas.dataset.faces = String(item.data.faces.length);
    canvas.dataset.highlight = String(highlight);
  }

  function drawResult(data) {
    const img = new Image();
    img.onload = () => {
      picture = img;
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      redraw();
    };
    img.src = data.preview;
  }

  function faceCard(face, i) {
    const card = E.el("article", { class: "face-card", "data-emotion": face.label, "data-face": String(i), tabindex: "0" });
    card.append(
      E.el("h3", {}, [E.el("span", { text: E.t("js.face", { n: i + 1 }) }),
        E.el("span", { class: "muted small", text: `${face.box[2]}×${face.box[3]} px` })]),
      E.el("div", { class: "face-top", text: `${E.label(face.label)} · ${E.pct(face.confidence)}` }),
      E.el("div", { class: "face-sub", text: E.t("js.face_sub", { score: face.detection_score.toFixed(2), x: face.box[0], y: face.box[1] }) }),
      E.renderBars(face.scores),
    );
    const on = () => { highlight = i; redraw(); };
    const off = () => { if (highlight === i) { highlight = -1; redraw(); } };
    card.addEventListener("mouseenter", on);
    card.addEventListener("focus", on);
    card.addEventListener("mouseleave", off);
    card.addEventListener("blur", off);
    return card;
  }

  function show(index) {
    current = index;
    highlight = -1;
    const item = items[index];
    [...batchBody.rows].forEach((row, i) => row.classList.toggle("selected", i === index));
    if (!item.data) {
      result.hidden = true;
      E.showMessage(message, item.error ? `${item.name}: ${item.error}` : "", item.error ? "error" : "");
      return;
    }
    E.showMessage(message, "");
    const data = item.data;
    result.hidden = false;
    nameEl.textContent = item.name;
    drawResult(data);
    facesBox.replaceChildren();
    const n = data.faces.length;
    summary.textContent = E.t("js.image_summary", { w: data.width, h: data.height,
      faces: E.t(n === 1 ? "js.faces_one" : "js.faces_many", { n }), ms: data.elapsed_ms.toFixed(0), model: data.model });
    if (n === 0) {
      const tips = document.getElementById("no-face-tips").content.cloneNode(true);
      const box = E.el("div", { class: "message warn", id: "no-face" });
      box.append(tips);
      facesBox.append(box);
    } else {
      data.faces.forEach((f, i) => facesBox.append(faceCard(f, i)));
    }
  }

  function renderRow(item, i) {
    const row = batchBody.rows[i] || batchBody.insertRow();
    row.dataset.status = item.status;
    row.tabIndex = 0;
    let emotions;
    if (item.status === "error") emotions = E.el("span", { class: "error-text", text: item.error });
    else if (item.status !== "done") emotions = E.el("span", { class: "muted", text: E.t(item.status === "busy" ? "js.analysing" : "js.waiting") });
    else if (!item.data.faces.length) emotions = E.el("span", { class: "muted", text: E.t("js.no_face") });
    else {
      emotions = E.el("span", { class: "chips" }, item.data.faces.map((f, k) =>
        E.el("span", { class: "chip", "data-emotion": f.label, text: E.tag(f, k + 1) })));
    }
    const cells = [
      E.el("td", { class: "num", text: String(i + 1) }),
      E.el("td", { class: "file-name", text: item.name, title: item.name }),
      E.el("td", { class: "num", text: item.status === "done" ? String(item.data.faces.length) : "–" }),
      E.el("td", {}, [emotions]),
      E.el("td", { class: "num", text: item.status === "done" ? item.data.elapsed_ms.toFixed(0) : "–" }),
    ];
    row.replaceChildren(...cells);
    row.classList.toggle("selected", i === current);
  }

  async function analyzeAll(files, maxBytes) {
    const id = ++runId;
    items = files.map((file) => ({ name: file.webkitRelativePath || file.name || "pasted-image", file, status: "queued" }));
    current = -1;
    batchBody.replaceChildren();
    batch.hidden = items.length < 2;
    result.hidden = true;
    E.showMessage(message, "");
    items.forEach(renderRow);
    E.busy(zone, true);
    for (let i = 0; i < items.length; i++) {
      if (id !== runId) return;
      const item = items[i];
      item.status = "busy";
      renderRow(item, i);
      progress.textContent = E.t("js.progress", { i: i + 1, n: items.length });
      if (item.file.size > maxBytes) {
        item.status = "error";
        item.error = E.t("js.err.over_limit", { size: (item.file.size / 1e6).toFixed(1), limit: zone.dataset.maxMb });
      } else {
        try {
          item.data = await E.postImage(zone.dataset.endpoint, item.file);
          item.status = "done";
        } catch (err) {
          item.status = "error";
          item.error = err.message;
        }
      }
      if (id !== runId) return;
      renderRow(item, i);
      if (current < 0 && (item.status === "done" || items.length === 1)) show(i);
    }
    const failed = items.filter((it) => it.status === "error").length;
    progress.textContent = E.t(failed ? "js.done_failed" : "js.done", { n: items.length, failed });
    E.busy(zone, false);
  }

  batchBody.addEventListener("click", (e) => {
    const row = e.target.closest("tr");
    if (row) show(row.sectionRowIndex);
  });
  batchBody.addEventListener("keydown", (e) => {
    const row = e.target.closest("tr");
    if (row && (e.key === "Enter" || e.key === " ")) { e.preventDefault(); show(row.sectionRowIndex); }
  });

  function cleanResult(item) {
    if (item.status !== "done") return { file: item.name, error: item.error || item.status };
    const { preview, preview_scale, ...clean } = item.data;
    return { file: item.name, ...clean };
  }

  /* One row per face (a file without faces or with an error gets one row), same columns
     as `ekspresi predict --format csv` minus the video ones. */
  function csvRows(list) {
    const first = list.find((it) => it.data && it.data.faces.length);
    const classes = first ? Object.keys(first.data.faces[0].scores) : [];
    const rows = [["file", "face", "x", "y", "w", "h", "label", "confidence", "detection_score",
      ...classes.map((c) => "p_" + c), "error"]];
    for (const it of list) {
      const blank = Array(8 + classes.length).fill("");
      if (it.status !== "done") { rows.push([it.name, ...blank, it.error || it.status]); continue; }
      if (!it.data.faces.length) rows.push([it.name, ...blank, ""]);
      it.data.faces.forEach((f, k) => rows.push([it.name, k + 1, ...f.box, f.label,
        f.confidence.toFixed(6), f.detection_score.toFixed(6),
        ...classes.map((c) => (f.scores[c] || 0).toFixed(6)), ""]));
    }
    return rows;
  }

  const jsonBlob = (value) => new Blob([JSON.stringify(value, null, 2)], { type: "application/json" });
  const csvBlob = (list) => new Blob([E.csvText(csvRows(list))], { type: "text/csv" });

  document.getElementById("download-json").addEventListener("click", () => {
    const item = items[current];
    if (item && item.data) E.download(jsonBlob(cleanResult(item)), `${stem(item.name)}.ekspresi.json`);
  });
  document.getElementById("download-csv").addEventListener("click", () => {
    const item = items[current];
    if (item && item.data) E.download(csvBlob([item]), `${stem(item.name)}.ekspresi.csv`);
  });
  document.getElementById("download-image").addEventListener("click", () => {
    const item = items[current];
    if (!item || !item.data) return;
    highlight = -1;
    redraw();
    canvas.toBlob((blob) => E.download(blob, `${stem(item.name)}.annotated.png`), "image/png");
  });
  document.getElementById("download-all-json").addEventListener("click", () => {
    const model = (items.find((it) => it.data) || { data: {} }).data.model || null;
    E.download(jsonBlob({ model, results: items.map(cleanResult) }), "ekspresi-results.json");
  });
  document.getElementById("download-all-csv").addEventListener("click", () => {
    E.download(csvBlob(items), "ekspresi-results.csv");
  });

  // Labels are sized for the canvas as displayed: redraw when its displayed size changes.
  if ("ResizeObserver" in window) {
    let lastWidth = 0;
    new ResizeObserver(() => {
      const w = canvas.getBoundingClientRect().width;
      if (Math.abs(w - lastWidth) > 1) { lastWidth = w; redraw(); }
    }).observe(canvas);
  }

  E.setupDropzone(zone, analyzeAll);
})();
