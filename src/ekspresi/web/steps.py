"""The step-by-step page's content: :meth:`Recognizer.trace` turned into pictures.

Each stage becomes ``{"key", "title", "image" (data URI), "caption", "params"}`` (the
numbers of the caption, so the page can say it in its own language); the page's
JavaScript only lays them out, so what is shown is decided (and tested) here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ekspresi.infer.draw import draw_candidates, heatmap_overlay
from ekspresi.infer.results import Trace
from ekspresi.web.render import data_uri, fit, upscale_nearest

#: Longest side of the full-image stages (the page never needs more).
DISPLAY_SIDE = 960
#: Side the crops / model input / saliency are shown at.
FACE_SIDE = 240


def _stage(key: str, title: str, image: np.ndarray, caption: str, *, fmt: str = "jpeg",
           pixelated: bool = False, **extra: Any) -> dict[str, Any]:
    return {"key": key, "title": title, "image": data_uri(image, fmt), "caption": caption,
            "pixelated": pixelated, **extra}


def trace_view(trace: Trace, saliency_max: int | None = None) -> dict[str, Any]:
    """The page's stages. ``saliency_max``: the number of faces saliency was computed for
    (the first ones in reading order); a face after them gets a stage that says so."""
    original = trace.original
    h, w = original.shape[:2]
    shown, scale = fit(original, DISPLAY_SIDE)
    gray_shown, _ = fit(trace.gray, DISPLAY_SIDE)
    size = int(trace.input_spec.size)

    numbers = trace.to_dict()
    cand_rows = numbers["candidates"]
    det_img = draw_candidates(shown, trace.candidates, scale)
    n_acc = sum(r["accepted"] for r in cand_rows)
    stages = [
        _stage("original", "Original", shown,
               f"The decoded image, turned upright from its EXIF tag: {w}×{h} px"
               + (f" (shown at {scale:.0%})" if scale < 1 else "") + ".",
               params={"w": w, "h": h, "scale": f"{scale:.0%}",
                       "variant": "scaled" if scale < 1 else "full"}),
        _stage("gray", "Grayscale", gray_shown,
               "One channel, as the model was trained (FER2013 is grayscale)."),
        _stage("detections", "Face detection", det_img,
               f"The {trace.detector or 'face'} detector proposed {len(cand_rows)} "
               f"candidate{'s' if len(cand_rows) != 1 else ''}; {n_acc} passed the score "
               "threshold and minimum size (yellow, with eye/nose/mouth points), each tagged "
               "with its face number (reading order: rows top to bottom, left to right) "
               "and detector score; grey ones were rejected.",
               candidates=cand_rows, params={"detector": trace.detector or "face",
                                             "n": len(cand_rows), "accepted": n_acc}),
    ]

    faces_out = []
    classes = list(trace.classes)
    for i, face in enumerate(trace.faces):
        crop = trace.crops[i]
        model_input = trace.model_inputs[i]
        rotation = float(trace.rotations[i]) if i < len(trace.rotations) else 0.0
        crop_shown, _ = fit(crop, FACE_SIDE)
        if max(crop_shown.shape[:2]) < FACE_SIDE:
            crop_shown = upscale_nearest(crop_shown, FACE_SIDE)
        face_stages = [
            _stage("crop", "Aligned crop", crop_shown,
                   f"Face box with its margin, cropped at source resolution "
                   f"({crop.shape[1]}×{crop.shape[0]} px)"
                   + (f", rotated {rotation:+.1f}° to level the eyes." if abs(rotation) > 0
                      else "; the eyes were already level, no rotation."), fmt="png",
                   params={"w": int(crop.shape[1]), "h": int(crop.shape[0]),
                           "rotation": f"{rotation:+.1f}",
                           "variant": "rotated" if abs(rotation) > 0 else "level"}),
            _stage("input", f"Model input ({size}×{size})", upscale_nearest(model_input,
                                                                            FACE_SIDE),
                   f"Exactly the {size}×{size} uint8 pixels ONNX Runtime receives (as "
                   "float32 0–255), enlarged without smoothing so each pixel is a square.",
                   fmt="png", pixelated=True, params={"size": size}),
            {"key": "probabilities", "title": "Probabilities", "image": None,
             "scores": {c: round(float(face.scores[c]), 6) for c in classes},
             "caption": f"Softmax of the network's outputs: {face.label} "
                        f"({face.confidence:.1%}).",
             "params": {"label": face.label, "pct": f"{face.confidence:.1%}"}},
        ]
        if i < len(trace.saliency):
            big_input = upscale_nearest(model_input, FACE_SIDE)
            face_stages.append(_stage(
                "saliency", "Saliency (occlusion)", heatmap_overlay(big_input,
                                                                     trace.saliency[i]),
                f"Red = regions whose grey-out lowered the '{face.label}' probability most "
                "(occlusion sensitivity, computed with ONNX Runtime only).", fmt="png",
                params={"label": face.label}))
        elif saliency_max is not None:
            face_stages.append({
                "key": "saliency_skipped", "title": "Saliency (occlusion)", "image": None,
                "caption": f"Not computed for this face: the saliency map is made for the "
                           f"first {saliency_max} faces only, because each one costs dozens "
                           "of model runs.",
                "params": {"max": saliency_max}})
        faces_out.append({**face.to_dict(), "index": i, "stages": face_stages})
    return {**numbers, "stages": stages, "faces": faces_out}
