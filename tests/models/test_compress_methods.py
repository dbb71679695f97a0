"""models.compress: the algorithms (clustering, grids, pruning schedules, neuron removal,
mixed-precision selection) and the checkpoints they write."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models import ModelError, get_preset, load_checkpoint, load_mnist, shipped_checkpoint
from models.compress import cluster, core, mixed
from models.train import evaluate


@pytest.fixture(scope="module")
def base():
    model, _ = load_checkpoint(shipped_checkpoint("tfc-w8a8"))
    return model


@pytest.fixture(scope="module")
def test_images():
    te = load_mnist("test")
    return te.x[:2000], te.y[:2000]


def test_linear_presets_family():
    p = get_preset("w3a8")
    assert (p.weight_bits, p.act_bits, p.weight_kind) == (3, 8, "int")
    for bad in ("w9a8", "w1a8", "w3a1", "w3"):
        with pytest.raises(ModelError, match="wBaC"):
            get_preset(bad)


def test_kmeans_finds_separated_clusters():
    rng = np.random.default_rng(0)
    means = np.array([-1.0, 0.2, 2.0])
    x = np.concatenate([m + 0.01 * rng.standard_normal(500) for m in means])
    for init in (cluster.init_uniform(x, 3), cluster.init_pso(x, 3, rng)):
        cl = cluster.kmeans_1d(x, init)
        assert np.allclose(cl.centroids, means, atol=0.01)
        assert np.array_equal(np.bincount(cl.labels), [500, 500, 500])


def test_kmeans_drops_empty_clusters():
    x = np.array([0.0, 0.0, 1.0, 1.0])
    cl = cluster.kmeans_1d(x, np.array([0.0, 1.0, 50.0]))  # 50 attracts nothing
    assert cl.centroids.tolist() == [0.0, 1.0]
    assert cl.labels.max() == 1


def test_pso_never_worse_than_uniform_start():
    rng = np.random.default_rng(1)
    x = rng.laplace(size=20000)
    for k in (4, 8, 16):
        assert cluster.sse(x, cluster.init_pso(x, k, np.random.default_rng(2))) <= cluster.sse(x, cluster.init_uniform(x, k))


def test_hierarchical_merges_mutual_neighbours_to_k():
    x = np.array([0.0, 0.1, 5.0, 5.1, 10.0, 10.1, 10.1])
    cl = cluster.hierarchical_sorted(x, 3)
    assert np.allclose(cl.centroids, [0.05, 5.05, (10.0 + 10.1 + 10.1) / 3])
    assert cl.labels.tolist() == [0, 0, 1, 1, 2, 2, 2]
    rng = np.random.default_rng(0)
    for k in (2, 7, 64):
        assert len(cluster.hierarchical_sorted(rng.standard_normal(5000), k).centroids) == k


def test_share_weights_grid_codes_and_mask():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((32, 40))
    mask = rng.random(w.shape) > 0.7
    for method in cluster.METHODS[1:]:
        sl = cluster.share_weights(w * mask, 3, method, grid_bits=8, mask=mask)
        assert np.all(sl.ints[~mask] == 0)
        assert len(np.unique(sl.ints)) <= 2 ** 3          # zero takes one of the 8 codes
        assert np.abs(sl.ints).max() == 127                # the largest centroid on the grid's edge
        assert np.abs(sl.ints * sl.scale - w * mask)[mask].mean() < 0.5
    with pytest.raises(ModelError, match="grid"):
        cluster.share_weights(w, 9, "hierarchical", grid_bits=8)


def test_linear_and_shared_models_hold_grid_integers(base, test_images):
    x, y = test_images
    lin = core.linear(base, "tfc-w8a8", 3)
    assert lin.name == "tfc-w3a8" and lin.arch_kwargs["per_channel"] is False
    for lay in core.weight_layers(lin.model):
        assert np.abs(core.int_weights(lay)).max() <= 3
    sh = core.share(base, "tfc-w8a8", 3, "kmeans-pso")
    assert sh.name == "tfc-w8a8"
    for lay in core.weight_layers(sh.model):
        assert len(np.unique(core.int_weights(lay))) <= 8
    # post-training 3-bit on TFC: weight sharing keeps most of the accuracy, linear loses more
    assert evaluate(sh.model, x, y) > evaluate(lin.model, x, y)
    with pytest.raises(ModelError, match="linear integer base"):
        core.linear(load_checkpoint(shipped_checkpoint("tfc-w1a1"))[0], "tfc-w1a1", 4)


def test_compressed_checkpoint_round_trip(base, tmp_path, test_images):
    x, _ = test_images
    sh = core.share(base, "tfc-w8a8", 2, "kmeans-uniform")
    sh.save(tmp_path / "m.pt", {"test_accuracy": 0.0})
    again, meta = load_checkpoint(tmp_path / "m.pt", "tfc-w8a8")
    assert meta["arch_kwargs"]["per_channel"] is False and meta["compression"]["method"] == "kmeans-uniform"
    with torch.no_grad():
        assert torch.equal(again(torch.from_numpy(x[:200])), sh.model(torch.from_numpy(x[:200])))


def test_gradual_schedule():
    s = [core.sparsity_schedule(t, 0.0, 0.8, 10, 5, 4) for t in range(0, 40)]
    assert s[10] == 0.0 and s[30] == 0.8 and s[39] == 0.8
    assert all(a <= b for a, b in zip(s, s[1:]))
    assert s[20] == pytest.approx(0.8 + (0.0 - 0.8) * (1 - 10 / 20) ** 3)


def test_magnitude_pruner_reaches_and_keeps_sparsity(base):
    model = core._rebuild(base, "tfc-w8a8", "w8a8")[0]
    pr = core.MagnitudePruner(model, 0.75, 0.0, t0=0, n=4, dt=2)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(16, 784, generator=gen), torch.randint(0, 10, (16,), generator=gen)
    for _ in range(12):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        pr.step()
    for lay, s in zip(core.weight_layers(model), pr.sparsity()):
        assert s == pytest.approx(0.75, abs=1.0 / lay.weight.numel())
        assert torch.isfinite(lay.weight).all()
        assert float((lay.weight == 0).float().mean()) >= s


def test_removing_dead_neurons_changes_nothing(base, test_images):
    """Neurons whose BatchNorm (gamma, beta) are zero output 0: removing them (rows, BN
    entries, the next layer's columns) leaves the network's outputs unchanged, as long as
    the next layer's per-channel weight scales stay (here: their columns are zero too)."""
    x, _ = test_images
    model = core._rebuild(base, "tfc-w8a8", "w8a8")[0]
    pairs = core._hidden_pairs(model)
    with torch.no_grad():
        for i, (_, bn, nxt) in enumerate(pairs):
            dead = torch.arange(i, 64, 3)
            bn.weight[dead] = 0.0
            bn.bias[dead] = 0.0
            nxt.weight[:, dead] = 0.0
    prox = core.group_lasso_prox(model, 1e-3)
    prox()  # zero groups stay zero, the others shrink a little
    keep = core.select_neurons(model, 1e-6, multiple=1)
    assert [len(k) for k in keep] == [64 - len(range(i, 64, 3)) for i in range(3)]
    small = core.shrink_mlp(model, "tfc-w8a8", keep)
    assert small.arch_kwargs["widths"] == [len(k) for k in keep]
    with torch.no_grad():
        a, b = model(torch.from_numpy(x)), small.model(torch.from_numpy(x))
    assert torch.equal(a.argmax(1), b.argmax(1))
    assert torch.allclose(a, b, atol=1e-4)


def test_mixed_selection_respects_budget(base):
    relaxed = mixed.RelaxedMLP(base)
    budget = relaxed.cost_of([3, 3, 3, 3])
    with torch.no_grad():
        relaxed.alpha.zero_()
        relaxed.alpha[:, relaxed.candidates.index(8)] = 5.0  # every layer wants 8 bits
    bits = mixed.select(relaxed, budget)
    assert relaxed.cost_of(bits) <= budget
    assert bits[0] <= 3 and max(bits) > 3  # the big first layer pays for wider small layers
    out = relaxed(torch.rand(4, 784))
    assert out.shape == (4, 10)
    out.sum().backward()
    assert relaxed.alpha.grad is not None and torch.isfinite(relaxed.alpha.grad).all()
