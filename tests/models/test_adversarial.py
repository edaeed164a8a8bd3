"""Gradient reversal and adversarial tasks: the layer against autograd, the adversary head,
a tiny case where the reversal hides an attribute, and the trainer's adversary."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mtlkit.data import load_dataset
from mtlkit.metrics import roc_auc
from mtlkit.models import build_model
from mtlkit.models.adversarial import (
    Adversary,
    AdversaryHead,
    GradientReversal,
    gradient_reversal,
    heldout_users,
    probe_auc,
)
from mtlkit.training import TrainConfig, Trainer
from mtlkit.utils import seed_everything

SMALL = dict(embedding_dim=4, d_model=8, n_heads=1, d_ff=8, tower_hidden=(8,), n_experts=2, expert_hidden=(8,))


# --------------------------------------------------------------------------- the layer
@pytest.mark.parametrize("strength", [0.0, 0.5, 1.0, 2.0])
def test_gradient_reversal_is_the_identity_forward_and_negates_the_gradient(strength):
    torch.manual_seed(0)
    x = torch.randn(5, 3, requires_grad=True)
    upstream = torch.randn(5, 3)
    y = gradient_reversal(x, strength)
    assert torch.equal(y, x)
    (grad,) = torch.autograd.grad(y, x, upstream)
    # the reference: the gradient of the identity, times -λ
    x_ref = x.detach().clone().requires_grad_(True)
    (grad_ref,) = torch.autograd.grad(x_ref * 1.0, x_ref, upstream)
    torch.testing.assert_close(grad, -strength * grad_ref, rtol=0, atol=0)


def test_gradient_reversal_inside_a_chain_multiplies_the_chain_rule_by_minus_lambda():
    torch.manual_seed(1)
    w = torch.randn(4, 4, requires_grad=True)
    x = torch.randn(3, 4)

    def loss(reversed_: bool) -> torch.Tensor:
        h = torch.tanh(x @ w)
        h = GradientReversal(0.7)(h) if reversed_ else h
        return (h.sin() ** 2).sum()

    (plain,) = torch.autograd.grad(loss(False), w)
    (rev,) = torch.autograd.grad(loss(True), w)
    torch.testing.assert_close(rev, -0.7 * plain)
    assert torch.equal(loss(True), loss(False))  # forward unchanged


@pytest.mark.parametrize("strength", [-1.0, float("nan"), True, "1"])
def test_bad_strength_is_rejected_naming_it(strength):
    with pytest.raises(ValueError, match="strength"):
        GradientReversal(strength)
    with pytest.raises(ValueError, match="strength"):
        gradient_reversal(torch.zeros(2), strength)


# --------------------------------------------------------------------------- the head
def test_adversary_head_learns_normally_and_hands_the_encoder_minus_lambda_times_its_gradient():
    torch.manual_seed(2)
    head = AdversaryHead(6, (5,), strength=1.5)
    h = torch.randn(8, 6, requires_grad=True)
    target = (torch.rand(8) < 0.5).float()

    loss = F.binary_cross_entropy_with_logits(head(h), target)
    grads = torch.autograd.grad(loss, [h, *head.mlp.parameters()])
    # the same MLP without the reversal layer
    h_ref = h.detach().clone().requires_grad_(True)
    loss_ref = F.binary_cross_entropy_with_logits(head.mlp(h_ref).squeeze(-1), target)
    grads_ref = torch.autograd.grad(loss_ref, [h_ref, *head.mlp.parameters()])

    torch.testing.assert_close(grads[0], -1.5 * grads_ref[0])  # the encoder climbs the loss
    for g, g_ref in zip(grads[1:], grads_ref[1:]):
        torch.testing.assert_close(g, g_ref)  # the adversary descends it


def test_one_encoder_step_through_the_reversal_makes_the_attribute_harder_to_predict():
    """With the adversary fixed, a gradient step of the encoder raises the adversary's loss
    (it would lower it without the reversal)."""
    torch.manual_seed(3)
    x = torch.randn(64, 3)
    attribute = (x[:, 0] > 0).float()
    losses = {}
    for strength, reverse in ((1.0, True), (1.0, False)):
        torch.manual_seed(4)
        encoder = nn.Linear(3, 4)
        head = AdversaryHead(4, (), strength=strength)
        if not reverse:
            head.reversal = nn.Identity()
        before = F.binary_cross_entropy_with_logits(head(encoder(x)), attribute)
        before.backward()
        with torch.no_grad():
            for p in encoder.parameters():
                p -= 0.5 * p.grad
            after = F.binary_cross_entropy_with_logits(head(encoder(x)), attribute)
        losses[reverse] = (before.item(), after.item())
    assert losses[True][1] > losses[True][0]  # reversed: the encoder hides the attribute
    assert losses[False][1] < losses[False][0]  # plain: it would help the adversary


def _recoverability(strength: float, seed: int) -> float:
    """Train encoder + task + adversary jointly; return a fresh probe's held-out AUC for the attribute."""
    g = torch.Generator().manual_seed(seed)
    n = 512
    attribute = (torch.rand(n, generator=g) < 0.5).float()
    z = torch.randn(n, 4, generator=g)
    x = torch.cat([z, attribute[:, None] + 0.3 * torch.randn(n, 1, generator=g)], 1)  # column 4 leaks it
    y = ((z[:, 0] + 0.3 * torch.randn(n, generator=g)) > 0).float()  # the task does not need it
    torch.manual_seed(seed)
    encoder, task = nn.Linear(5, 4), nn.Linear(4, 1)
    adversary = AdversaryHead(4, (), strength=strength)
    optimizer = torch.optim.SGD([*encoder.parameters(), *task.parameters(), *adversary.parameters()], lr=0.2)
    for _ in range(200):
        h = encoder(x)
        loss = F.binary_cross_entropy_with_logits(task(h).squeeze(-1), y)
        loss = loss + F.binary_cross_entropy_with_logits(adversary(h), attribute)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    h = encoder(x).detach()
    torch.manual_seed(1)
    probe = nn.Linear(4, 1)
    probe_optimizer = torch.optim.Adam(probe.parameters(), lr=1e-2)
    for _ in range(200):
        probe_loss = F.binary_cross_entropy_with_logits(probe(h[:384]).squeeze(-1), attribute[:384])
        probe_optimizer.zero_grad()
        probe_loss.backward()
        probe_optimizer.step()
    return roc_auc(attribute[384:], probe(h[384:]).squeeze(-1).detach())


