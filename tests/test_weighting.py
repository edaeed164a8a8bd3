"""Tests for mtlkit.weighting: every strategy against a closed form or an independent reference."""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import minimize
from torch import nn

from mtlkit.weighting import (
    MGDA,
    WEIGHTINGS,
    CAGrad,
    DynamicWeightAverage,
    GradNorm,
    PCGrad,
    RandomLossWeighting,
    UncertaintyWeighting,
    cagrad_weights,
    gradient_diagnostics,
    make_weighting,
    min_norm_frank_wolfe,
    min_norm_two,
    min_norm_weights,
    pcgrad_coefficients,
    task_gradients,
)

TASKS = ("click", "rating")
SURGERY = [name for name, cls in WEIGHTINGS.items() if cls.requires_grads and name != "gradnorm"]

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors


class TinyMultiTask(nn.Module):
    """A shared trunk and one linear tower per task; losses are masked-mean-like scalars."""

    def __init__(self, tasks=TASKS, d_in: int = 5, d_hidden: int = 6) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(d_in, d_hidden), nn.Tanh(), nn.Linear(d_hidden, d_hidden))
        self.towers = nn.ModuleDict({t: nn.Linear(d_hidden, 1) for t in tasks})
        self.hidden: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        self.hidden = self.trunk(x)
        return {
            t: F.mse_loss(tower(self.hidden).squeeze(-1), y[:, i] * (i + 1))
            for i, (t, tower) in enumerate(self.towers.items())
        }

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.trunk.parameters())

    def last_shared_parameters(self) -> list[nn.Parameter]:
        return list(self.trunk[-1].parameters())


@pytest.fixture
def setup():
    torch.manual_seed(0)
    model = TinyMultiTask()
    x, y = torch.randn(32, 5), torch.randn(32, len(TASKS))
    return model, x, y


def manual_task_grads(model, x, y):
    """Per-task gradients of the trunk by separate full backward passes (the reference)."""
    rows = []
    for t in TASKS:
        m = copy.deepcopy(model)
        m(x, y)[t].backward()
        rows.append(torch.cat([p.grad.reshape(-1) for p in m.shared_parameters()]))
    return torch.stack(rows)  # (T, P)


def flat_grad(params):
    return torch.cat([p.grad.reshape(-1) for p in params])


def random_gram(rng, n_tasks, dim=7, conflict=True):
    g = rng.normal(size=(n_tasks, dim))
    if conflict:
        g[1] = -0.7 * g[0] + 0.3 * rng.normal(size=dim)
    g *= rng.uniform(0.1, 10.0, size=(n_tasks, 1))
    return g, g @ g.T


# ---------------------------------------------------------------------------------------
# Registry and errors
# ---------------------------------------------------------------------------------------


def test_registry_has_every_strategy_and_builds_each():
    assert set(WEIGHTINGS) == {
        "equal", "static", "uncertainty", "dwa", "gradnorm", "rlw", "pcgrad", "mgda", "cagrad",
    }
    for name in WEIGHTINGS:
        strategy = make_weighting(name, TASKS)
        assert strategy.task_names == TASKS
        assert strategy.last_diagnostics == {}


def test_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="weighting must be one of") as info:
        make_weighting("nash", TASKS)
    assert "cagrad" in str(info.value) and "'nash'" in str(info.value)


def test_unexpected_kwarg_is_named():
    with pytest.raises(TypeError, match="temprature") as info:
        make_weighting("dwa", TASKS, temprature=2.0)
    assert "temperature" in str(info.value)  # lists what it accepts


