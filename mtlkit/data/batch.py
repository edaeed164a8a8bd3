"""The batch contract shared by data, models and the trainer: the key names and :class:`Batch`.

A batch is a plain ``dict[str, Tensor]`` (typed as :class:`Batch`); its keys are the constants
below, never string literals:

===========================  ======================  ==============================================
key                          dtype, shape            meaning
===========================  ======================  ==============================================
``user``                     int64 (B,)              user index 1..n_users-1; 0 = unknown (OOV)
``item``                     int64 (B,)              target item index; 0 = not seen in train (OOV)
``sparse``                   int64 (B, n_sparse)     other categorical fields, 0 = OOV
``dense``                    float32 (B, n_dense)    dense fields, z-scored with train statistics
``history``                  int64 (B, seq_len)      the user's previous positive items strictly
                                                     before the sample's timestamp, oldest first,
                                                     LEFT-padded with 0 (last column = most recent)
``history_padding_mask``     bool (B, seq_len)       True = padding (torch ``key_padding_mask``)
``labels``                   float32 (B, n_tasks)    label per task, 0.0 where unobserved
``label_mask``               bool (B, n_tasks)       True = label observed
===========================  ======================  ==============================================

Optional keys models ignore: ``is_cold_item`` bool (B,), ``timestamp`` int64 (B,),
``item_content`` int64 (B,) (the target item's row in ``schema.item_text_embeddings`` /
``schema.item_titles``, also for cold items), ``is_bot`` bool (B,), ``is_female`` bool (B,)
(when the users table has a gender column) and the synthetic ground truth float32 (B,) (NaN on
sampled negatives, which were never shown): the generator's ``true_click_prob`` / ``true_cvr`` /
``true_purchase_prob``, which include the impression's hidden intent, and the achievable bound
``bayes_click_prob`` / ``bayes_cvr`` / ``bayes_purchase_prob``, the same probabilities with the
intent integrated out (see :func:`mtlkit.data.synthetic.make_recsys_funnel`).

Item indices. All items the builder knows (the ``items`` table and the interactions) get a
*catalog* index 1..n_items-1; the items seen in the training split come first
(1..``info["n_warm_items"]``), the others after them. ``item`` and ``history`` hold the catalog
index for warm items and 0 (OOV) for items never seen in training — an honest cold start, since
their ID embeddings would be untrained. ``item_content`` always holds the catalog index, so a
content model (title text embeddings) can still score cold items. ``schema.n_items`` counts the
whole catalog, so ``item_text_embeddings`` has one row per catalog index.

Tabular data sets (census-income, synthetic-mmoe) have no users, items or history: ``user`` and
``item`` are all 0 and ``history`` has ``seq_len`` = 0 columns, so every model reads the same keys.
"""

from __future__ import annotations

from typing import Final, TypedDict

from torch import Tensor

from mtlkit.data import columns as C

__all__ = [
    "USER", "ITEM", "SPARSE", "DENSE", "HISTORY", "HISTORY_PADDING_MASK", "LABELS", "LABEL_MASK",
    "IS_COLD_ITEM", "TIMESTAMP", "ITEM_CONTENT", "IS_BOT", "IS_FEMALE", "GROUND_TRUTH", "Batch",
]  # fmt: skip

# Final: type checkers read each constant as its literal key, so Batch's keys are checked.
# Every batch: the model inputs, then the training targets
USER: Final = "user"
ITEM: Final = "item"
SPARSE: Final = "sparse"
DENSE: Final = "dense"
HISTORY: Final = "history"
HISTORY_PADDING_MASK: Final = "history_padding_mask"
LABELS: Final = "labels"
LABEL_MASK: Final = "label_mask"
# Optional: evaluation, audits and adversaries read them; models ignore them
IS_COLD_ITEM: Final = "is_cold_item"
TIMESTAMP: Final = "timestamp"
ITEM_CONTENT: Final = "item_content"
IS_BOT: Final = "is_bot"
IS_FEMALE: Final = "is_female"  # the user's gender is "F" (when the users table has gender)
GROUND_TRUTH = (  # synthetic funnel only: the generator's probabilities, and the achievable bound
    C.TRUE_CLICK_PROB, C.TRUE_CVR, C.TRUE_PURCHASE_PROB, C.BAYES_CLICK_PROB, C.BAYES_CVR, C.BAYES_PURCHASE_PROB,
)  # fmt: skip


class Batch(TypedDict, total=False):
    """The dict a model receives: one tensor per key of the table in the module docstring.

    ``total=False`` because keys differ by source: a training batch holds the first eight keys
    and the optional ones its data set has; a batch scored for recommendation
    (:func:`mtlkit.recommend.candidate_batch`) holds the six model inputs and no labels.
    """

    user: Tensor  # int64 (B,)
    item: Tensor  # int64 (B,)
    sparse: Tensor  # int64 (B, n_sparse)
    dense: Tensor  # float32 (B, n_dense)
    history: Tensor  # int64 (B, seq_len)
    history_padding_mask: Tensor  # bool (B, seq_len), True = padding
    labels: Tensor  # float32 (B, n_tasks)
    label_mask: Tensor  # bool (B, n_tasks), True = observed
    is_cold_item: Tensor  # bool (B,)
    timestamp: Tensor  # int64 (B,)
    item_content: Tensor  # int64 (B,)
    is_bot: Tensor  # bool (B,)
    is_female: Tensor  # bool (B,)
    true_click_prob: Tensor  # float32 (B,)
    true_cvr: Tensor  # float32 (B,)
    true_purchase_prob: Tensor  # float32 (B,)
    bayes_click_prob: Tensor  # float32 (B,): the achievable bound (hidden intent integrated out)
    bayes_cvr: Tensor  # float32 (B,)
    bayes_purchase_prob: Tensor  # float32 (B,)