def test_the_adversary_lowers_the_attributes_recoverability_on_a_tiny_case():
    """A fresh linear probe recovers the attribute from the representation far less well after
    adversarial training (λ = 1) than without it (λ = 0), on average over seeds."""
    seeds = range(4)
    plain = sum(_recoverability(0.0, s) for s in seeds) / len(seeds)
    adversarial = sum(_recoverability(1.0, s) for s in seeds) / len(seeds)
    assert plain > 0.75
    assert adversarial < plain - 0.1


# --------------------------------------------------------------------------- with the trainer
@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic-funnel", n_users=60, n_items=30, n_impressions=800, seq_len=4)


def _trainer(data, callbacks=(), **overrides):
    seed_everything(0)
    model = build_model("mmoe", data.schema, **SMALL)
    values = dict(epochs=1, batch_size=64, lr=1e-2, device="cpu", quiet=True, log_every=2, adversary="bot")
    values.update(overrides)
    return Trainer(model, data, TrainConfig(**values), callbacks=callbacks)


def test_trainer_trains_the_adversary_and_reports_its_heldout_auc(data):
    trainer = _trainer(data, adversary_strength=0.5)
    head_before = [p.detach().clone() for p in trainer.adversary.parameters()]
    history = trainer.fit()
    assert {"loss/adversary", "valid/adversary/auc", "valid/adversary/logloss"} <= set(history.epochs.columns)
    assert "loss/adversary" in history.steps.columns
    assert any(not torch.equal(a, b) for a, b in zip(head_before, trainer.adversary.parameters()))
    result = trainer.evaluate_adversary("test")
    test = data.test
    held = heldout_users(test["user"], trainer.adversary.holdout_every)
    assert result["n_rows"] == int(held.sum())
    assert result["n_users"] == int(torch.unique(test["user"][held]).numel())
    if not math.isnan(result["auc"]):
        assert 0.0 <= result["auc"] <= 1.0
    # the total loss of a step excludes the adversary's (it is a separate objective)
    assert (history.epochs["loss"] >= 0).all()