@pytest.mark.parametrize(
    ("name", "kwargs", "argument"),
    [
        ("dwa", {"temperature": 0.0}, "temperature"),
        ("dwa", {"temperature": float("inf")}, "temperature"),
        ("gradnorm", {"alpha": -1.0}, "alpha"),
        ("gradnorm", {"lr": 0.0}, "lr"),
        ("cagrad", {"c": -0.1}, "c"),
        ("cagrad", {"c": "big"}, "c"),
        ("mgda", {"normalization": "l3"}, "normalization"),
        ("mgda", {"max_iter": 0}, "max_iter"),
        ("mgda", {"tol": -1.0}, "tol"),
        ("uncertainty", {"task_kinds": {"views": "regression"}}, "task_kinds"),
        ("uncertainty", {"task_kinds": {"click": "poisson"}}, "task_kinds"),
        ("uncertainty", {"init_log_var": float("nan")}, "init_log_var"),
        ("rlw", {"seed": "zero"}, "seed"),
        ("pcgrad", {"seed": 1.5}, "seed"),
        ("static", {"weights": [-1.0, 1.0]}, "weights"),
        ("static", {"weights": {"views": 2.0}}, "weights"),
    ],
)
def test_bad_arguments_name_the_argument(name, kwargs, argument):
    with pytest.raises((ValueError, TypeError)) as info:
        make_weighting(name, TASKS, **kwargs)
    assert str(info.value).startswith(argument)


def test_bad_task_names_and_missing_losses(setup):
    with pytest.raises(ValueError, match="task_names"):
        make_weighting("equal", ["a", "a"])
    with pytest.raises(ValueError, match="task_names"):
        make_weighting("mgda", [])
    model, x, y = setup
    losses = model(x, y)
    del losses["rating"]
    with pytest.raises(ValueError, match="losses must have an entry for every task"):
        make_weighting("pcgrad", TASKS).backward(losses, model.shared_parameters())
    with pytest.raises(ValueError, match="epoch_losses"):
        make_weighting("dwa", TASKS).end_epoch({"click": 1.0})


# ---------------------------------------------------------------------------------------
# Per-task gradients, diagnostics, and the backward mechanics
# ---------------------------------------------------------------------------------------


def test_task_gradients_match_separate_backwards_and_unused_give_zeros(setup):
    model, x, y = setup
    reference = manual_task_grads(model, x, y)
    losses = model(x, y)
    unused = nn.Parameter(torch.randn(3))
    constant = torch.tensor(2.0)
    grads = task_gradients([losses[t] for t in TASKS] + [constant], [*model.shared_parameters(), unused])
    assert grads.shape == (3, reference.shape[1] + 3)
    torch.testing.assert_close(grads[:2, :-3], reference)
    assert torch.all(grads[:, -3:] == 0) and torch.all(grads[2] == 0)


def test_diagnostics_equal_manual_cosine_and_norms(setup):
    model, x, y = setup
    reference = manual_task_grads(model, x, y)
    strategy = make_weighting("equal", TASKS)
    strategy.backward(model(x, y), model.shared_parameters(), diagnostics=True)
    d = strategy.last_diagnostics
    assert set(d) == {"grad_norm/click", "grad_norm/rating", "grad_cos/click/rating"}
    cos = F.cosine_similarity(reference[0], reference[1], dim=0)
    assert d["grad_cos/click/rating"] == pytest.approx(float(cos), abs=1e-5)
    assert d["grad_norm/rating"] == pytest.approx(float(reference[1].norm()), rel=1e-5)
    # without the flag, nothing is computed
    strategy.backward(model(x, y), model.shared_parameters())
    assert strategy.last_diagnostics == {}


def test_diagnostics_key_order_and_zero_gradient():
    grads = torch.tensor([[1.0, 0.0], [0.0, 0.0], [-1.0, 1.0]])
    d = gradient_diagnostics(["a", "b", "c"], grads)
    assert list(k for k in d if k.startswith("grad_cos")) == ["grad_cos/a/b", "grad_cos/a/c", "grad_cos/b/c"]
    assert d["grad_cos/a/b"] == 0.0  # zero gradient → reported as 0
    assert d["grad_cos/a/c"] == pytest.approx(-1 / math.sqrt(2))


@pytest.mark.parametrize("diagnostics", [False, True])
@pytest.mark.parametrize(("name", "kwargs", "weights"), [
    ("equal", {}, (1.0, 1.0)),
    ("static", {"weights": {"rating": 0.25}}, (1.0, 0.25)),
])
def test_equal_and_static_give_manual_backward_grads(setup, name, kwargs, weights, diagnostics):
    model, x, y = setup
    reference = copy.deepcopy(model)
    ref_losses = reference(x, y)
    (weights[0] * ref_losses["click"] + weights[1] * ref_losses["rating"]).backward()
    strategy = make_weighting(name, TASKS, **kwargs)
    used = strategy.backward(model(x, y), model.shared_parameters(), diagnostics=diagnostics)
    assert used == dict(zip(TASKS, weights))
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad)


