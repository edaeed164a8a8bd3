"""Entire Space Multi-task Model (ESMM; Ma, Zhao, Huang, Wang, Hu, Zhu & Gai, SIGIR 2018,
"Entire Space Multi-Task Model: An Effective Approach for Estimating Post-Click Conversion
Rate").

Conversion is observed only after a click, so a CVR model trained on clicked impressions
sees a biased sample (sample-selection bias) and very little data. ESMM instead models two
quantities over *all* impressions, which share the input embeddings:

    pCTR = σ(a),  a = tower_ctr(x);     pCVR = σ(b),  b = tower_cvr(x);
    pCTCVR = p(click ∧ convert | x) = pCTR · pCVR.

It is trained with the CTR loss on clicks and the CTCVR loss on conversions, both over every
impression; pCVR is never fitted to a label directly and is read off at serving time.

For a BCE-with-logits trainer the model outputs the logit of pCTCVR. Since
1/(σ(a)σ(b)) = (1 + e^{-a})(1 + e^{-b}),

    logit(σ(a)σ(b)) = −log(e^{-a} + e^{-b} + e^{-a-b}) = −logsumexp(−a, −b, −a−b),

which equals log p − log(1 − p) with log p = logσ(a) + logσ(b), but needs no log1mexp and
stays finite (no NaN in value or gradient) for any finite logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from mtlkit.checks import check_str
from mtlkit.models.base import ModelConfig, MultiTaskModel, probability_logit
from mtlkit.models.encoder import FeatureEncoder

if TYPE_CHECKING:
    from mtlkit.data.schema import FeatureSchema


def ctcvr_logit(ctr_logit: Tensor, cvr_logit: Tensor) -> Tensor:
    """logit(σ(a) · σ(b)) = −logsumexp(−a, −b, −a−b), elementwise (see the module docstring).

    Computed in float32 at least (under bf16 autocast too): pCTCVR is often tiny.
    """
    dtype = torch.promote_types(ctr_logit.dtype, torch.float32)
    ctr_logit, cvr_logit = ctr_logit.to(dtype), cvr_logit.to(dtype)
    terms = torch.stack([-ctr_logit, -cvr_logit, -(ctr_logit + cvr_logit)])  # (3, ...)
    return -torch.logsumexp(terms, dim=0)


@dataclass
class ESMMConfig(ModelConfig):
    """ESMM: a CTR tower for ``ctr_task`` and a CVR tower whose product with pCTR is the
    prediction for ``ctcvr_task`` (both binary tasks of the schema)."""

    ctr_task: str = "click"
    ctcvr_task: str = "purchase"

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("ctr_task", "ctcvr_task"):
            check_str(name, getattr(self, name), what="a non-empty task name")
        if self.ctr_task == self.ctcvr_task:
            raise ValueError(
                f"ctcvr_task must differ from ctr_task={self.ctr_task!r}, got {self.ctcvr_task!r}"
            )


class ESMM(MultiTaskModel):
    """Shared encoder → a CTR tower and a CVR tower (and a tower for any other task).

    Outputs: ``ctr_task`` → the CTR logit a; ``ctcvr_task`` → logit(pCTR · pCVR); any other
    task → its own tower's prediction. ``towers[ctcvr_task]`` is the CVR tower.
    """

    config_class = ESMMConfig

    def __init__(self, schema: FeatureSchema, config: ESMMConfig | None = None) -> None:
        super().__init__(schema, config)
        config = self.config
        for name in ("ctr_task", "ctcvr_task"):
            task = getattr(config, name)
            if task not in self.task_kinds:
                raise ValueError(
                    f"{name} must be one of the schema's tasks {list(self.task_names)}, got {task!r}"
                )
            if self.task_kinds[task] != "binary":
                raise ValueError(
                    f"{name} must name a binary task, got {task!r} ({self.task_kinds[task]})"
                )
        self.encoder = FeatureEncoder(schema, config)
        self.towers = self.make_towers(self.encoder.out_dim)

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        x = self.encoder(batch)  # (B, d_in): the shared embedding layer of ESMM
        outputs = {name: self.towers[name](x).squeeze(-1) for name in self.task_names}  # (B,)
        ctr, cvr = self.config.ctr_task, self.config.ctcvr_task
        outputs[cvr] = ctcvr_logit(outputs[ctr], outputs[cvr])  # the CVR tower's logit → pCTCVR
        return outputs

    def output_biases(self, means: dict[str, float]) -> dict[str, float]:
        """As for other models, except the CVR tower: pCVR = pCTCVR / pCTR over all impressions."""
        biases = super().output_biases(means)
        ctr, cvr = self.config.ctr_task, self.config.ctcvr_task
        if cvr in means and means.get(ctr, 0.0) > 0:
            biases[cvr] = probability_logit(means[cvr] / means[ctr])
        return biases

    def cvr_logit(self, batch: dict[str, Tensor]) -> Tensor:
        """The CVR tower's logit b ``(B,)``: pCVR = σ(b), the post-click conversion rate."""
        return self.towers[self.config.ctcvr_task](self.encoder(batch)).squeeze(-1)

    def predict_cvr(self, batch: dict[str, Tensor]) -> Tensor:
        """pCVR = p(convert | click, x) ``(B,)``, a probability."""
        return torch.sigmoid(self.cvr_logit(batch))

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters())

    def last_shared_parameters(self) -> list[nn.Parameter]:
        # ESMM shares only the encoder, whose branches (embeddings, Transformer) are
        # concatenated rather than ending in one layer, so the whole encoder is the last
        # shared "layer".
        return list(self.encoder.parameters())
