/* Image test page: send one image to /api/v1/analyze?preview=true, draw the boxes on the
   server's upright preview, and list each face with its probability bars. */
"use strict";

(() => {
  const E = Ekspresi;
  const zone = document.getElementById("dropzone");
  const message = document.getElementById("message");
  const result = document.getElementById("result");
  const canvas = document.getElementById("annotated");
  const facesBox = document.getElementById("faces");
  const summary = document.getElementById("result-summary");
  let lastResult = null;
  let lastName = "image";

  function drawResult(data) {
    const img = new Image();
    img.onload = () => {
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      const ctx = canvas.getContext("2d");
      ctx.drawImage(img, 0, 0);
      E.drawFaces(ctx, data.faces, data.preview_scale || 1, { numbered: data.faces.length > 1 });
      canvas.dataset.faces = String(data.faces.length);
    };
    img.src = data.preview;
  }

  function faceCard(face, i) {
    const card = E.el("article", { class: "face-card", "data-emotion": face.label });
    card.append(
      E.el("h3", {}, [E.el("span", { text: `Face ${i + 1}` }),
        E.el("span", { class: "muted small", text: `${face.box[2]}×${face.box[3]} px` })]),
      E.el("div", { class: "face-top", text: `${face.label} · ${E.pct(face.confidence)}` }),
      E.el("div", { class: "face-sub", text: `detector score ${face.detection_score.toFixed(2)} · box x ${face.box[0]}, y ${face.box[1]}` }),
      E.renderBars(face.scores),
    );
    return card;
  }

  function show(data) {
    lastResult = data;
    result.hidden = false;
    drawResult(data);
    facesBox.replaceChildren();
    const n = data.faces.length;
    summary.textContent = `${data.width}×${data.height} px · ${n} face${n === 1 ? "" : "s"} · ${data.elapsed_ms.toFixed(0)} ms · model ${data.model}`;
    if (n === 0) {
      const tips = document.getElementById("no-face-tips").content.cloneNode(true);
      const box = E.el("div", { class: "message warn", id: "no-face" });
      box.append(tips);
      facesBox.append(box);
    } else {
      data.faces.forEach((f, i) => facesBox.append(faceCard(f, i)));
    }
  }

  async function analyze(file) {
    E.showMessage(message, "");
    E.busy(zone, true);
    lastName = (file.name || "image").replace(/\.[^.]+$/, "");
    try {
      show(await E.postImage(zone.dataset.endpoint, file));
    } catch (err) {
      result.hidden = true;
      E.showMessage(message, err.message, "error");
    } finally {
      E.busy(zone, false);
    }
  }

  document.getElementById("download-json").addEventListener("click", () => {
    if (!lastResult) return;
    const { preview, preview_scale, ...clean } = lastResult;
    const blob = new Blob([JSON.stringify(clean, null, 2)], { type: "application/json" });
    const a = E.el("a", { href: URL.createObjectURL(blob), download: `${lastName}.ekspresi.json` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  });

  E.setupDropzone(zone, analyze);
})();