def test_backward_accumulates_into_existing_grads(setup):
    model, x, y = setup
    fresh = copy.deepcopy(model)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    make_weighting("mgda", TASKS).backward(model(x, y), model.shared_parameters())
    make_weighting("mgda", TASKS).backward(fresh(x, y), fresh.shared_parameters())
    for p, q in zip(model.parameters(), fresh.parameters()):
        torch.testing.assert_close(p.grad, q.grad + 1)


@pytest.mark.parametrize("name", SURGERY)
def test_surgery_sets_shared_direction_and_plain_sum_on_towers(setup, name):
    model, x, y = setup
    reference_grads = manual_task_grads(model, x, y)
    reference = copy.deepcopy(model)
    sum(reference(x, y).values()).backward()

    strategy = make_weighting(name, TASKS)
    losses = model(x, y)
    trunk_passes = []
    model.hidden.register_hook(lambda g: trunk_passes.append(1))
    weights = strategy.backward(losses, model.shared_parameters(), diagnostics=True)

    w = torch.tensor([weights[t] for t in TASKS])
    torch.testing.assert_close(flat_grad(model.shared_parameters()), w @ reference_grads)
    for p, q in zip(model.towers.parameters(), reference.towers.parameters()):
        torch.testing.assert_close(p.grad, q.grad)
    # T per-task passes through the trunk output, none more (diagnostics reuse them)
    assert len(trunk_passes) == len(TASKS)


def test_loss_weighting_with_diagnostics_reuses_task_gradients(setup):
    model, x, y = setup
    losses = model(x, y)
    trunk_passes = []
    model.hidden.register_hook(lambda g: trunk_passes.append(1))
    make_weighting("static", TASKS, weights=[2.0, 0.5]).backward(
        losses, model.shared_parameters(), diagnostics=True
    )
    assert len(trunk_passes) == len(TASKS)


@pytest.mark.parametrize("name", sorted(WEIGHTINGS))
def test_no_shared_parameters_reduces_to_sum_of_losses(setup, name):
    model, x, y = setup
    reference = copy.deepcopy(model)
    sum(reference(x, y).values()).backward()
    strategy = make_weighting(name, TASKS)
    weights = strategy.backward(model(x, y), [], last_shared_parameters=[], diagnostics=True)
    assert weights == {t: 1.0 for t in TASKS}
    assert strategy.last_diagnostics == {}
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad)


# ---------------------------------------------------------------------------------------
# MGDA
# ---------------------------------------------------------------------------------------


def brute_force_min_norm_two(g):
    gamma = np.linspace(0.0, 1.0, 200_001)[:, None]
    points = gamma * g[0] + (1 - gamma) * g[1]
    return float(gamma[np.argmin((points**2).sum(1)), 0])


def test_mgda_two_tasks_equals_analytic_solution():
    rng = np.random.default_rng(0)
    for trial in range(12):
        g, gram = random_gram(rng, 2, conflict=trial % 2 == 0)
        alpha = min_norm_two(gram)
        g1, g2 = g
        analytic = np.clip((g2 - g1) @ g2 / ((g1 - g2) @ (g1 - g2)), 0, 1)
        assert alpha[0] == pytest.approx(analytic, abs=1e-12)
        assert alpha.sum() == pytest.approx(1.0)
        assert alpha[0] == pytest.approx(brute_force_min_norm_two(g), abs=1e-5)
        # the Frank-Wolfe path reaches the same point with two tasks
        np.testing.assert_allclose(min_norm_frank_wolfe(gram), alpha, atol=1e-9)


def kkt_violation(gram, alpha):
    """Min-norm optimality: g_t·d >= ‖d‖² for all t, with equality where α_t > 0."""
    gd = gram @ alpha
    d2 = alpha @ gd
    scale = np.diag(gram).max()
    lower = max(0.0, float(d2 - gd.min()))  # any g_t with g_t·d < ‖d‖² violates
    active = float(np.abs(gd[alpha > 1e-6] - d2).max())
    return max(lower, active) / scale


