"""Weight sharing by clustering, then an integer grid (the two-stage method), and plain
linear quantization to compare with.

Stage 1 clusters one layer's weights into k = 2^bits shared values: k-means (Lloyd, in 1-D)
started from random weights (Forgy), from a uniform partition of [min, max], or from a
particle-swarm search; or the sorted-neighbour hierarchical clustering (sort, merge mutual
nearest neighbours until k clusters remain). Stage 2 maps the k centroids onto a uniform
integer grid of `grid_bits` (one scale per layer: the largest centroid becomes
+-(2^(grid_bits-1) - 1)), so every weight is an integer times the layer's scale and FINN
receives integer weights; a layer then holds at most k distinct integers (a `bits`-bit index
into a codebook), each `grid_bits` wide in the dense matrix unit.

Pruned weights (exact zeros, given by a mask) stay zero and keep one of the 2^bits codes.
All functions are numpy, deterministic for a given seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelError

METHODS = ("linear", "kmeans-random", "kmeans-uniform", "kmeans-pso", "hierarchical")


@dataclass
class Clustering:
    centroids: np.ndarray   # (k',) sorted float centroids actually used (k' <= k)
    labels: np.ndarray      # index into centroids per clustered weight
    iterations: int         # k-means iterations (merge rounds for hierarchical)


def _assign(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Nearest centroid of each value; c sorted ascending."""
    edges = (c[1:] + c[:-1]) / 2.0
    return np.searchsorted(edges, x)


def sse(x: np.ndarray, c: np.ndarray) -> float:
    c = np.sort(c)
    return float(((x - c[_assign(x, c)]) ** 2).sum())


def kmeans_1d(x: np.ndarray, init: np.ndarray, max_iter: int = 300) -> Clustering:
    """Lloyd's algorithm on scalars. An empty cluster keeps its centroid, as in Lloyd's
    original formulation (it is dropped at the end): a bad start leaves fewer clusters."""
    c = np.sort(np.asarray(init, dtype=np.float64))
    it = 0
    for it in range(1, max_iter + 1):
        idx = _assign(x, c)
        counts = np.bincount(idx, minlength=len(c))
        sums = np.bincount(idx, weights=x, minlength=len(c))
        new = np.where(counts > 0, sums / np.maximum(counts, 1), c)
        order = np.argsort(new, kind="stable")
        new = new[order]
        if np.array_equal(new, c):
            break
        c = new
    idx = _assign(x, c)
    used = np.unique(idx)
    remap = np.full(len(c), -1)
    remap[used] = np.arange(len(used))
    return Clustering(c[used], remap[idx], it)


