"""The graph cut of §3.2 (Simonyan, Vedaldi & Zisserman 2013): Boykov & Jolly (2001) / GrabCut energy.

Energy: unary = -log likelihood of the pixel's colour under the foreground or background mixture;
pairwise = contrast-sensitive Potts ``γ·exp(-β‖z_p - z_q‖²)/dist(p, q)`` on the 8-neighbourhood with
``β = 1/(2⟨‖z_p - z_q‖²⟩)``. Minimised exactly by an s-t min cut with PyMaxflow (source = foreground).

``cut`` solves a whole grid with PyMaxflow's vectorised grid calls. ``banded_cut`` re-solves only a
band around a coarse solution's boundary at a finer resolution, everything outside the band fixed
to the coarse label (Lombaert et al. 2005, "A multilevel banded graph cuts method"): the full-grid
problem at 512 px has large low-contrast regions where Boykov-Kolmogorov's search takes seconds.
"""
from __future__ import annotations

from collections.abc import Callable

import maxflow
import numpy as np

# One structure per neighbour direction (right, down, down-right, down-left) so each direction gets
# its own weights array; ``symmetric=True`` adds the reverse edges: the full 8-neighbourhood.
DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1))
_STRUCTURES = tuple(np.pad([[1.0]], ((1 + dy, 1 - dy), (1 + dx, 1 - dx))) for dy, dx in DIRECTIONS)


def _pair_slices(shape: tuple[int, int], dy: int, dx: int):
    """Slices (p, q) of an (H, W) array such that q = p + (dy, dx), both inside the image."""
    h, w = shape
    return ((slice(0, h - dy), slice(max(0, -dx), w - max(0, dx))),
            (slice(dy, h), slice(max(0, dx), w - max(0, -dx))))


def pairwise_weights(image_hwc: np.ndarray, gamma: float) -> list[np.ndarray]:
    """Potts weights, one (H, W) float32 array per direction of ``DIRECTIONS``: the weight at p is
    that of the edge p → p + direction (zero where the neighbour falls outside the image)."""
    channels = np.ascontiguousarray(np.moveaxis(np.asarray(image_hwc, dtype=np.float32), 2, 0))  # (3, H, W)
    shape = channels.shape[1:]
    squared = []
    for dy, dx in DIRECTIONS:
        p, q = _pair_slices(shape, dy, dx)
        total = np.zeros(channels[0][p].shape, np.float32)
        for channel in channels:
            difference = channel[p] - channel[q]
            total += difference * difference
        squared.append(total)
    pairs = sum(s.size for s in squared)
    mean = sum(float(s.sum(dtype=np.float64)) for s in squared) / pairs if pairs else 0.0
    beta = np.float32(0.5 / mean if mean > 0 else 0.0)  # a uniform image: plain Potts
    weights = []
    for (dy, dx), s in zip(DIRECTIONS, squared):
        full = np.zeros(shape, np.float32)
        s *= -beta
        full[_pair_slices(shape, dy, dx)[0]] = np.float32(gamma / np.hypot(dy, dx)) * np.exp(s)
        weights.append(full)
    return weights


def _terminal_costs(unary_fg, unary_bg, hard_fg, hard_bg, edge_bound):
    """Non-negative (cost of foreground, cost of background, constant); hard pixels get a cost larger
    than all their Potts edges together (``edge_bound``), so no cut can flip them."""
    shift = np.minimum(unary_fg, unary_bg)
    cost_fg, cost_bg = unary_fg - shift, unary_bg - shift
    infinity = 1.0 + edge_bound + float(np.max(cost_fg + cost_bg, initial=0.0))
    cost_fg = np.where(hard_fg, 0.0, np.where(hard_bg, infinity, cost_fg))
    cost_bg = np.where(hard_bg, 0.0, np.where(hard_fg, infinity, cost_bg))
    return cost_fg, cost_bg, float(shift[~(hard_fg | hard_bg)].sum())


def cut(unary_fg: np.ndarray, unary_bg: np.ndarray, pairwise: list[np.ndarray],
        hard_fg: np.ndarray, hard_bg: np.ndarray) -> tuple[np.ndarray, float]:
    """One s-t min cut over the whole (H, W) grid: (is_foreground bool (H, W), energy of the labelling,
    hard pixels' unaries excluded)."""
    return GridCut(pairwise).solve(unary_fg, unary_bg, hard_fg, hard_bg)