@pytest.mark.parametrize("n_tasks", [3, 4])
def test_mgda_frank_wolfe_satisfies_kkt_and_matches_scipy(n_tasks):
    rng = np.random.default_rng(n_tasks)
    for _ in range(20):
        g, gram = random_gram(rng, n_tasks)
        alpha = min_norm_weights(gram)
        assert np.all(alpha >= 0) and alpha.sum() == pytest.approx(1.0)
        assert kkt_violation(gram, alpha) < 1e-4
        reference = minimize(
            lambda w: w @ gram @ w, np.full(n_tasks, 1 / n_tasks), jac=lambda w: 2 * gram @ w,
            bounds=[(0, 1)] * n_tasks, method="SLSQP",
            constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}], options={"ftol": 1e-15},
        )
        assert alpha @ gram @ alpha <= reference.fun + 1e-6 * np.diag(gram).max()


def test_mgda_strategy_update_is_the_min_norm_point(setup):
    model, x, y = setup
    grads = manual_task_grads(model, x, y).double()
    weights = make_weighting("mgda", TASKS).backward(model(x, y), model.shared_parameters())
    alpha = min_norm_two((grads @ grads.T).numpy())
    assert [weights[t] for t in TASKS] == pytest.approx(list(2 * alpha), abs=1e-5)
    d = torch.from_numpy(alpha) @ grads
    # every task decreases along d: g_t·d >= ‖d‖² > 0
    assert torch.all(grads @ d >= (d @ d) * (1 - 1e-4))


@pytest.mark.parametrize("normalization", ["l2", "loss", "loss+"])
def test_mgda_normalization_solves_on_scaled_gradients(normalization):
    rng = np.random.default_rng(1)
    g, gram = random_gram(rng, 2)
    losses = np.array([0.3, 4.0])
    norms = np.linalg.norm(g, axis=1)
    scale = {"l2": norms, "loss": losses, "loss+": losses * norms}[normalization]
    expected = min_norm_two((g / scale[:, None]) @ (g / scale[:, None]).T)
    got = MGDA(TASKS, normalization=normalization).gradient_weights(gram, losses)
    np.testing.assert_allclose(got, 2 * expected, atol=1e-9)


# ---------------------------------------------------------------------------------------
# PCGrad
# ---------------------------------------------------------------------------------------


def pcgrad_reference(g, orders):
    """Yu et al. (2020), Algorithm 1, on the vectors themselves."""
    projected = []
    for i, order in enumerate(orders):
        gi = g[i].copy()
        for j in order:
            dot = gi @ g[j]
            if dot < 0:
                gi = gi - dot / (g[j] @ g[j]) * g[j]
        projected.append(gi)
    return np.stack(projected)


def test_pcgrad_coefficients_match_the_vector_algorithm():
    rng = np.random.default_rng(2)
    for n_tasks in (2, 3, 4):
        for _ in range(10):
            g = rng.normal(size=(n_tasks, 6))
            orders = [list(rng.permutation([j for j in range(n_tasks) if j != i])) for i in range(n_tasks)]
            coefficients = pcgrad_coefficients(g @ g.T, orders)
            np.testing.assert_allclose(coefficients @ g, pcgrad_reference(g, orders), atol=1e-10)


def test_pcgrad_leaves_non_conflicting_gradients_untouched():
    g = np.array([[1.0, 0.2, 0.0], [0.5, 1.0, 0.1], [0.0, 0.3, 2.0]])  # all dot products >= 0
    assert np.all(g @ g.T >= 0)
    strategy = PCGrad(("a", "b", "c"), seed=3)
    np.testing.assert_allclose(strategy.gradient_weights(g @ g.T, np.ones(3)), np.ones(3))


def test_pcgrad_projection_is_orthogonal_and_removes_two_task_conflict():
    rng = np.random.default_rng(3)
    for _ in range(20):
        g, gram = random_gram(rng, 2)
        assert g[0] @ g[1] < 0
        projected = pcgrad_coefficients(gram, [[1], [0]]) @ g
        assert projected[0] @ g[1] == pytest.approx(0.0, abs=1e-9 * np.abs(gram).max())
        assert projected[1] @ g[0] == pytest.approx(0.0, abs=1e-9 * np.abs(gram).max())
        assert projected[0] @ projected[1] >= -1e-9 * np.abs(gram).max()
    # and the strategy's update is the sum of the projections
    strategy = PCGrad(TASKS)
    np.testing.assert_allclose(
        strategy.gradient_weights(gram, np.ones(2)) @ g, projected.sum(0), atol=1e-9
    )