def test_trainer_adversary_gradient_reaches_the_encoder_reversed(data):
    """The encoder gradient of the trainer's adversary term is −λ times the plain gradient."""
    trainer = _trainer(data, adversary_strength=2.0)
    batch = {k: v[:32] for k, v in data.train.to_dict().items()}
    model, adversary = trainer.model, trainer.adversary
    model.eval()
    encoder_params = list(model.encoder.parameters())
    model(batch)
    reversed_grads = torch.autograd.grad(adversary.loss(batch), encoder_params, allow_unused=True)
    adversary.head.reversal.strength = 1.0
    model(batch)
    # plain: the same loss without the reversal layer
    logits = adversary.head.mlp(adversary._representation).squeeze(-1)
    target, train_rows = batch["is_bot"].float(), ~heldout_users(batch["user"], adversary.holdout_every)
    plain_loss = (F.binary_cross_entropy_with_logits(logits, target, reduction="none") * train_rows).sum()
    plain_loss = plain_loss / train_rows.sum()
    plain_grads = torch.autograd.grad(plain_loss, encoder_params, allow_unused=True)
    for rev, plain in zip(reversed_grads, plain_grads):
        if plain is None:
            assert rev is None
            continue
        torch.testing.assert_close(rev, -2.0 * plain)


def test_resume_with_an_adversary_is_exact(data, tmp_path):
    straight = _trainer(data, epochs=2)
    straight.fit()
    first = _trainer(data, epochs=2)
    first.fit(epochs=1)
    first.save_checkpoint(tmp_path / "checkpoint.pt")
    resumed = _trainer(data, epochs=2)
    resumed.fit(resume_from=tmp_path / "checkpoint.pt")
    for a, b in zip(straight.adversary.parameters(), resumed.adversary.parameters()):
        assert torch.equal(a, b)
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    columns = [c for c in straight.history.epochs.columns if c not in {"samples_per_s", "epoch_time_s"}]
    pd.testing.assert_frame_equal(straight.history.epochs[columns], resumed.history.epochs[columns])


class _HeadSnapshots:
    """A callback that keeps the adversary head's weights at the end of every epoch."""

    def __init__(self):
        self.by_epoch = {}

    def on_epoch_end(self, trainer, record):
        self.by_epoch[trainer.epoch] = {k: v.clone() for k, v in trainer.adversary.state_dict().items()}


# "loss" monitored for its *maximum*: the first epoch (highest training loss) is the best one,
# so the restored weights must differ from the last epoch's.
BEST_IS_FIRST = dict(epochs=3, early_stopping="loss", early_stopping_mode="max", patience=5, restore_best=True)


def test_restore_best_restores_the_adversary_head_of_the_best_epoch(data):
    snapshots = _HeadSnapshots()
    trainer = _trainer(data, callbacks=[snapshots], adversary_strength=1.0, **BEST_IS_FIRST)
    trainer.fit()
    assert trainer.best_epoch == 1 and trainer.epoch == 3
    best, last = snapshots.by_epoch[1], snapshots.by_epoch[3]
    assert any(not torch.equal(best[k], last[k]) for k in best)  # the head moved after the best epoch
    for name, value in trainer.adversary.state_dict().items():
        assert torch.equal(value, best[name]), name  # the head that was trained against the restored encoder


def test_resume_keeps_the_best_adversary_head(data, tmp_path):
    straight = _trainer(data, **BEST_IS_FIRST)
    straight.fit()
    first = _trainer(data, **BEST_IS_FIRST)
    first.fit(epochs=2)
    first.save_checkpoint(tmp_path / "checkpoint.pt")
    resumed = _trainer(data, **BEST_IS_FIRST)
    resumed.fit(resume_from=tmp_path / "checkpoint.pt")
    for (name, a), b in zip(straight.adversary.state_dict().items(), resumed.adversary.state_dict().values()):
        assert torch.equal(a, b), name


# --------------------------------------------------------------------------- the post-hoc probe
def _probe_data(rule, n=1200, seed=0):
    """Features (n, 4) and an attribute decided by ``rule(x)``; the first 1,000 rows fit, the rest score."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    attribute = rule(x).float()
    return x[:1000].numpy(), attribute[:1000].numpy(), x[1000:].numpy(), attribute[1000:].numpy()


def test_probe_recovers_a_linearly_encoded_attribute_and_not_noise():
    linear = _probe_data(lambda x: x[:, 0] + 0.3 * x[:, 1] > 0)
    noise = _probe_data(lambda x: torch.rand(len(x), generator=torch.Generator().manual_seed(1)) < 0.5)
    for probe in ("linear", "mlp"):
        assert probe_auc(*linear, probe=probe) > 0.95
        assert abs(probe_auc(*noise, probe=probe) - 0.5) < 0.1


def test_a_linear_probe_misses_what_an_mlp_probe_finds():
    """An XOR-like attribute, sign(x0·x1), has no linear direction: a linear probe sits at chance,
    the MLP probe recovers it — a linear probe's 0.5 does not prove the attribute is gone."""
    xor = _probe_data(lambda x: x[:, 0] * x[:, 1] > 0)
    assert abs(probe_auc(*xor, probe="linear") - 0.5) < 0.1
    assert probe_auc(*xor, probe="mlp") > 0.85


