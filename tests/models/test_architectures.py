"""The five architectures: outputs, gates, ESMM's product, and which parameters are shared."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from fake_batches import ALL_MODELS, MIXED_TASKS, SMALL, make_batch, make_schema

from mtlkit.models import ESMM, MMoE, PLE, SingleTask, build_model, ctcvr_logit

TASK_SETS = {
    "mixed": MIXED_TASKS,
    "binary": (("click", "binary"), ("purchase", "binary")),
    "regression-first": (
        ("rating", "regression"),
        ("click", "binary"),
        ("purchase", "binary"),
        ("like", "binary"),
    ),
}


def _model(name, schema, **overrides):
    torch.manual_seed(0)
    return build_model(name, schema, **{**SMALL, **overrides})


@pytest.mark.parametrize("task_set", list(TASK_SETS))
@pytest.mark.parametrize("name", ALL_MODELS)
def test_one_prediction_per_task_with_shape_b(name, task_set):
    schema = make_schema(tasks=TASK_SETS[task_set])
    batch = make_batch(schema, batch_size=9)
    model = _model(name, schema, dropout=0.1)
    out = model(batch)
    assert list(out) == list(schema.task_names)  # schema order
    for task, pred in out.items():
        assert pred.shape == (9,) and pred.dtype == torch.float32, task
        assert torch.isfinite(pred).all() and pred.requires_grad


@pytest.mark.parametrize("name", ["single", "shared-bottom", "mmoe", "ple"])
def test_a_single_regression_task(name):
    schema = make_schema(tasks=(("rating", "regression"),))
    out = _model(name, schema)(make_batch(schema, batch_size=1))
    assert out["rating"].shape == (1,)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_eval_mode_is_deterministic_and_batch_independent(name, schema, batch):
    model = _model(name, schema, dropout=0.3).eval()
    with torch.no_grad():
        full, again = model(batch), model(batch)
        head = model({key: value[:5] for key, value in batch.items()})
    for task in schema.task_names:
        assert torch.equal(full[task], again[task])
        torch.testing.assert_close(head[task], full[task][:5], atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------- gates
@pytest.mark.parametrize("n_experts", [1, 3])
def test_mmoe_gates_are_distributions_per_task(schema, batch, n_experts):
    model = _model("mmoe", schema, n_experts=n_experts)
    assert isinstance(model, MMoE) and model.gate_weights() == {}
    model(batch)
    gates = model.gate_weights()
    assert list(gates) == list(schema.task_names)
    for gate in gates.values():
        assert gate.shape == (16, n_experts) and (gate >= 0).all()
        torch.testing.assert_close(gate.sum(-1), torch.ones(16))


def test_mmoe_gates_start_uniform_and_learn_per_task(schema, batch):
    model = _model("mmoe", schema, n_experts=4)
    model(batch)
    assert all(torch.allclose(g, torch.full_like(g, 0.25)) for g in model.gate_weights().values())
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(5):
        optimizer.zero_grad()
        out = model(batch)
        click = F.binary_cross_entropy_with_logits(out["click"], batch["labels"][:, 0])
        (click + out["rating"].pow(2).mean()).backward()
        optimizer.step()
    model(batch)
    gates = model.gate_weights()
    assert not torch.allclose(gates["click"], gates["rating"])


@pytest.mark.parametrize("n_levels", [1, 2, 3])
def test_ple_gates_are_distributions_at_every_level(schema, batch, n_levels):
    model = _model("ple", schema, n_levels=n_levels, n_shared_experts=2, n_task_experts=3)
    assert isinstance(model, PLE)
    model(batch)
    n_tasks = len(schema.task_names)
    for level in range(n_levels):
        gates = model.gate_weights(level)
        assert list(gates) == list(schema.task_names)
        for gate in gates.values():
            assert gate.shape == (16, 3 + 2) and (gate >= 0).all()
            torch.testing.assert_close(gate.sum(-1), torch.ones(16))
    assert model.gate_weights() == model.gate_weights(n_levels - 1)
    shared = model.shared_gate_weights()
    assert len(shared) == n_levels - 1
    for gate in shared:
        assert gate.shape == (16, n_tasks * 3 + 2)
        torch.testing.assert_close(gate.sum(-1), torch.ones(16))


def test_ple_one_level_is_cgc(schema, batch):
    """With one level PLE is CGC: no shared gate, task gates over own + shared experts."""
    model = _model("ple", schema, n_levels=1)
    assert model.levels[0].shared_gate is None
    model(batch)
    assert model.shared_gate_weights() == []


# --------------------------------------------------------------------------- ESMM
def test_ctcvr_logit_is_the_logit_of_the_product():
    torch.manual_seed(0)
    a = torch.randn(10_000, dtype=torch.float64) * 6
    b = torch.randn(10_000, dtype=torch.float64) * 6
    product = torch.sigmoid(a) * torch.sigmoid(b)
    torch.testing.assert_close(torch.sigmoid(ctcvr_logit(a, b)), product, atol=1e-12, rtol=1e-9)
    # Agrees with the log-space form logit = log p - log(1 - p), log p = logσ(a) + logσ(b).
    log_p = F.logsigmoid(a) + F.logsigmoid(b)
    torch.testing.assert_close(ctcvr_logit(a, b), log_p - torch.log(-torch.expm1(log_p)))


def test_ctcvr_logit_is_finite_with_finite_gradients_for_extreme_logits():
    values = torch.tensor([-1e4, -200.0, -50.0, -5.0, 0.0, 5.0, 50.0, 200.0, 1e4])
    a, b = torch.meshgrid(values, values, indexing="ij")
    a, b = a.flatten().requires_grad_(), b.flatten().requires_grad_()
    logit = ctcvr_logit(a, b)
    assert torch.isfinite(logit).all()
    expected = torch.sigmoid(a) * torch.sigmoid(b)
    assert (torch.sigmoid(logit) - expected).abs().max() < 1e-6
    target = (torch.arange(a.numel()) % 2).float()
    F.binary_cross_entropy_with_logits(logit, target).backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()


def test_esmm_outputs_ctr_and_ctcvr_and_reads_off_cvr(schema, batch):
    model = _model("esmm", schema)
    assert isinstance(model, ESMM)
    out = model(batch)
    p_cvr = model.predict_cvr(batch)
    assert p_cvr.shape == (16,) and ((p_cvr > 0) & (p_cvr < 1)).all()
    with torch.no_grad():
        x = model.encoder(batch)
        ctr = model.towers["click"](x).squeeze(-1)
    torch.testing.assert_close(out["click"], ctr)
    diff = torch.sigmoid(out["purchase"]) - torch.sigmoid(out["click"]) * p_cvr
    assert diff.abs().max() < 1e-6
    assert (torch.sigmoid(out["purchase"]) <= torch.sigmoid(out["click"]) + 1e-7).all()


def test_esmm_with_extreme_tower_outputs(schema, batch):
    model = _model("esmm", schema)
    with torch.no_grad():  # push both towers' biases far out
        model.towers["click"].last_linear().bias.fill_(80.0)
        model.towers["purchase"].last_linear().bias.fill_(-80.0)
    out = model(batch)
    assert torch.isfinite(out["purchase"]).all()
    diff = torch.sigmoid(out["purchase"]) - torch.sigmoid(out["click"]) * model.predict_cvr(batch)
    assert diff.abs().max() < 1e-6


def test_esmm_task_names_are_configurable():
    schema = make_schema(tasks=(("view", "binary"), ("buy", "binary"), ("rating", "regression")))
    with pytest.raises(ValueError, match="ctr_task"):
        _model("esmm", schema)
    model = _model("esmm", schema, ctr_task="view", ctcvr_task="buy")
    out = model(make_batch(schema))
    assert set(out) == {"view", "buy", "rating"}


# --------------------------------------------------------------------------- sharing
def _owned_by(model, task: str) -> list[str]:
    """Names of the parameters that only ``task``'s loss may reach."""
    names = []
    for name, _ in model.named_parameters():
        if name.startswith((f"towers.{task}.", f"gates.{task}.", f"networks.{task}.")):
            names.append(name)
        elif isinstance(model, PLE) and name.startswith(f"levels.{len(model.levels) - 1}.task_"):
            if f".{task}." in name:
                names.append(name)
    return names