def test_pcgrad_random_order_is_seeded():
    rng = np.random.default_rng(4)
    g = rng.normal(size=(4, 5))
    g[1] = -g[0] + 0.1 * g[1]
    g[2] = -g[0] - g[3]
    tasks = ("a", "b", "c", "d")
    first = [PCGrad(tasks, seed=7).gradient_weights(g @ g.T, np.ones(4)) for _ in range(2)]
    np.testing.assert_array_equal(first[0], first[1])
    strategy = PCGrad(tasks, seed=7)
    draws = {tuple(np.round(strategy.gradient_weights(g @ g.T, np.ones(4)), 8)) for _ in range(20)}
    assert len(draws) > 1  # orders differ from step to step


# ---------------------------------------------------------------------------------------
# CAGrad
# ---------------------------------------------------------------------------------------


def test_cagrad_with_c_zero_is_the_mean_gradient(setup):
    rng = np.random.default_rng(5)
    g, gram = random_gram(rng, 3)
    np.testing.assert_allclose(cagrad_weights(gram, 0.0) @ g, g.mean(0))
    model, x, y = setup
    grads = manual_task_grads(model, x, y)
    weights = CAGrad(TASKS, c=0.0).backward(model(x, y), model.shared_parameters())
    assert weights == {t: 1.0 for t in TASKS}
    torch.testing.assert_close(flat_grad(model.shared_parameters()), grads.sum(0))  # = T · mean


@pytest.mark.parametrize("c", [0.2, 0.4, 0.8])
def test_cagrad_solves_its_dual_and_maximises_the_worst_task(c):
    rng = np.random.default_rng(int(c * 10))
    for n_tasks in (2, 3):
        g, gram = random_gram(rng, n_tasks)
        beta = cagrad_weights(gram, c)
        d = (1 + c**2) * (beta @ g)  # the paper's d, before the official rescaling
        g0 = g.mean(0)
        radius = c * np.linalg.norm(g0)
        # d lies on the ball ‖d − g0‖ = c‖g0‖ ...
        assert np.linalg.norm(d - g0) == pytest.approx(radius, rel=1e-4)
        # ... and no point of the ball improves the worst task more (random directions)
        u = rng.normal(size=(20_000, g.shape[1]))
        candidates = g0 + radius * u / np.linalg.norm(u, axis=1, keepdims=True)
        assert (g @ d).min() >= (candidates @ g.T).min(1).max() - 1e-4 * np.abs(gram).max()


def test_cagrad_two_task_weights_match_grid_search():
    rng = np.random.default_rng(6)
    c = 0.4
    g, gram = random_gram(rng, 2)
    g0 = g.mean(0)
    gamma = np.linspace(0, 1, 100_001)[:, None]
    gw = gamma * g[0] + (1 - gamma) * g[1]
    objective = gw @ g0 + c * np.linalg.norm(g0) * np.linalg.norm(gw, axis=1)
    w1 = float(gamma[np.argmin(objective), 0])
    beta = cagrad_weights(gram, c)
    lam = c * np.linalg.norm(g0) / np.linalg.norm(w1 * g[0] + (1 - w1) * g[1])
    expected = (0.5 + lam * np.array([w1, 1 - w1])) / (1 + c**2)
    np.testing.assert_allclose(beta, expected, atol=1e-3)