def test_probe_rejects_bad_arguments_naming_them():
    x_fit, y_fit, x_eval, y_eval = _probe_data(lambda x: x[:, 0] > 0)
    with pytest.raises(ValueError, match="probe"):
        probe_auc(x_fit, y_fit, x_eval, y_eval, probe="svm")
    with pytest.raises(ValueError, match="train_target"):
        probe_auc(x_fit, y_fit * 0, x_eval, y_eval)
    with pytest.raises(ValueError, match="train_features"):
        probe_auc(x_fit[:10], y_fit, x_eval, y_eval)
    with pytest.raises(ValueError, match="eval_features"):
        probe_auc(x_fit, y_fit, x_eval[:, :2], y_eval)
    assert math.isnan(probe_auc(x_fit, y_fit, x_eval, y_eval * 0))  # one class to score: undefined


def test_trainer_probe_scores_the_heldout_rows_and_ignores_the_head(data):
    """The probe scores the rows the head is scored on; negating the head's output flips the
    head's AUC to 1 − AUC and leaves the probe's unchanged — the probe measures the representation."""
    trainer = _trainer(data, adversary_strength=0.5)
    trainer.fit()
    head, probe = trainer.evaluate_adversary("test"), trainer.probe_adversary("test")
    assert set(probe) == {"auc", "n_users", "n_rows", "n_train_rows"}
    assert (probe["n_rows"], probe["n_users"]) == (head["n_rows"], head["n_users"])
    train_rows = int((~heldout_users(data.train["user"], trainer.adversary.holdout_every)).sum())
    assert probe["n_train_rows"] == train_rows
    assert trainer.probe_adversary("test", max_train_rows=100)["n_train_rows"] == 100
    with torch.no_grad():  # negate the output layer: the head's logits change sign
        for p in trainer.adversary.head.mlp.layers[-1].parameters():
            p.neg_()
    flipped = trainer.evaluate_adversary("test")
    if not math.isnan(head["auc"]):
        assert flipped["auc"] == pytest.approx(1 - head["auc"])
        assert trainer.probe_adversary("test")["auc"] == probe["auc"]
    with pytest.raises(ValueError, match="max_train_rows"):
        trainer.probe_adversary("test", max_train_rows=0)


def test_probe_needs_an_adversary(data):
    trainer = _trainer(data, adversary=None)
    with pytest.raises(ValueError, match="adversary"):
        trainer.probe_adversary("test")


def test_an_attribute_the_data_lacks_is_rejected_naming_the_adversary(data):
    with pytest.raises(ValueError, match="adversary"):
        _trainer(data, adversary="gender")  # the funnel has no gender
    for field, value in (("adversary", ""), ("adversary_strength", -0.5), ("adversary_holdout_every", 1)):
        with pytest.raises(ValueError, match=field):
            TrainConfig(**{field: value})


def test_adversary_needs_a_model_with_an_encoder():
    with pytest.raises(ValueError, match="model"):
        Adversary(nn.Linear(2, 2), "bot")


def test_the_builder_carries_gender_as_the_is_female_attribute():
    from mtlkit.data.samples import build_multitask_data

    interactions = pd.DataFrame({
        "user_id": [1, 1, 1, 2, 2, 2, 3, 3, 3],
        "item_id": [10, 11, 12, 10, 12, 13, 11, 12, 13],
        "rating": [5, 3, 4, 2, 5, 4, 3, 3, 5],
        "timestamp": [1, 2, 3, 1, 2, 3, 1, 2, 3],
    })  # fmt: skip
    users = pd.DataFrame({"user_id": [1, 2, 3], "gender": ["F", "M", "f"]})
    data = build_multitask_data(interactions, users, tasks=("like", "rating"), split="random", seq_len=2, seed=0)
    female_by_user = {1: True, 2: False, 3: True}
    raw_user = {index: raw for raw, index in data.user_index.items()}
    for split in (data.train, data.valid, data.test):
        for user, female in zip(split["user"].tolist(), split["is_female"].tolist()):
            if user:
                assert female == female_by_user[raw_user[user]]
