/* Step-by-step page: send one image to /api/v1/trace and lay out every stage the server
   drew (original, grayscale, detections, then per face: crop, model input, probabilities,
   saliency). */
"use strict";

(() => {
  const E = Ekspresi;
  const zone = document.getElementById("dropzone");
  const message = document.getElementById("message");
  const stagesBox = document.getElementById("stages");

  function stageCard(stage, num) {
    const card = E.el("section", { class: "stage", "data-stage": stage.key });
    card.append(E.el("h2", {}, [E.el("span", { class: "stage-num", text: String(num) }),
      E.el("span", { text: stage.title })]));
    if (stage.image) {
      card.append(E.el("img", { src: stage.image, alt: stage.title,
        class: stage.pixelated ? "pixelated" : "" }));
    }
    if (stage.scores) card.append(E.renderBars(stage.scores));
    if (stage.candidates && stage.candidates.length) {
      const MAX_LISTED = 8;
      const list = E.el("ol", { class: "cand-list" });
      stage.candidates.slice(0, MAX_LISTED).forEach((c) => list.append(E.el("li", {
        class: c.accepted ? "" : "rejected",
        text: `score ${c.score.toFixed(3)} · ${c.box[2]}×${c.box[3]} px at (${c.box[0]}, ${c.box[1]})${c.accepted ? "" : " · rejected"}`,
      })));
      card.append(list);
      const more = stage.candidates.length - MAX_LISTED;
      if (more > 0) card.append(E.el("p", { class: "small", text: `… and ${more} more rejected candidate${more > 1 ? "s" : ""} with lower scores.` }));
    }
    card.append(E.el("p", { text: stage.caption }));
    return card;
  }

  function show(data) {
    stagesBox.replaceChildren();
    let num = 1;
    data.stages.forEach((s) => stagesBox.append(stageCard(s, num++)));
    if (!data.faces.length) {
      const box = E.el("div", { class: "message warn face-section", id: "no-face",
        text: "No face passed the detector, so there is nothing to classify. Try a photo with a larger, frontal, well-lit face." });
      stagesBox.append(box);
    }
    data.faces.forEach((face, i) => {
      const section = E.el("div", { class: "face-section", "data-face": String(i) });
      section.append(E.el("h2", { text: `Face ${i + 1}: ${face.label} (${E.pct(face.confidence)})` }));
      const grid = E.el("div", { class: "face-stages" });
      let n = num;
      face.stages.forEach((s) => grid.append(stageCard(s, n++)));
      section.append(grid);
      stagesBox.append(section);
    });
    const t = data.timings_ms || {};
    const parts = Object.entries(t).map(([k, v]) => `${k} ${Number(v).toFixed(1)} ms`);
    E.showMessage(message, `${data.width}×${data.height} px · ${data.faces.length} face(s) · model ${data.model}` + (parts.length ? " · " + parts.join(", ") : ""));
    stagesBox.hidden = false;
  }

  async function run(file) {
    E.showMessage(message, "");
    E.busy(zone, true);
    try {
      show(await E.postImage(zone.dataset.endpoint, file));
    } catch (err) {
      stagesBox.hidden = true;
      E.showMessage(message, err.message, "error");
    } finally {
      E.busy(zone, false);
    }
  }

  E.setupDropzone(zone, (files) => run(files[0]));
})();
