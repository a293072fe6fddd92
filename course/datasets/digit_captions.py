"""Captioned images of real handwritten digits, composed from scikit-learn's bundled scans.

``sklearn.datasets.load_digits`` ships 1,797 real 8x8 scans (the UCI "Optical Recognition of
Handwritten Digits" data, BSD-3 as shipped in scikit-learn, no download). :func:`compose` pastes
2 to 4 of them into distinct cells of a 2x4 grid of 8x8 cells (a 16x32 canvas), so a digit's
position varies from image to image. The caption names the digits in reading order (top row left
to right, then the bottom row), e.g. ``["three", "one", "four"]``, and every caption word carries
its gold box: the cell its digit was pasted into.

The scans are split once, by scan (:func:`split_scans`): the train, valid and test images use
disjoint scans, so test images hold scans the model never saw (the 1,797 scans are the UCI test
set, written by 13 people, and the writer of a scan is not recorded: the splits share writers, not
scans). Everything is generated in memory from fixed seeds: the same images on every machine,
nothing stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
GRID = (2, 4)            # rows, columns of cells
CELL = 8                 # a cell (and a scan) is 8x8 pixels
SPLIT_SEED = 18
SPLIT_FRACTIONS = (0.6, 0.2, 0.2)
SIZES = {"train": 6000, "valid": 500, "test": 1000}
SEEDS = {"train": 181, "valid": 182, "test": 183}


@dataclass(frozen=True)
class DigitCaptions:
    """Composed images with their captions and gold evidence.

    ``images [N, 16, 32]`` float32 in [0, 1]; for image ``i``, ``digits[i]`` (reading order),
    ``scans[i]`` (the index into ``load_digits()`` of each pasted scan), ``cells[i]`` (grid cell
    ``row * columns + column`` of each digit) and ``boxes[i]`` (``(top, left, bottom, right)``
    pixels, bottom/right exclusive) line up with the caption words.
    """

    images: np.ndarray
    digits: list[list[int]]
    scans: list[list[int]]
    cells: list[list[int]]
    boxes: list[list[tuple[int, int, int, int]]]

    def __len__(self) -> int:
        return len(self.digits)

    def captions(self) -> list[list[str]]:
        """Each image's caption words, in reading order (no end marker)."""
        return [[WORDS[d] for d in digits] for digits in self.digits]


@lru_cache(maxsize=1)
def load_scans() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 scans as float32 ``[N, 8, 8]`` in [0, 1] (raw values 0-16 divided by 16), and their labels."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return (data.images / 16.0).astype(np.float32), data.target.astype(np.int64)


def split_scans(seed: int = SPLIT_SEED, fractions: tuple[float, float, float] = SPLIT_FRACTIONS
                ) -> dict[str, np.ndarray]:
    """Disjoint, sorted scan indices per split: a seeded permutation cut 60 / 20 / 20."""
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"fractions must be three positive numbers summing to 1, got {fractions}")
    count = len(load_scans()[1])
    order = np.random.default_rng(seed).permutation(count)
    first = int(round(fractions[0] * count))
    second = first + int(round(fractions[1] * count))
    return {"train": np.sort(order[:first]), "valid": np.sort(order[first:second]),
            "test": np.sort(order[second:])}


def cell_box(cell: int) -> tuple[int, int, int, int]:
    """``(top, left, bottom, right)`` in pixels of a grid cell (bottom/right exclusive)."""
    if not 0 <= cell < GRID[0] * GRID[1]:
        raise ValueError(f"cell {cell} outside 0..{GRID[0] * GRID[1] - 1}")
    row, column = divmod(cell, GRID[1])
    return row * CELL, column * CELL, (row + 1) * CELL, (column + 1) * CELL


def compose(scan_pool: np.ndarray, count: int, seed: int, digits: tuple[int, int] = (2, 4)) -> DigitCaptions:
    """``count`` images, each with ``digits[0]`` to ``digits[1]`` scans from ``scan_pool`` in distinct cells.

    Deterministic in ``seed``: the number of digits, their cells and their scans come from
    ``numpy.random.default_rng(seed)``. The caption order is the reading order of the cells.
    """
    low, high = digits
    cells_total = GRID[0] * GRID[1]
    if not 1 <= low <= high <= cells_total:
        raise ValueError(f"digits per image must satisfy 1 <= low <= high <= {cells_total}, got {digits}")
    if count < 0 or len(scan_pool) == 0:
        raise ValueError(f"need count >= 0 and a non-empty scan pool, got {count} and {len(scan_pool)} scans")
    scans_all, labels = load_scans()
    rng = np.random.default_rng(seed)
    images = np.zeros((count, GRID[0] * CELL, GRID[1] * CELL), dtype=np.float32)
    out_digits, out_scans, out_cells, out_boxes = [], [], [], []
    for i in range(count):
        k = int(rng.integers(low, high + 1))
        cells = sorted(int(c) for c in rng.choice(cells_total, size=k, replace=False))
        scans = [int(s) for s in rng.choice(scan_pool, size=k)]
        boxes = [cell_box(c) for c in cells]
        for (top, left, bottom, right), scan in zip(boxes, scans):
            images[i, top:bottom, left:right] = scans_all[scan]
        out_digits.append([int(labels[s]) for s in scans])
        out_scans.append(scans)
        out_cells.append(cells)
        out_boxes.append(boxes)
    return DigitCaptions(images, out_digits, out_scans, out_cells, out_boxes)


def load_digit_captions(split: str, count: int | None = None) -> DigitCaptions:
    """A split's images (:data:`SIZES`, seeds :data:`SEEDS`) from that split's scans; ``count`` takes the first ones."""
    if split not in SIZES:
        raise KeyError(f"unknown split {split!r}; choose one of {tuple(SIZES)}")
    size = SIZES[split] if count is None else count
    return compose(split_scans()[split], size, SEEDS[split])


def region_masks(data: DigitCaptions, regions: tuple[int, int], length: int | None = None) -> np.ndarray:
    """``[N, length, rows * columns]`` bool: for caption word ``t`` of image ``i``, the feature-map
    regions whose pixel area overlaps the word's gold box (a ``regions`` grid over the canvas).

    Words beyond an image's caption (and the end marker) get an all-False row.
    """
    rows, columns = regions
    height, width = GRID[0] * CELL, GRID[1] * CELL
    if height % rows or width % columns:
        raise ValueError(f"a {rows}x{columns} region grid does not tile the {height}x{width} canvas")
    step_y, step_x = height // rows, width // columns
    length = max(len(d) for d in data.digits) if length is None else length
    masks = np.zeros((len(data), length, rows * columns), dtype=bool)
    for i, boxes in enumerate(data.boxes):
        for t, (top, left, bottom, right) in enumerate(boxes[:length]):
            grid = np.zeros((rows, columns), dtype=bool)
            grid[top // step_y:-(-bottom // step_y), left // step_x:-(-right // step_x)] = True
            masks[i, t] = grid.reshape(-1)
    return masks
