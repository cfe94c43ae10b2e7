"""Reading order of faces: rows top to bottom, left to right within a row.

People in a group photo stand in rows whose heads are not exactly level, so sorting by
``y`` then ``x`` would zig-zag. A face joins a row when its vertical extent overlaps the
row's by at least half of the smaller height (the row's extent is the median top and
bottom of its faces, so one tall or low face does not merge two rows); rows are then read
top to bottom and each row left to right. The 1-based position in this order is the face
number shown by the CLI table, JSON/CSV, annotated images and the API.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Fraction of the smaller of two heights two faces must share vertically to be in a row.
ROW_OVERLAP = 0.5


def reading_order(boxes: Sequence[Sequence[float]]) -> list[int]:
    """Indices of ``boxes`` ((x, y, w, h) each) in reading order."""
    boxes = [tuple(float(v) for v in b[:4]) for b in boxes]
    rows: list[list[int]] = []
    # place faces from the top down, each into the best-overlapping existing row
    for i in sorted(range(len(boxes)), key=lambda k: (boxes[k][1] + boxes[k][3] / 2,
                                                       boxes[k][0])):
        x, y, w, h = boxes[i]
        best, best_overlap = None, 0.0
        for r, row in enumerate(rows):
            top = float(np.median([boxes[k][1] for k in row]))
            bottom = float(np.median([boxes[k][1] + boxes[k][3] for k in row]))
            shared = min(bottom, y + h) - max(top, y)
            need = ROW_OVERLAP * min(h, bottom - top)
            if shared >= need and shared > best_overlap:
                best, best_overlap = r, shared
        if best is None:
            rows.append([i])
        else:
            rows[best].append(i)

    def centre_y(row: list[int]) -> float:
        return float(np.median([boxes[k][1] + boxes[k][3] / 2 for k in row]))

    out: list[int] = []
    for row in sorted(rows, key=centre_y):
        out.extend(sorted(row, key=lambda k: (boxes[k][0] + boxes[k][2] / 2, boxes[k][1])))
    return out
