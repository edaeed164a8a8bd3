"""Task losses for multi-task recommenders, with masks for missing labels.

Recommender tasks often lack labels for some samples: a movie may have been watched but not
rated, and a conversion is only observed after a click (Ma et al., "Entire Space Multi-Task
Model", SIGIR 2018). Every loss here therefore takes a ``mask`` that marks which labels
exist, and averages over the observed entries only:

    L = sum_i m_i * l(pred_i, target_i) / max(sum_i m_i, 1)

Policy, shared by every function in this module:

- ``mask`` is a bool tensor (True = label observed) or a 0/1 float/int tensor of the same shape
  as the prediction. ``mask=None`` means every entry is observed.
- Masked-out entries contribute nothing: neither to the value nor to the gradient, which is
  exactly 0 at those positions. Their target value is ignored, so a placeholder (the batch
  contract uses 0.0) never matters.
- No observed entry at all (an all-False mask, or an empty tensor) gives a 0.0 loss that is
  still connected to the graph, so ``loss.backward()`` works and every gradient is 0. This
  is deliberate: a batch in which one task has no label is normal in multi-task training
  and must not crash the loop or add NaN to the other tasks' gradients.
- NaN or inf anywhere (predictions *and* targets, observed or not) raises ``ValueError``:
  a NaN almost always signals a bug upstream. Data that uses NaN as the "missing" placeholder
  should set it to 0.0 (as ``mtlkit.data`` does). With ``validate=False`` the checks are skipped
  and such a placeholder is still harmless at masked positions: the masked entries are
  replaced before any arithmetic, so they cannot poison the loss or its gradient.
- Types and shapes are checked always (free, no device synchronisation). Value checks
  (finite numbers, binary targets, 0/1 masks) read data back from the device, which forces
  a GPU synchronisation; pass ``validate=False`` in a hot training loop once the first batch
  has been checked.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from mtlkit.checks import check_number, check_tensor

__all__ = [
    "binary_cross_entropy_with_logits",
    "mean_squared_error",
    "huber",
    "task_loss",
    "TASK_KINDS",
]

TASK_KINDS = ("binary", "regression")
# softplus(z) = log(1 + e^z) is returned as z above this; e^-40 is below float64 precision at 40
_SOFTPLUS_THRESHOLD = 40.0


# --------------------------------------------------------------------------- validation
def _check_inputs(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None,
    pred_name: str,
    target_name: str,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Type and shape checks (no device sync); returns target cast to pred's dtype and a bool mask."""
    check_tensor(pred_name, pred)
    check_tensor(target_name, target)
    if not pred.is_floating_point():
        raise TypeError(f"{pred_name} must be a floating-point tensor, got dtype {pred.dtype}")
    if target.is_complex():
        raise TypeError(f"{target_name} must be a real (float, int or bool) tensor, got dtype {target.dtype}")
    if target.shape != pred.shape:
        raise ValueError(
            f"{target_name} must have the same shape as {pred_name} {tuple(pred.shape)}, "
            f"got {tuple(target.shape)}"
        )
    if mask is not None:
        check_tensor("mask", mask)
        if mask.is_complex():
            raise TypeError(f"mask must be a bool or 0/1 tensor, got dtype {mask.dtype}")
        if mask.shape != pred.shape:
            raise ValueError(
                f"mask must have the same shape as {pred_name} {tuple(pred.shape)}, got {tuple(mask.shape)}"
            )
    return target.to(pred.dtype), mask


def _validate_values(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None,
    pred_name: str,
    target_name: str,
    binary_target: bool,
) -> None:
    """Value checks; all flags are gathered on the device and read back with a single sync."""
    checks: dict[str, torch.Tensor] = {
        pred_name: torch.isfinite(pred).all(),
        target_name: torch.isfinite(target).all(),
    }
    observed = None
    if mask is not None:
        if mask.dtype != torch.bool:
            checks["mask"] = ((mask == 0) | (mask == 1)).all()
        observed = mask != 0
    if binary_target:
        is_binary = (target == 0) | (target == 1)
        if observed is not None:
            is_binary = is_binary | ~observed  # placeholders at masked positions are ignored
        checks["binary " + target_name] = is_binary.all()
    flags = torch.stack(list(checks.values())).tolist()  # the one device sync
    for (name, _), ok in zip(checks.items(), flags):
        if ok:
            continue
        if name == "mask":
            bad = mask[(mask != 0) & (mask != 1)]
            raise ValueError(f"mask must be bool or hold only 0 and 1, got values {_first(bad)}")
        if name.startswith("binary "):
            bad = target[~is_binary]
            raise ValueError(f"{target_name} must be 0 or 1 at observed positions, got values {_first(bad)}")
        x = pred if name == pred_name else target
        bad = x[~torch.isfinite(x)]
        raise ValueError(f"{name} must be finite (no NaN or inf), got values {_first(bad)}")