# ---------------------------------------------------------------------------------------
# Loss weighting: uncertainty, DWA, GradNorm, RLW
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["regression", "binary", "classification"])
def test_uncertainty_gradient_matches_analytic_derivative(kind):
    strategy = UncertaintyWeighting(TASKS, task_kinds={"click": kind}, init_log_var=0.3)
    with torch.no_grad():
        strategy.log_vars.copy_(torch.tensor([0.3, -0.7]))
    losses = {"click": torch.tensor(2.5, requires_grad=True), "rating": torch.tensor(0.4, requires_grad=True)}
    shared = nn.Parameter(torch.zeros(()))  # shared parameter the losses do not touch
    weights = strategy.backward(losses, [shared])
    s = strategy.log_vars.detach()
    c_click = 0.5 if kind == "regression" else 1.0  # rating keeps the regression form
    # d/ds [c e^{−s} L + ½ s] = −c e^{−s} L + ½
    expected = torch.stack([-c_click * torch.exp(-s[0]) * 2.5 + 0.5, -0.5 * torch.exp(-s[1]) * 0.4 + 0.5])
    torch.testing.assert_close(strategy.log_vars.grad, expected)
    assert weights["click"] == pytest.approx(c_click * math.exp(-0.3))
    assert losses["rating"].grad == pytest.approx(0.5 * math.exp(0.7))
    assert list(dict(strategy.named_parameters())) == ["log_vars"]


def test_dwa_weights_match_formula_on_a_loss_history():
    history = [(1.0, 2.0), (0.8, 1.9), (0.5, 1.8), (0.45, 1.2)]
    temperature = 2.0
    strategy = DynamicWeightAverage(TASKS, temperature=temperature)
    expected_weights = [(1.0, 1.0), (1.0, 1.0)]  # epochs 0 and 1
    for e in range(2, len(history) + 1):
        r = np.array(history[e - 1]) / np.array(history[e - 2])
        expected_weights.append(tuple(2 * np.exp(r / temperature) / np.exp(r / temperature).sum()))
    losses = {t: torch.tensor(1.0, requires_grad=True) for t in TASKS}
    for epoch, expected in enumerate(expected_weights):
        if epoch > 0:
            strategy.end_epoch(dict(zip(TASKS, history[epoch - 1])))
        weights = strategy.backward(losses, [nn.Parameter(torch.zeros(()))])
        assert [weights[t] for t in TASKS] == pytest.approx(expected, rel=1e-6), epoch
        assert sum(weights.values()) == pytest.approx(2.0)
    assert expected_weights[-1][0] > expected_weights[-1][1]  # click slowed down: it gains


def gradnorm_losses(shared, click_value, rating_value):
    """Losses whose value we choose and whose gradient w.r.t. ``shared`` is fixed."""
    v = torch.tensor([1.0, 2.0, 0.0])
    u = torch.tensor([0.0, 1.0, 1.0])
    return {"click": shared @ v + click_value, "rating": shared @ u + rating_value}


def test_gradnorm_weights_positive_sum_to_t_and_favour_the_slower_task():
    strategy = GradNorm(TASKS, alpha=1.5, lr=0.05)
    shared = nn.Parameter(torch.zeros(3))
    history = []
    for step in range(40):
        # click's loss stays at its start (slow); rating's loss halves (fast)
        losses = gradnorm_losses(shared, 1.0, 1.0 if step == 0 else 0.5)
        history.append(strategy.backward(losses, [shared], last_shared_parameters=[shared]))
        w = strategy.loss_weights
        assert torch.all(w > 0) and float(w.sum()) == pytest.approx(2.0, rel=1e-6)
    assert history[0] == {"click": 1.0, "rating": 1.0}
    # equilibrium: w_c ‖v‖ / (w_r ‖u‖) = (r_c / r_r)^α = 2^1.5, i.e. w ≈ (1.28, 0.72)
    assert history[-1]["click"] > 1.1 > 0.9 > history[-1]["rating"]
    assert float(strategy.initial_losses[0]) == pytest.approx(1.0)
    assert not any(strategy.parameters())  # the weights are not trained by the main loss


def test_gradnorm_update_matches_one_hand_computed_step():
    strategy = GradNorm(TASKS, alpha=1.0, lr=0.1)
    shared = nn.Parameter(torch.zeros(3))
    strategy.backward(gradnorm_losses(shared, 2.0, 4.0), [shared], last_shared_parameters=[shared])
    strategy.backward(gradnorm_losses(shared, 1.0, 3.0), [shared], last_shared_parameters=[shared])
    norms = np.array([math.sqrt(5), math.sqrt(2)])  # ‖v‖, ‖u‖
    w = np.ones(2)  # after step 0 (r = 1 each, targets = mean G) ...
    target0 = (w * norms).mean() * np.ones(2)
    w = w - 0.1 * np.sign(w * norms - target0) * norms
    w = 2 * w / w.sum()
    relative = np.array([1.0 / 2.0, 3.0 / 4.0])
    target = (w * norms).mean() * relative / relative.mean()
    w = w - 0.1 * np.sign(w * norms - target) * norms
    w = 2 * w / w.sum()
    np.testing.assert_allclose(strategy.loss_weights.numpy(), w, rtol=1e-6)


