/* Shared helpers of the ekspresi pages: emotion colours, probability bars, face boxes,
   the upload drop zone and error messages. Plain browser JavaScript, no dependencies. */
"use strict";

const Ekspresi = (() => {
  // Same palette as ekspresi/web/render.py and app.css (keep them in step).
  const COLORS = {
    angry: "#e5484d", disgust: "#30a46c", fear: "#8e4ec6", happy: "#f5b400",
    sad: "#3e63dd", surprise: "#f76b15", neutral: "#8b8d98", contempt: "#ad7f58",
  };

  function color(emotion) {
    return COLORS[emotion] || "#4f46e5";
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
        el("span", { class: "bar-label", text: name }),
        el("div", { class: "bar-track" }, [fill]),
        el("span", { class: "bar-value", text: pct(p) }),
      ]);
      box.append(row);
    }
    return box;
  }

  /* Boxes and "label 87 %" tags on a 2-D canvas context; `scale` maps image pixels to
     canvas pixels. */
  function drawFaces(ctx, faces, scale, opts = {}) {
    const side = Math.max(ctx.canvas.width, ctx.canvas.height);
    const line = Math.max(2, Math.round(side / 320));
    const font = Math.max(12, Math.round(side / 42));
    ctx.lineWidth = line;
    ctx.font = `600 ${font}px system-ui, sans-serif`;
    ctx.textBaseline = "top";
    faces.forEach((f, i) => {
      const [x, y, w, h] = f.box.map((v) => v * scale);
      const c = color(f.label);
      ctx.strokeStyle = c;
      ctx.strokeRect(x, y, w, h);
      const text = `${opts.numbered ? i + 1 + ". " : ""}${f.label} ${Math.round(f.confidence * 100)}%`;
      const tw = ctx.measureText(text).width + 10;
      const th = font + 8;
      const ty = y - th >= 0 ? y - th : y + h;
      ctx.fillStyle = c;
      ctx.fillRect(x - line / 2, ty, tw, th);
      ctx.fillStyle = "#fff";
      ctx.fillText(text, x + 5 - line / 2, ty + 4);
    });
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
      throw new Error("Could not reach the server: " + err.message);
    }
    let body = null;
    try { body = await response.json(); } catch (_) { /* not JSON */ }
    if (!response.ok) {
      const why = body && body.detail ? body.detail : response.statusText;
      throw new Error(`${why} (HTTP ${response.status})`);
    }
    return body;
  }

  /* Wire a .dropzone: click-to-choose, drag-and-drop and paste all call onFile(file). */
  function setupDropzone(zone, onFile) {
    const input = zone.querySelector("input[type=file]");
    const maxBytes = parseFloat(zone.dataset.maxMb || "10") * 1e6;
    const accept = (file, message) => {
      if (!file) return;
      if (file.size > maxBytes) {
        showMessage(message, `That file is ${(file.size / 1e6).toFixed(1)} MB; the limit is ${zone.dataset.maxMb} MB.`, "error");
        return;
      }
      onFile(file);
    };
    const message = document.getElementById("message");
    zone.querySelector("#choose-file").addEventListener("click", () => input.click());
    input.addEventListener("change", () => { accept(input.files[0], message); input.value = ""; });
    zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("dragover"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("dragover"));
    zone.addEventListener("drop", (e) => {
      e.preventDefault();
      zone.classList.remove("dragover");
      accept(e.dataTransfer.files[0], message);
    });
    document.addEventListener("paste", (e) => {
      const item = [...(e.clipboardData || {}).items || []].find((it) => it.kind === "file");
      if (item) accept(item.getAsFile(), message);
    });
  }

  function busy(zone, on) {
    zone.querySelector(".dropzone-busy").hidden = !on;
  }

  return { COLORS, color, pct, el, renderBars, drawFaces, showMessage, postImage, setupDropzone, busy };
})();
