/* Shared helpers of the ekspresi pages: emotion colours, probability bars, face boxes,
   the upload drop zone and error messages. Plain browser JavaScript, no dependencies. */
"use strict";

const Ekspresi = (() => {
  // The palette is ekspresi.infer.draw.PALETTE, written by the server into each page's
  // <head> as CSS variables (--happy ...), so pages, charts and CLI pictures agree.
  const COLORS = {};

  function color(emotion) {
    if (!(emotion in COLORS)) {
      const css = getComputedStyle(document.documentElement);
      COLORS[emotion] = css.getPropertyValue("--" + emotion).trim() || css.getPropertyValue("--other").trim();
    }
    return COLORS[emotion];
  }

  // The page's words (ekspresi/web/messages/{lang}.json, the js.* and emotion.* keys),
  // written by the server into <script type="application/json" id="messages">.
  let MESSAGES = null;

  /* t(key, {n: 3}): the message of key in the page's language, {n} filled in. */
  function t(key, params = {}) {
    if (MESSAGES === null) {
      const node = document.getElementById("messages");
      try { MESSAGES = node ? JSON.parse(node.textContent) : {}; } catch (_) { MESSAGES = {}; }
    }
    const text = key in MESSAGES ? MESSAGES[key] : key;
    return text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
  }

  /* An emotion's name in the page's language (data keep the English class names). */
  function label(emotion) {
    const key = "emotion." + emotion;
    return t(key) === key ? emotion : t(key);
  }

  /* "Face 2 · happy 87%"-style tag text of a face, shared by boxes, chips and tables. */
  function tag(face, number) {
    return `${number ? number + ". " : ""}${label(face.label)} ${Math.round(face.confidence * 100)}%`;
  }

  function pct(p) {
    return (p * 100).toFixed(1) + " %";
  }

  function el(tag, attrs = {}, children = []) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c);
    return node;
  }

  /* Horizontal bar chart of one face's probabilities, in the model's class order. */
  function renderBars(scores) {
    const box = el("div", { class: "bars" });
    const top = Object.keys(scores).reduce((a, b) => (scores[a] >= scores[b] ? a : b));
    for (const [name, p] of Object.entries(scores)) {
      const fill = el("div", { class: "bar-fill" });
      fill.style.setProperty("--c", color(name));
      fill.style.width = Math.max(0, Math.min(100, p * 100)).toFixed(1) + "%";
      const row = el("div", { class: "bar-row" + (name === top ? " top" : ""), "data-class": name }, [
        el("span", { class: "bar-label", text: label(name) }),
        el("div", { class: "bar-track" }, [fill]),
        el("span", { class: "bar-value", text: pct(p) }),
      ]);
      box.append(row);
    }
    return box;
  }

  /* Canvas pixels per CSS pixel as the canvas is displayed (object-fit: contain or
     width: 100 %), so labels can be sized for the screen, not for the image. */
  function canvasPxPerCssPx(canvas) {
    const r = canvas.getBoundingClientRect();
    if (!r.width || !r.height || !canvas.width || !canvas.height) return 1;
    return 1 / Math.min(r.width / canvas.width, r.height / canvas.height);
  }

  function overlaps(a, b) {
    return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
  }

  /* Place one w×h tag per box so that no two tags overlap and each stays inside the W×H
     canvas: above the box, else inside its top edge, else below it, else the nearest free
     row further down (then up). Pure geometry, so it can be tested without drawing. */
  function layoutLabels(boxes, sizes, W, H) {
    const placed = [];
    boxes.forEach(([x, y, w, h], i) => {
      const [tw, th] = sizes[i];
      const cx = Math.max(0, Math.min(x, W - tw));
      const clampY = (v) => Math.max(0, Math.min(v, H - th));
      const tries = [y - th, y, y + h];
      for (let k = 1; k <= Math.ceil(H / th); k++) tries.push(y + h + k * th, y - th - k * th);
      let rect = null;
      for (const ty of tries) {
        const r = { x: cx, y: clampY(ty), w: tw, h: th };
        if (!placed.some((p) => overlaps(p, r))) { rect = r; break; }
      }
      placed.push(rect || { x: cx, y: clampY(y - th), w: tw, h: th });
    });
    return placed;
  }

  /* Boxes and "2. happy 87%" tags on a 2-D canvas context; `scale` maps image pixels to
     canvas pixels. Tags never overlap each other and keep a fixed size on screen whatever
     the image's resolution. opts: numbered (prefix the face number), numbers (the number
     to prefix per face instead, e.g. its track), highlight (index of
     the face to emphasise, the others are dimmed), mirror (flip x, for a mirrored video). */
  function drawFaces(ctx, faces, scale, opts = {}) {
    const k = opts.pxPerCss || canvasPxPerCssPx(ctx.canvas);
    const W = ctx.canvas.width, H = ctx.canvas.height;
    const line = Math.max(1, 2 * k);
    const font = Math.round(13 * k);
    const pad = Math.round(4 * k);
    ctx.font = `600 ${font}px system-ui, sans-serif`;
    ctx.textBaseline = "top";
    const boxes = faces.map((f) => {
      const [x, y, w, h] = f.box.map((v) => v * scale);
      return [opts.mirror ? W - x - w : x, y, w, h];
    });
    const texts = faces.map((f, i) => tag(f, opts.numbers ? opts.numbers[i] : opts.numbered ? i + 1 : 0));
    const sizes = texts.map((t) => [ctx.measureText(t).width + 2 * pad, font + 2 * pad]);
    const labels = layoutLabels(boxes, sizes, W, H);
    const hi = opts.highlight === undefined ? -1 : opts.highlight;
    const inks = faces.map((f) => ink(f.label));
    faces.forEach((f, i) => {
      const [x, y, w, h] = boxes[i];
      const c = color(f.label);
      ctx.globalAlpha = hi >= 0 && hi !== i ? 0.35 : 1;
      ctx.strokeStyle = c;
      ctx.lineWidth = hi === i ? line * 2.5 : line;
      ctx.strokeRect(x, y, w, h);
      if (hi === i) {
        ctx.fillStyle = c;
        ctx.globalAlpha = 0.18;
        ctx.fillRect(x, y, w, h);
        ctx.globalAlpha = 1;
      }
      const r = labels[i];
      ctx.fillStyle = c;
      ctx.fillRect(r.x, r.y, r.w, r.h);
      ctx.fillStyle = inks[i];
      ctx.fillText(texts[i], r.x + pad, r.y + pad);
    });
    ctx.globalAlpha = 1;
    ctx.canvas.dataset.labels = JSON.stringify(labels.map((r) => [r.x, r.y, r.w, r.h].map(Math.round)));
    ctx.canvas.dataset.font = String(font);
    ctx.canvas.dataset.texts = JSON.stringify(texts);
    return labels;
  }

  /* Black or white, whichever reads better on the emotion's colour (--happy-ink ...). */
  function ink(emotion) {
    return getComputedStyle(document.documentElement).getPropertyValue(`--${emotion}-ink`).trim() || "#fff";
  }

  /* Probability lines (0-100 %) of each class over x in [from, to] on a canvas sized to
     its CSS width. points: {x, scores} or {gap: true}, which breaks every line (a pause, a
     frame without the face). ticks: [{x, label}] under the axis; marker: an x to draw a
     vertical line at (a video's playhead). Sets canvas.dataset.runs to the number of
     unbroken stretches of a line. */
  function lineChart(canvas, points, classes, opts) {
    const dpr = window.devicePixelRatio || 1;
    const cssW = canvas.clientWidth || 560, cssH = Math.round(cssW * (opts.aspect || 0.46));
    if (canvas.width !== Math.round(cssW * dpr) || canvas.height !== Math.round(cssH * dpr)) {
      canvas.width = Math.round(cssW * dpr);
      canvas.height = Math.round(cssH * dpr);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const css = getComputedStyle(document.documentElement);
    const W = cssW, H = cssH, left = 34, bottom = 20, top = 14, right = 10;
    const pw = W - left - right, ph = H - top - bottom;
    const span = opts.to - opts.from || 1;
    const xOf = (x) => left + pw * ((x - opts.from) / span);
    ctx.clearRect(0, 0, W, H);
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = css.getPropertyValue("--muted").trim() || "#62657a";
    ctx.strokeStyle = css.getPropertyValue("--border").trim() || "#e3e5ee";
    ctx.lineWidth = 1;
    for (let v = 0; v <= 1.0001; v += 0.25) {
      const y = top + ph * (1 - v);
      ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(W - right, y); ctx.stroke();
      ctx.fillText(`${Math.round(v * 100)}%`, 2, y - 6);
    }
    for (const t of opts.ticks || []) {
      const x = xOf(t.x);
      ctx.textAlign = x > W - right - 15 ? "right" : x < left + 15 ? "left" : "center";
      ctx.fillText(t.label, x, H - 14);
    }
    ctx.textAlign = "left";
    let runs = 0;
    ctx.lineWidth = 2;
    for (const c of classes) {
      ctx.strokeStyle = color(c);
      ctx.beginPath();
      let pen = false;
      runs = 0;
      for (const p of points) {
        if (p.gap) { pen = false; continue; }
        const x = xOf(p.x), y = top + ph * (1 - (p.scores[c] || 0));
        if (pen) ctx.lineTo(x, y); else { ctx.moveTo(x, y); pen = true; runs++; }
      }
      ctx.stroke();
    }
    if (opts.marker !== undefined && opts.marker !== null) {
      ctx.strokeStyle = css.getPropertyValue("--text").trim() || "#000";
      ctx.lineWidth = 1;
      ctx.beginPath(); ctx.moveTo(xOf(opts.marker), top); ctx.lineTo(xOf(opts.marker), top + ph); ctx.stroke();
    }
    canvas.dataset.runs = String(runs);
    return runs;
  }

  function showMessage(node, text, kind = "") {
    node.hidden = !text;
    node.className = "message" + (kind ? " " + kind : "");
    node.textContent = text || "";
  }

  /* POST one file as multipart `file`; returns the parsed JSON or throws an Error whose
     message is the server's explanation (413 too big, 415 not an image, ...). */
  async function postImage(endpoint, file) {
    const form = new FormData();
    form.append("file", file, file.name || "pasted-image");
    let response;
    try {
      response = await fetch(endpoint, { method: "POST", body: form });
    } catch (err) {
      throw new Error(t("js.err.unreachable", { why: err.message }));
    }
    let body = null;
    try { body = await response.json(); } catch (_) { /* not JSON */ }
    if (!response.ok) {
      const why = body && body.detail ? body.detail : response.statusText;
      throw new Error(`${why} (HTTP ${response.status})`);
    }
    return body;
  }

  const IMAGE_EXT = /\.(jpe?g|jfif|png|webp|bmp|tiff?|gif|pgm|ppm|pbm)$/i;

  /* Every file under the dropped folders (FileSystemEntry API), images only. */
  async function filesFromEntries(entries) {
    const out = [];
    const walk = async (entry) => {
      if (entry.isFile) {
        const file = await new Promise((ok, fail) => entry.file(ok, fail));
        if (IMAGE_EXT.test(file.name)) out.push(file);
      } else if (entry.isDirectory) {
        const reader = entry.createReader();
        for (;;) {
          const batch = await new Promise((ok, fail) => reader.readEntries(ok, fail));
          if (!batch.length) break;
          for (const e of batch) await walk(e);
        }
      }
    };
    for (const e of entries) await walk(e);
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /* Wire a .dropzone: the file picker, drag-and-drop and paste call onFiles(files). With
     data-multiple the picker takes several files, a folder button (#choose-folder) takes
     a whole folder, and dropped folders are walked; otherwise only the first file counts. */
  function setupDropzone(zone, onFiles) {
    const input = zone.querySelector("#file-input");
    const folderInput = zone.querySelector("#folder-input");
    const multiple = zone.dataset.multiple === "true";
    const maxBytes = parseFloat(zone.dataset.maxMb || "10") * 1e6;
    const message = document.getElementById("message");
    const accept = (files) => {
      files = [...files].filter(Boolean);
      if (!multiple) files = files.slice(0, 1);
      if (!files.length) return;
      if (files.length === 1 && files[0].size > maxBytes) {
        showMessage(message, t("js.err.too_big", { size: (files[0].size / 1e6).toFixed(1), limit: zone.dataset.maxMb }), "error");
        return;
      }
      onFiles(files, maxBytes);
    };
    zone.querySelector("#choose-file").addEventListener("click", () => input.click());
    input.addEventListener("change", () => { accept(input.files); input.value = ""; });
    if (folderInput) {
      zone.querySelector("#choose-folder").addEventListener("click", () => folderInput.click());
      folderInput.addEventListener("change", () => {
        accept([...folderInput.files].filter((f) => IMAGE_EXT.test(f.name))
          .sort((a, b) => (a.webkitRelativePath || a.name).localeCompare(b.webkitRelativePath || b.name)));
        folderInput.value = "";
      });
    }
    zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("dragover"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("dragover"));
    zone.addEventListener("drop", async (e) => {
      e.preventDefault();
      zone.classList.remove("dragover");
      const entries = [...(e.dataTransfer.items || [])]
        .map((it) => (it.webkitGetAsEntry ? it.webkitGetAsEntry() : null));
      if (multiple && entries.some((en) => en && en.isDirectory)) {
        accept(await filesFromEntries(entries.filter(Boolean)));
      } else {
        accept(e.dataTransfer.files);
      }
    });
    /* "Try an example": the server's copy of a shipped example goes through the same path
       as a file the user chose. */
    zone.querySelectorAll("[data-example]").forEach((button) => button.addEventListener("click", async () => {
      try {
        const response = await fetch(`/examples/${button.dataset.example}`);
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const blob = await response.blob();
        accept([new File([blob], button.dataset.exampleFile, { type: blob.type })]);
      } catch (err) {
        showMessage(message, t("js.err.example", { error: err.message }), "error");
      }
    }));
    document.addEventListener("paste", (e) => {
      const files = [...(e.clipboardData || {}).items || []].filter((it) => it.kind === "file")
        .map((it) => it.getAsFile());
      if (files.length) accept(files);
    });
  }

  /* A download name's base from an uploaded file's name: no folders, no extension. */
  function stem(name, fallback) {
    return (name || fallback).replace(/^.*[\\/]/, "").replace(/\.[^.]+$/, "");
  }

  /* Save a Blob under a file name (an <a download> click). */
  function download(blob, name) {
    const a = el("a", { href: URL.createObjectURL(blob), download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }

  /* RFC 4180 CSV from rows of cells (quotes where needed). Text a spreadsheet would run as
     a formula (starting with = + - @ tab or CR, e.g. a file named =HYPERLINK(...).jpg) gets a
     leading ' ; numbers, and text that is a plain number ("-0.5"), stay as they are. The
     same rule as the server's CSVs (ekspresi.csvcells). */
  const FORMULA_START = /^[=+\-@\t\r]/;
  const PLAIN_NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
  function safeCell(v) {
    if (typeof v !== "string") return v;
    return FORMULA_START.test(v) && !PLAIN_NUMBER.test(v) ? `'${v}` : v;
  }

  function csvText(rows) {
    const cell = (v) => {
      const s = v === null || v === undefined ? "" : String(safeCell(v));
      return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
    };
    return rows.map((r) => r.map(cell).join(",")).join("\r\n") + "\r\n";
  }

  function busy(zone, on) {
    zone.querySelector(".dropzone-busy").hidden = !on;
  }

  return { COLORS, color, t, label, tag, pct, el, renderBars, drawFaces, lineChart, layoutLabels, ink, canvasPxPerCssPx,
    showMessage, postImage, setupDropzone, busy, stem, download, csvText };
})();

/* Tables wider than their box scroll inside it; mark those (.overflowing) so the page can
   say so, and keep the mark right when the window is resized. */
(() => {
  const mark = () => document.querySelectorAll(".table-scroll").forEach((box) =>
    box.classList.toggle("overflowing", box.scrollWidth > box.clientWidth + 1));
  mark();
  window.addEventListener("resize", mark);
})();
