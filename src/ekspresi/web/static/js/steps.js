/* Step-by-step page: send one image to /api/v1/trace and lay out every stage the server
   drew (original, grayscale, detections, then per face: crop, model input, probabilities,
   saliency). */
"use strict";

(() => {
  const E = Ekspresi;
  const zone = document.getElementById("dropzone");
  const message = document.getElementById("message");
  const stagesBox = document.getElementById("stages");

  /* A stage's title or caption in the page's language, from its key and the numbers the
     server sent (stage.params); the server's English text when the catalogue lacks it. */
  function stageText(stage, what) {
    const variant = stage.params && stage.params.variant ? "." + stage.params.variant : "";
    const key = `js.steps.${stage.key}.${what}${what === "caption" ? variant : ""}`;
    const text = E.t(key, Object.assign({}, stage.params || {},
      { label: stage.params && stage.params.label ? E.label(stage.params.label) : "" }));
    return text === key ? stage[what] : text;
  }

  function stageCard(stage, num) {
    const card = E.el("section", { class: "stage", "data-stage": stage.key });
    card.append(E.el("h2", {}, [E.el("span", { class: "stage-num", text: String(num) }),
      E.el("span", { text: stageText(stage, "title") })]));
    if (stage.image) {
      card.append(E.el("img", { src: stage.image, alt: stageText(stage, "title"),
        class: stage.pixelated ? "pixelated" : "" }));
    }
    if (stage.scores) card.append(E.renderBars(stage.scores));
    if (stage.candidates && stage.candidates.length) {
      const MAX_LISTED = 8;
      /* accepted candidates come first, in reading order, named by their face number */
      const list = E.el("ul", { class: "cand-list" });
      const accepted = stage.candidates.filter((c) => c.accepted).length;
      stage.candidates.slice(0, Math.max(MAX_LISTED, accepted)).forEach((c) => list.append(E.el("li", {
        class: c.accepted ? "" : "rejected", "data-face": c.accepted ? String(c.number) : "",
        text: E.t(c.accepted ? "js.steps.candidate" : "js.steps.candidate_rejected",
          { n: c.number, score: c.score.toFixed(3), w: c.box[2], h: c.box[3], x: c.box[0], y: c.box[1] }),
      })));
      card.append(list);
      const more = stage.candidates.length - Math.max(MAX_LISTED, accepted);
      if (more > 0) card.append(E.el("p", { class: "small", text: E.t("js.steps.more", { n: more }) }));
    }
    card.append(E.el("p", { text: stageText(stage, "caption") }));
    return card;
  }

  function show(data) {
    stagesBox.replaceChildren();
    let num = 1;
    data.stages.forEach((s) => stagesBox.append(stageCard(s, num++)));
    if (!data.faces.length) {
      const box = E.el("div", { class: "message warn face-section", id: "no-face",
        text: E.t("js.steps.no_face") });
      stagesBox.append(box);
    }
    data.faces.forEach((face, i) => {
      const section = E.el("div", { class: "face-section", "data-face": String(i) });
      section.append(E.el("h2", { text: E.t("js.steps.face", { n: i + 1, label: E.label(face.label), pct: E.pct(face.confidence) }) }));
      const grid = E.el("div", { class: "face-stages" });
      let n = num;
      face.stages.forEach((s) => grid.append(stageCard(s, n++)));
      section.append(grid);
      stagesBox.append(section);
    });
    const t = data.timings_ms || {};
    const parts = Object.entries(t).map(([k, v]) => {
      const name = E.t("js.steps.timing." + k);
      return `${name.startsWith("js.") ? k : name} ${Number(v).toFixed(1)} ms`;
    });
    E.showMessage(message, E.t("js.steps.summary", { w: data.width, h: data.height,
      faces: E.t(data.faces.length === 1 ? "js.faces_one" : "js.faces_many", { n: data.faces.length }),
      model: data.model }) + (parts.length ? " · " + parts.join(", ") : ""));
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