@pytest.mark.parametrize("name", ALL_MODELS)
def test_one_task_loss_reaches_shared_parameters_but_not_another_tasks_layers(name, schema, batch):
    model = _model(name, schema)
    params = dict(model.named_parameters())
    shared = model.shared_parameters()
    last = model.last_shared_parameters()
    assert len({id(p) for p in shared}) == len(shared)  # no duplicates
    assert {id(p) for p in last} <= {id(p) for p in shared}
    assert {id(p) for p in shared} <= {id(p) for p in params.values()}

    model(batch)["click"].sum().backward()
    for p in shared:
        assert p.grad is not None and p.grad.abs().sum() > 0
    rating_owned = _owned_by(model, "rating")
    assert rating_owned
    for n in rating_owned:
        assert params[n].grad is None or params[n].grad.abs().sum() == 0, n
    if name == "esmm":  # the click loss does not reach the CVR tower either ...
        assert all(p.grad is None for p in model.towers["purchase"].parameters())
        model.zero_grad()  # ... while the CTCVR loss trains both towers
        model(batch)["purchase"].sum().backward()
        for tower in ("click", "purchase"):
            assert all(p.grad.abs().sum() > 0 for p in model.towers[tower].parameters())


def test_single_task_shares_nothing(schema, batch):
    model = _model("single", schema)
    assert isinstance(model, SingleTask)
    assert model.shared_parameters() == [] and model.last_shared_parameters() == []
    model(batch)["click"].sum().backward()
    for task in ("purchase", "rating"):
        assert all(p.grad is None for p in model.networks[task].parameters())
    assert all(p.grad is not None for p in model.networks["click"].parameters())
    assert len(model.attention_weights("rating")) == SMALL["n_layers"]
    with pytest.raises(ValueError, match="task"):
        model.attention_weights("nope")