def init_random(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Forgy: k distinct weights drawn at random."""
    vals = np.unique(x)
    return rng.choice(vals, size=min(k, len(vals)), replace=False)


def init_uniform(x: np.ndarray, k: int) -> np.ndarray:
    """Uniform partition: k centroids evenly spaced over [min, max] (Deep Compression's linear init)."""
    return np.linspace(x.min(), x.max(), k)


def init_pso(x: np.ndarray, k: int, rng: np.random.Generator, particles: int = 24, iterations: int = 40,
             sample: int = 20000, inertia: float = 0.72, c1: float = 1.49, c2: float = 1.49) -> np.ndarray:
    """Particle-swarm optimisation of k centroids for the quantization error (sum of squared
    distances to the nearest centroid, on a fixed random sample of the weights); the best
    particle starts k-means. Standard global-best PSO with constriction-style coefficients."""
    xs = x if len(x) <= sample else rng.choice(x, size=sample, replace=False)
    lo, hi = float(x.min()), float(x.max())
    span = hi - lo or 1.0
    pos = np.sort(rng.uniform(lo, hi, size=(particles, k)), axis=1)
    pos[0] = np.linspace(lo, hi, k)  # one particle at the uniform partition
    vel = rng.uniform(-span, span, size=(particles, k)) * 0.1
    fit = np.array([sse(xs, p) for p in pos])
    pbest, pfit = pos.copy(), fit.copy()
    g = int(np.argmin(pfit))
    for _ in range(iterations):
        r1, r2 = rng.random((particles, k)), rng.random((particles, k))
        vel = inertia * vel + c1 * r1 * (pbest - pos) + c2 * r2 * (pbest[g] - pos)
        pos = np.sort(np.clip(pos + vel, lo, hi), axis=1)
        fit = np.array([sse(xs, p) for p in pos])
        better = fit < pfit
        pbest[better], pfit[better] = pos[better], fit[better]
        g = int(np.argmin(pfit))
    return pbest[g]


def hierarchical_sorted(x: np.ndarray, k: int) -> Clustering:
    """Sorted-neighbour agglomerative clustering in 1-D: start from the distinct values
    (weighted by their counts); each round, every pair of adjacent clusters that are each
    other's nearest neighbour (centroid distance) merges, the closest pairs first and no
    more than needed to reach k clusters."""
    vals, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = vals * counts
    cnt = counts.astype(np.float64)
    member = np.arange(len(vals))          # distinct value -> cluster
    rounds = 0
    while len(sums) > k:
        rounds += 1
        c = sums / cnt
        gap = np.diff(c)                   # gap[i]: distance between clusters i and i+1
        left = np.concatenate(([np.inf], gap))   # distance to the left neighbour
        right = np.concatenate((gap, [np.inf]))  # distance to the right neighbour
        # i and i+1 are mutual nearest neighbours: i's nearest is right, i+1's nearest is left
        mutual = np.nonzero((right[:-1] <= left[:-1]) & (left[1:] < right[1:]))[0]
        if len(mutual) == 0:               # all gaps equal: merge the first closest pair
            mutual = np.array([int(np.argmin(gap))])
        need = len(sums) - k
        if len(mutual) > need:
            mutual = mutual[np.argsort(gap[mutual], kind="stable")[:need]]
        merge = np.zeros(len(sums), dtype=bool)
        merge[mutual + 1] = True           # cluster i+1 joins cluster i
        new_id = np.cumsum(~merge) - 1
        sums = np.bincount(new_id, weights=sums)
        cnt = np.bincount(new_id, weights=cnt)
        member = new_id[member]
    return Clustering(sums / cnt, member[inverse], rounds)


def cluster(x: np.ndarray, k: int, method: str, seed: int = 0) -> Clustering:
    """Stage 1 on a flat float array: one of METHODS but linear."""
    x = np.asarray(x, dtype=np.float64).ravel()
    if len(x) == 0:
        return Clustering(np.zeros(0), np.zeros(0, dtype=np.int64), 0)
    rng = np.random.default_rng(seed)
    if method == "hierarchical":
        return hierarchical_sorted(x, k)
    if method == "kmeans-random":
        init = init_random(x, k, rng)
    elif method == "kmeans-uniform":
        init = init_uniform(x, k)
    elif method == "kmeans-pso":
        init = init_pso(x, k, rng)
    else:
        raise ModelError(f"unknown clustering method {method!r}; valid: {', '.join(METHODS[1:])}")
    return kmeans_1d(x, init)


def to_grid(centroids: np.ndarray, grid_bits: int) -> tuple[np.ndarray, float]:
    """Stage 2: centroids -> integers on a symmetric `grid_bits` grid; (integers, scale)."""
    qmax = 2 ** (grid_bits - 1) - 1
    top = float(np.abs(centroids).max()) if len(centroids) else 0.0
    if top == 0.0:
        return np.zeros(len(centroids), dtype=np.int64), 1.0
    scale = top / qmax
    return np.clip(np.rint(centroids / scale), -qmax, qmax).astype(np.int64), scale


@dataclass
class SharedLayer:
    ints: np.ndarray        # integer weights, the layer's shape
    scale: float            # weight = ints * scale
    distinct: int           # distinct integers in the layer (zero included)
    iterations: int


def share_weights(w: np.ndarray, bits: int, method: str, grid_bits: int = 8, seed: int = 0,
                  mask: np.ndarray | None = None) -> SharedLayer:
    """One layer, both stages: `w` (float, any shape) -> integers on a `grid_bits` grid with
    at most 2^bits distinct values. `mask` (True = kept) keeps pruned weights at zero; zero
    then takes one of the codes."""
    if not 1 <= bits <= grid_bits:
        raise ModelError(f"weight sharing with {bits} bits on a {grid_bits}-bit grid: need 1 <= bits <= grid_bits")
    w = np.asarray(w, dtype=np.float64)
    keep = np.ones(w.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    pruned = not keep.all()
    k = 2 ** bits - (1 if pruned else 0)
    cl = cluster(w[keep], k, method, seed)
    ints_c, scale = to_grid(cl.centroids, grid_bits)
    ints = np.zeros(w.shape, dtype=np.int64)
    ints[keep] = ints_c[cl.labels]
    return SharedLayer(ints, scale, int(len(np.unique(ints))), cl.iterations)