def _first(values: torch.Tensor, limit: int = 5) -> list[float]:
    """The first few offending values, for error messages (only called on failure)."""
    return values.detach().flatten()[:limit].double().cpu().tolist()


def _masked_mean(elementwise: torch.Tensor, observed: torch.Tensor | None) -> torch.Tensor:
    """Mean over observed entries; 0.0 (graph kept, gradient 0) when none is observed."""
    if observed is None:
        # numel is known on the host: no sync, and an empty tensor gives 0.0, not NaN
        return elementwise.sum() / max(elementwise.numel(), 1)
    zero = torch.zeros((), dtype=elementwise.dtype, device=elementwise.device)
    total = torch.where(observed, elementwise, zero).sum()
    return total / observed.sum().clamp(min=1).to(elementwise.dtype)


def _neutralise(
    pred: torch.Tensor, target: torch.Tensor, observed: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace masked-out entries by 0 before any arithmetic.

    ``torch.where(mask, f(x), 0)`` alone is not enough: if ``f(x)`` is NaN at a masked
    position, backward multiplies the zero upstream gradient by NaN and gets NaN. Cleaning
    the inputs first keeps masked positions inert in both passes.
    """
    if observed is None:
        return pred, target
    zero = torch.zeros((), dtype=pred.dtype, device=pred.device)
    return torch.where(observed, pred, zero), torch.where(observed, target, zero)


# --------------------------------------------------------------------------- losses
def binary_cross_entropy_with_logits(
    logits: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    validate: bool = True,
) -> torch.Tensor:
    r"""Mean binary cross-entropy of logits ``x`` against 0/1 targets ``y`` over observed entries.

    Derivation (Bishop, "Pattern Recognition and Machine Learning", Springer 2006, sec. 4.3.2):
    model the label as Bernoulli with p = sigma(x) = 1 / (1 + e^{-x}). Its negative
    log-likelihood is

        l(x, y) = -[y log sigma(x) + (1 - y) log(1 - sigma(x))]
                = -[y log sigma(x) + (1 - y) log sigma(-x)]          (1 - sigma(x) = sigma(-x))
                = max(x, 0) - x*y + log(1 + e^{-|x|})                 (log-sum-exp form)

    The last form never exponentiates a large positive number, so logits of +-100 give finite
    values, and it equals ``torch.nn.functional.binary_cross_entropy_with_logits``. We compute
    the middle form as y softplus(-x) + (1 - y) softplus(x), since -log sigma(x) =
    softplus(-x) = log(1 + e^{-x}). ``F.softplus`` evaluates that stably (it returns z itself
    for z > threshold, where log(1 + e^z) = z to machine precision; we use threshold 40, exact
    in float64 too) *and* has the analytic gradient, so dl/dx = sigma(x) - y everywhere.
    Autograd through ``max`` and ``|x|`` would take a subgradient at x = 0 and return -y
    instead of 0.5 - y, a real bug for a freshly zero-initialised output layer.

    Args:
        logits: float tensor of any shape, the pre-sigmoid scores.
        targets: tensor of the same shape with 0/1 values (float, int or bool) at observed
            positions; the value at masked-out positions is ignored.
        mask: bool (True = label observed) or 0/1 tensor of the same shape, or None (all observed).
        validate: check values (finite, binary targets, 0/1 mask). Costs one device sync.

    Returns:
        0-d tensor: sum_i m_i l(x_i, y_i) / max(sum_i m_i, 1); 0.0 (gradient 0) when nothing is observed.

    Raises:
        TypeError: non-tensor inputs, non-float logits.
        ValueError: shape mismatch, NaN/inf anywhere, targets outside {0, 1} at observed
            positions, a float mask with values other than 0/1 (the message names the argument).
    """
    targets, mask = _check_inputs(logits, targets, mask, "logits", "targets")
    if validate:
        _validate_values(logits, targets, mask, "logits", "targets", binary_target=True)
    observed = None if mask is None else mask != 0
    x, y = _neutralise(logits, targets, observed)
    # -log sigma(x) = softplus(-x) and -log(1 - sigma(x)) = softplus(x)
    elementwise = y * F.softplus(-x, threshold=_SOFTPLUS_THRESHOLD) + (1 - y) * F.softplus(
        x, threshold=_SOFTPLUS_THRESHOLD
    )
    return _masked_mean(elementwise, observed)


def mean_squared_error(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    validate: bool = True,
) -> torch.Tensor:
    r"""Mean squared error over observed entries.

    Derivation (Bishop 2006, sec. 1.2.5 and 3.1.1): with a Gaussian likelihood
    target ~ N(pred, sigma^2), the negative log-likelihood is

        -log p(t | y) = (t - y)^2 / (2 sigma^2) + log(sigma sqrt(2 pi)),

    so for a fixed sigma, maximum likelihood minimises l(y, t) = (y - t)^2. Equal to
    ``torch.nn.functional.mse_loss`` when every entry is observed.

    Args:
        pred: float tensor of any shape.
        target: real tensor of the same shape (masked-out values are ignored).
        mask: bool (True = observed) or 0/1 tensor of the same shape, or None.
        validate: check that values are finite and the mask is 0/1 (one device sync).

    Returns:
        0-d tensor: sum_i m_i (y_i - t_i)^2 / max(sum_i m_i, 1).

    Raises:
        TypeError / ValueError as in :func:`binary_cross_entropy_with_logits`.
    """
    target, mask = _check_inputs(pred, target, mask, "pred", "target")
    if validate:
        _validate_values(pred, target, mask, "pred", "target", binary_target=False)
    observed = None if mask is None else mask != 0
    y, t = _neutralise(pred, target, observed)
    return _masked_mean((y - t) ** 2, observed)


def huber(
    pred: torch.Tensor,
    target: torch.Tensor,
    delta: float = 1.0,
    mask: torch.Tensor | None = None,
    *,
    validate: bool = True,
) -> torch.Tensor:
    r"""Mean Huber loss over observed entries (Huber, "Robust Estimation of a Location
    Parameter", Annals of Mathematical Statistics, 1964).

    With residual r = y - t:

        l(r) = r^2 / 2                     if |r| <= delta
               delta * (|r| - delta / 2)   otherwise

    Quadratic (like MSE) for small residuals, linear (like MAE) for large ones, so a few
    outlying ratings do not dominate the gradient, whose magnitude is capped at delta.
    Computed branch-free as 0.5 q^2 + delta (|r| - q) with q = min(|r|, delta). Equal to
    ``torch.nn.functional.huber_loss(pred, target, delta=delta)`` (not ``smooth_l1_loss``,
    which divides by delta).

    Args:
        pred: float tensor of any shape.
        target: real tensor of the same shape (masked-out values are ignored).
        delta: the threshold between the quadratic and linear parts, a finite number > 0.
        mask: bool (True = observed) or 0/1 tensor of the same shape, or None.
        validate: check that values are finite and the mask is 0/1 (one device sync).

    Raises:
        TypeError: delta not a real number, and as in :func:`binary_cross_entropy_with_logits`.
        ValueError: delta <= 0 or not finite, and as in :func:`binary_cross_entropy_with_logits`.
    """
    delta = check_number("delta", delta, low=0, low_open=True)
    target, mask = _check_inputs(pred, target, mask, "pred", "target")
    if validate:
        _validate_values(pred, target, mask, "pred", "target", binary_target=False)
    observed = None if mask is None else mask != 0
    y, t = _neutralise(pred, target, observed)
    abs_residual = (y - t).abs()
    quadratic = abs_residual.clamp(max=delta)
    elementwise = 0.5 * quadratic**2 + delta * (abs_residual - quadratic)
    return _masked_mean(elementwise, observed)


def task_loss(
    kind: Literal["binary", "regression"],
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    validate: bool = True,
) -> torch.Tensor:
    """The default loss for a task kind (``TaskSpec.kind``): binary -> BCE on logits, regression -> MSE.

    Args:
        kind: "binary" (``pred`` are logits) or "regression".
        pred, target, mask, validate: as in the loss functions.
    """
    if kind == "binary":
        return binary_cross_entropy_with_logits(pred, target, mask, validate=validate)
    if kind == "regression":
        return mean_squared_error(pred, target, mask, validate=validate)
    raise ValueError(f"kind must be one of {TASK_KINDS}, got {kind!r}")