def test_last_shared_layers(schema):
    sb, mmoe, ple = (_model(n, schema) for n in ("shared-bottom", "mmoe", "ple"))
    assert sb.last_shared_parameters() == list(sb.bottom.last_linear().parameters())
    assert mmoe.last_shared_parameters() == [mmoe.experts.weights[-1], mmoe.experts.biases[-1]]
    last = ple.levels[-1].shared_experts
    assert ple.last_shared_parameters() == [last.weights[-1], last.biases[-1]]


@pytest.mark.parametrize("name", ALL_MODELS)
def test_summary_states_the_exact_parameter_count(name, schema):
    model = _model(name, schema)
    count = sum(p.numel() for p in model.parameters())
    shared = sum(p.numel() for p in model.shared_parameters())
    line = model.summary()
    assert "\n" not in line
    assert f" {count} trainable parameters" in line and f"{shared} shared" in line


def test_expert_group_equals_a_loop_of_linear_layers():
    from mtlkit.models.experts import ExpertGroup

    torch.manual_seed(0)
    group = ExpertGroup(3, 5, (4, 2), activation="gelu")
    x = torch.randn(7, 5)
    out = group(x)
    for k in range(3):
        h = x
        for weight, bias in zip(group.weights, group.biases):
            h = F.gelu(h @ weight[k] + bias[k])
        torch.testing.assert_close(out[:, k], h)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_output_biases_start_each_task_at_its_base_rate(name, schema, batch):
    model = _model(name, schema).eval()
    labels, mask = batch["labels"], batch["label_mask"].clone()
    mask[::2, 2] = False  # ratings observed on every other sample only
    with torch.no_grad():
        for task in schema.task_names:  # switch the towers' inputs off: output = bias
            model.tower(task).last_linear().weight.zero_()
    biases = model.init_output_biases(labels, mask)
    click_rate, purchase_rate = labels[:, 0].mean(), labels[:, 1].mean()
    mean_rating = labels[1::2, 2].mean()
    with torch.no_grad():
        out = model(batch)
    torch.testing.assert_close(torch.sigmoid(out["click"]), click_rate.expand(16))
    torch.testing.assert_close(torch.sigmoid(out["purchase"]), purchase_rate.expand(16))
    torch.testing.assert_close(out["rating"], mean_rating.expand(16))
    if name == "esmm":  # the CVR tower starts at pCTCVR / pCTR
        assert biases["purchase"] == pytest.approx(torch.logit(purchase_rate / click_rate).item(), abs=1e-5)
    with pytest.raises(ValueError, match="labels"):
        model.init_output_biases(labels[:, :2])
    with pytest.raises(ValueError, match="label_mask"):
        model.init_output_biases(labels, mask[:, :2])


@pytest.mark.parametrize("batch_size, n_experts, width", [(1, 1, 3), (7, 4, 16), (64, 8, 128)])
def test_mix_experts_equals_the_einsum_and_a_loop(batch_size, n_experts, width):
    """The broadcast-and-sum mixture is the einsum it replaced, values and gradients alike."""
    from mtlkit.models.experts import mix_experts

    gate = torch.softmax(torch.randn(batch_size, n_experts, dtype=torch.float64), -1).requires_grad_()
    experts = torch.randn(batch_size, n_experts, width, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(batch_size, width, dtype=torch.float64)
    mixed = mix_experts(gate, experts)
    reference = torch.einsum("bn,bnd->bd", gate, experts)
    loop = sum(gate[:, k : k + 1] * experts[:, k] for k in range(n_experts))
    torch.testing.assert_close(mixed, reference, rtol=0, atol=1e-12)
    torch.testing.assert_close(mixed, loop, rtol=0, atol=1e-12)
    grads = torch.autograd.grad((mixed * weights).sum(), (gate, experts))
    reference_grads = torch.autograd.grad((reference * weights).sum(), (gate, experts))
    for ours, theirs in zip(grads, reference_grads):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)