def test_gradnorm_falls_back_to_all_shared_parameters():
    a, b = GradNorm(TASKS), GradNorm(TASKS)
    shared = nn.Parameter(torch.zeros(3))
    for value in (1.0, 0.7):
        a.backward(gradnorm_losses(shared, 1.0, value), [shared])
        b.backward(gradnorm_losses(shared, 1.0, value), [shared], last_shared_parameters=[shared])
    torch.testing.assert_close(a.loss_weights, b.loss_weights)


def test_rlw_weights_sum_to_t_and_are_seeded():
    losses = {t: torch.tensor(1.0, requires_grad=True) for t in ("a", "b", "c")}
    shared = [nn.Parameter(torch.zeros(()))]

    def draws(seed, n=5):
        strategy = RandomLossWeighting(("a", "b", "c"), seed=seed)
        return [list(strategy.backward(losses, shared).values()) for _ in range(n)]

    first = draws(0)
    assert first == draws(0)
    assert first != draws(1)
    assert first[0] != first[1]
    for w in first:
        assert sum(w) == pytest.approx(3.0) and min(w) > 0
    # the paper's λ = softmax(z), z ~ N(0, I) from a generator with the same seed
    z = torch.randn(3, generator=torch.Generator().manual_seed(0))
    assert first[0] == pytest.approx((3 * torch.softmax(z, 0)).tolist())


# ---------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(WEIGHTINGS))
def test_state_dict_round_trip_resumes_exactly(setup, name):
    model, x, y = setup
    strategy = make_weighting(name, TASKS)
    for _ in range(3):
        model.zero_grad()
        strategy.backward(model(x, y), model.shared_parameters(),
                          last_shared_parameters=model.last_shared_parameters())
        strategy.end_epoch({"click": float(torch.rand(())), "rating": 1.0})
    if name == "uncertainty":
        with torch.no_grad():
            strategy.log_vars.add_(torch.tensor([0.2, -0.3]))
    restored = make_weighting(name, TASKS)
    restored.load_state_dict(copy.deepcopy(strategy.state_dict()))
    for s in (strategy, restored):  # the next step's weights agree
        model.zero_grad()
        s.next_weights = s.backward(model(x, y), model.shared_parameters(),
                                    last_shared_parameters=model.last_shared_parameters())
    assert restored.next_weights == pytest.approx(strategy.next_weights)
    for key, value in strategy.state_dict().items():
        torch.testing.assert_close(restored.state_dict()[key], value)


def test_every_strategy_trains_a_tiny_model(setup):
    model, x, y = setup
    for name in WEIGHTINGS:
        m = copy.deepcopy(model)
        strategy = make_weighting(name, TASKS)
        optimizer = torch.optim.SGD([*m.parameters(), *strategy.parameters()], lr=0.05)
        start = sum(v.item() for v in m(x, y).values())
        for step in range(15):
            optimizer.zero_grad()
            weights = strategy.backward(m(x, y), m.shared_parameters(),
                                        last_shared_parameters=m.last_shared_parameters(),
                                        diagnostics=step % 10 == 0)
            assert all(math.isfinite(v) and v >= 0 for v in weights.values())
            optimizer.step()
        assert sum(v.item() for v in m(x, y).values()) < start, name


def test_three_tasks_every_combination_of_strategy_and_diagnostics():
    torch.manual_seed(1)
    tasks = ("a", "b", "c")
    model = TinyMultiTask(tasks)
    x, y = torch.randn(16, 5), torch.randn(16, 3)
    for name, diagnostics in itertools.product(WEIGHTINGS, (False, True)):
        model.zero_grad()
        strategy = make_weighting(name, tasks)
        weights = strategy.backward(model(x, y), model.shared_parameters(), diagnostics=diagnostics)
        assert list(weights) == list(tasks)
        assert len(strategy.last_diagnostics) == (6 if diagnostics else 0)