class GridCut:
    """A grid graph whose Potts edges are built once and whose terminal costs change between solves.

    Each ``solve`` adds the change in terminal costs to the residual graph and re-runs the search
    with the previous trees (Kohli & Torr 2005, "dynamic graph cuts"): GrabCut's later rounds and a
    re-cut after a stroke change the costs a little and cost a fraction of a fresh cut.
    Not thread-safe: one per segmentation run.
    """

    def __init__(self, pairwise: list[np.ndarray]):
        shape = pairwise[0].shape
        self._edge_bound = 2.0 * sum(float(p.max(initial=0.0)) for p in pairwise)  # ≥ any pixel's 8 edges
        self._graph = maxflow.Graph[float](int(np.prod(shape)), 4 * int(np.prod(shape)))
        self._nodes = self._graph.add_grid_nodes(shape)
        for weights, structure in zip(pairwise, _STRUCTURES):
            self._graph.add_grid_edges(self._nodes, weights=weights, structure=structure, symmetric=True)
        self._costs = (np.zeros(shape), np.zeros(shape))  # (foreground, background) already in the graph
        self._solved = False

    def solve(self, unary_fg: np.ndarray, unary_bg: np.ndarray, hard_fg: np.ndarray, hard_bg: np.ndarray) -> tuple[np.ndarray, float]:
        """(is_foreground bool (H, W), energy) for these unaries; source = foreground, so a pixel's sink
        capacity is its cost of being foreground. ``get_grid_segments`` is True on the sink side."""
        cost_fg, cost_bg, constant = _terminal_costs(unary_fg, unary_bg, hard_fg, hard_bg, self._edge_bound)
        delta_fg, delta_bg = cost_fg - self._costs[0], cost_bg - self._costs[1]
        self._graph.add_grid_tedges(self._nodes, delta_bg, delta_fg)  # (source capacity, sink capacity)
        changed = self._nodes[(delta_fg != 0) | (delta_bg != 0)]
        if self._solved and changed.size:
            self._graph.mark_grid_nodes(changed)
        flow = self._graph.maxflow(reuse_trees=self._solved)
        self._costs, self._solved = (cost_fg, cost_bg), True
        is_sink_side = self._graph.get_grid_segments(self._nodes)
        return ~is_sink_side, float(flow) + constant


def boundary_band(is_foreground_hw: np.ndarray, radius: int) -> np.ndarray:
    """Pixels within ``radius`` (chessboard distance) of both a foreground and a background pixel."""
    from scipy import ndimage

    size = 2 * radius + 1  # square windows: separable, fast
    near_fg = ndimage.maximum_filter(is_foreground_hw.view(np.uint8), size=size, mode="nearest") > 0
    near_bg = ndimage.minimum_filter(is_foreground_hw.view(np.uint8), size=size, mode="nearest") == 0
    return near_fg & near_bg


def banded_cut(
    initial_fg: np.ndarray,
    band: np.ndarray,
    unaries: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    pairwise: list[np.ndarray],
    hard_fg: np.ndarray,
    hard_bg: np.ndarray,
) -> np.ndarray:
    """Re-cut the pixels of ``band`` (H, W) with the rest fixed to ``initial_fg``; hard seeds win.

    ``unaries(flat_indices)`` returns (unary_fg, unary_bg) for those pixels only, so likelihoods are
    computed on the band alone. Edges from a band pixel to a fixed pixel become terminal costs.
    """
    fixed_fg = (initial_fg & ~hard_bg) | hard_fg
    band = band & ~(hard_fg | hard_bg)
    band_flat = np.flatnonzero(band)
    if len(band_flat) == 0:
        return fixed_fg
    node_of = np.full(band.size, -1, np.int64)
    node_of[band_flat] = np.arange(len(band_flat))
    node_of = node_of.reshape(band.shape)
    unary_fg, unary_bg = unaries(band_flat)
    cost_fg, cost_bg = unary_fg - np.minimum(unary_fg, unary_bg), unary_bg - np.minimum(unary_fg, unary_bg)
    graph = maxflow.Graph[float](len(band_flat), 8 * len(band_flat))
    nodes = graph.add_nodes(len(band_flat))
    for (dy, dx), weights in zip(DIRECTIONS, pairwise):
        p, q = _pair_slices(band.shape, dy, dx)
        in_p, in_q, w = band[p], band[q], weights[p]
        both = in_p & in_q
        graph.add_edges(node_of[p][both], node_of[q][both], w[both], w[both])
        # One end fixed: the band end pays the edge when it takes the other label.
        for inside, band_end, fixed_end in ((in_p & ~in_q, p, q), (in_q & ~in_p, q, p)):
            ids, w_in = node_of[band_end][inside], w[inside]
            other_is_fg = fixed_fg[fixed_end][inside]
            cost_bg += np.bincount(ids[other_is_fg], w_in[other_is_fg], minlength=len(band_flat))
            cost_fg += np.bincount(ids[~other_is_fg], w_in[~other_is_fg], minlength=len(band_flat))
    graph.add_grid_tedges(nodes, cost_bg, cost_fg)  # (source capacity, sink capacity)
    graph.maxflow()
    is_fg = fixed_fg.copy()
    is_fg.flat[band_flat] = ~graph.get_grid_segments(nodes)  # True on the sink side = background
    return is_fg
