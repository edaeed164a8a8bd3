"""Synthetic multi-task data with known ground truth (offline, seeded, no license issues).

Two generators:

* :func:`make_correlated_tasks` — the synthetic regression pair of the MMoE paper (Ma et al.,
  KDD 2018, section 3.2), whose *task correlation* (the cosine of the two weight vectors) is a
  knob, so a notebook can show how shared-bottom models degrade when tasks drift apart.
* :func:`make_recsys_funnel` — a small e-commerce world (impression -> click -> purchase ->
  rating) with latent user/item factors, item titles whose words carry the category, cold-start
  items, a hidden purchase intent that creates the sample-selection bias ESMM addresses (Ma et
  al., SIGIR 2018), and the true click / conversion probabilities of every impression.

Both use only :class:`numpy.random.Generator` draws and elementwise numpy arithmetic, so the same
seed gives the same data on every run and platform.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mtlkit.data import columns as C

__all__ = [
    "INTENT_QUADRATURE_NODES",
    "intent_expectations",
    "CorrelatedTasks",
    "FunnelData",
    "CATEGORY_WORDS",
    "FILLER_WORDS",
    "make_correlated_tasks",
    "make_recsys_funnel",
]


# --------------------------------------------------------------------------------------------
# MMoE synthetic regression tasks
# --------------------------------------------------------------------------------------------


@dataclass
class CorrelatedTasks:
    """Output of :func:`make_correlated_tasks`.

    X: (n, n_features) float32 inputs; Y: (n, 2) float32 labels (column t = task t+1);
    w1, w2: (n_features,) float64 task weight vectors; cosine: cos(w1, w2) (= the requested
    correlation up to rounding); alphas, betas: (n_sin,) the shared sinusoid parameters.
    """

    X: np.ndarray
    Y: np.ndarray
    w1: np.ndarray
    w2: np.ndarray
    cosine: float
    alphas: np.ndarray
    betas: np.ndarray


def _orthonormal_pair(rng: np.random.Generator, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Two random orthogonal unit vectors (Gram-Schmidt on two Gaussian draws)."""
    u1 = rng.standard_normal(dim)
    u1 /= np.linalg.norm(u1)
    u2 = rng.standard_normal(dim)
    u2 -= (u1 @ u2) * u1  # remove the u1 component
    u2 /= np.linalg.norm(u2)
    return u1, u2


def make_correlated_tasks(
    n: int,
    correlation: float,
    *,
    n_features: int = 100,
    c: float = 1.0,
    n_sin: int = 10,
    noise_std: float = 0.01,
    alphas: np.ndarray | None = None,
    betas: np.ndarray | None = None,
    seed: int = 0,
) -> CorrelatedTasks:
    r"""Two regression tasks with a controlled task correlation (Ma et al., KDD 2018, §3.2).

    The procedure of the MMoE paper, step by step:

    1. two orthogonal unit vectors u1 ⟂ u2 in R^d (random, Gram-Schmidt);
    2. w1 = c·u1,  w2 = c·(p·u1 + sqrt(1 - p²)·u2), so cos(w1, w2) = p exactly;
    3. x ~ N(0, I_d);
    4. y_t = w_tᵀx + Σ_{i=1..m} sin(α_i·w_tᵀx + β_i) + ε_t,  ε_t ~ N(0, noise_std²) i.i.d.

    The paper calls α_i, β_i "given parameters that control the shape of the sinusoidal
    functions" and gives no values (nor values for c and m). We follow the Google Research
    reference generator for that paper (Apache-2.0), which notes the same gap and uses
    c = 1, m = 10, α_i = i, β_i = (i - 1)² and noise standard deviation 0.01 (the paper writes
    ε ~ N(0, 0.01)). The sinusoid parameters are shared by both tasks; pass ``alphas`` /
    ``betas`` to use others. In the linear case (no sinusoids) the label Pearson correlation
    is exactly p; with them it still grows monotonically with p (the paper's Figure 2).

    Scale of the labels with these defaults (population values; z_t = w_tᵀx ~ N(0, c²)):
    Var(y_t) ≈ 7.05, of which the sinusoidal sum carries Var ≈ 4.60, so predicting the mean
    scores MSE ≈ 7.05, the best linear predictor (least squares on x, the linear part only)
    ≈ 4.07, and an oracle that knows w_t and the sinusoids noise_std² = 1e-4. The sinusoids
    with α_i up to 10 oscillate many times over the range of z_t, so a network has to find
    the direction w_t in R^d *and* fit a high-frequency function of it; with too few samples
    or optimiser steps every model sits near the linear floor, where differences between
    multi-task architectures cannot show.

    Args:
        n: number of samples (> 0).
        correlation: p, the cosine between w1 and w2, in [-1, 1].
        n_features: input dimension d (>= 2; the paper uses 100).
        c: scale of the weight vectors.
        n_sin: number m of sinusoids (ignored when ``alphas``/``betas`` are given).
        noise_std: standard deviation of the label noise.
        alphas, betas: optional sinusoid parameters, each of shape (m,).
        seed: seed of the numpy Generator.
    """
    if not isinstance(n, (int, np.integer)) or n <= 0:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not -1.0 <= float(correlation) <= 1.0:
        raise ValueError(f"correlation must be in [-1, 1], got {correlation!r}")
    if not isinstance(n_features, (int, np.integer)) or n_features < 2:
        raise ValueError(f"n_features must be an integer >= 2, got {n_features!r}")
    if not isinstance(n_sin, (int, np.integer)) or n_sin < 0:
        raise ValueError(f"n_sin must be a non-negative integer, got {n_sin!r}")
    if noise_std < 0:
        raise ValueError(f"noise_std must be >= 0, got {noise_std!r}")
    alphas = np.arange(1, n_sin + 1, dtype=np.float64) if alphas is None else np.asarray(alphas, float)
    betas = np.arange(n_sin, dtype=np.float64) ** 2 if betas is None else np.asarray(betas, float)
    if alphas.shape != betas.shape or alphas.ndim != 1:
        raise ValueError(
            f"alphas and betas must be 1-D of equal length, got {alphas.shape} and {betas.shape}"
        )

    p = float(correlation)
    rng = np.random.default_rng(seed)
    u1, u2 = _orthonormal_pair(rng, n_features)
    w1 = c * u1
    w2 = c * (p * u1 + math.sqrt(max(0.0, 1.0 - p * p)) * u2)
    X = rng.standard_normal((n, n_features))  # (n, d)
    noise = noise_std * rng.standard_normal((n, 2))
    labels = []
    for t, w in enumerate((w1, w2)):
        z = X @ w  # (n,)
        nonlinear = np.sin(z[:, None] * alphas[None, :] + betas[None, :]).sum(axis=1)  # (n,)
        labels.append(z + nonlinear + noise[:, t])
    cosine = float(w1 @ w2 / (np.linalg.norm(w1) * np.linalg.norm(w2)))
    return CorrelatedTasks(
        X=X.astype(np.float32),
        Y=np.stack(labels, axis=1).astype(np.float32),
        w1=w1,
        w2=w2,
        cosine=cosine,
        alphas=alphas,
        betas=betas,
    )


# --------------------------------------------------------------------------------------------
# E-commerce funnel
# --------------------------------------------------------------------------------------------

# Each category has its own words, so a title reveals its category to a bag-of-words or a
# pretrained language model; filler words are shared by all categories and carry no signal.
CATEGORY_WORDS: dict[str, tuple[str, ...]] = {
    "electronics": ("wireless", "headphones", "charger", "bluetooth", "speaker", "laptop",
                    "usb", "tablet", "keyboard", "monitor"),
    "books": ("novel", "paperback", "mystery", "poetry", "biography", "hardcover", "thriller",
              "memoir", "anthology", "cookbook"),
    "kitchen": ("skillet", "knife", "blender", "saucepan", "kettle", "spatula", "cutting",
                "board", "toaster", "whisk"),
    "sports": ("running", "shoes", "yoga", "mat", "dumbbell", "bicycle", "helmet", "tennis",
               "racket", "jersey"),
    "beauty": ("lipstick", "moisturizer", "shampoo", "perfume", "mascara", "serum", "lotion",
               "nail", "polish", "cleanser"),
    "toys": ("puzzle", "doll", "lego", "plush", "teddy", "bear", "robot", "board-game",
             "action-figure", "kite"),
    "garden": ("shovel", "seeds", "hose", "planter", "fertilizer", "rake", "lawn", "mower",
               "pruner", "flowerpot"),
    "grocery": ("coffee", "tea", "chocolate", "pasta", "olive", "oil", "cereal", "honey",
                "snack", "spices"),
    "fashion": ("jacket", "dress", "jeans", "sweater", "scarf", "sneakers", "handbag", "shirt",
                "boots", "sunglasses"),
    "pets": ("dog", "cat", "leash", "collar", "litter", "kibble", "aquarium", "chew", "toy",
             "bird-cage"),
    "automotive": ("tire", "wiper", "engine", "motor", "brake", "pads", "car", "battery",
                   "dashcam", "jumper"),
    "music": ("guitar", "piano", "drum", "violin", "ukulele", "microphone", "amplifier",
              "strings", "metronome", "headstock"),
}
FILLER_WORDS: tuple[str, ...] = (
    "new", "classic", "premium", "deluxe", "original", "essential", "compact", "value",
    "pro", "plus", "mini", "large", "black", "white", "blue", "red", "set", "pack", "edition",
    "series",
)
AGE_BUCKETS: tuple[str, ...] = ("18-24", "25-34", "35-44", "45-54", "55+")
REGIONS: tuple[str, ...] = ("north", "south", "east", "west")
DEVICES: tuple[str, ...] = ("ios", "android", "web")

_START_TIMESTAMP = 1_704_067_200  # 2024-01-01 00:00:00 UTC
_SECONDS_PER_DAY = 86_400


@dataclass
class FunnelData:
    """Output of :func:`make_recsys_funnel`: three tables plus the generating parameters.

    interactions: one row per impression, sorted by timestamp — user_id, item_id, timestamp
        (int64 seconds), click (0/1), purchase (float: 1.0/0.0 where click == 1, NaN where the
        item was not clicked, i.e. unobserved), rating (float 1..5 where purchase == 1, else
        NaN), true_click_prob = P(click), true_cvr = P(purchase | click),
        true_purchase_prob = P(click)·P(purchase | click) = the true CTCVR.
    items: item_id, category, title, price, is_cold.
    users: user_id, age_bucket, region, device, is_bot.
    truth: latent factors and intercepts (for notebooks that compare models with the truth).
    params: the arguments the world was generated with (``make_recsys_funnel(**params)``
        rebuilds it).
    cold_start_timestamp: when the cold items launch (no impression of them before).
    """

    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    truth: dict[str, np.ndarray] = field(default_factory=dict)
    params: dict[str, object] = field(default_factory=dict)
    cold_start_timestamp: int = 0


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


#: Gauss–Hermite nodes of the intent integrals: the error is below 1e-8 for these logistic
#: integrands, logits from −8 to 3 and s up to 2 (checked against adaptive quadrature in the tests).
INTENT_QUADRATURE_NODES = 40


def intent_expectations(click_score: np.ndarray, cvr_score: np.ndarray, selection_bias: float,
                        n_nodes: int = INTENT_QUADRATURE_NODES) -> tuple[np.ndarray, np.ndarray]:
    r"""E_η[σ(a + η)] and E_η[σ(a + η)·σ(b + sη)] for η ~ N(0, 1), by Gauss–Hermite quadrature.

    With the nodes x_k and weights w_k of ∫ e^{−x²} f(x) dx ≈ Σ_k w_k f(x_k),

        E[f(η)] = (1/√π) Σ_k w_k f(√2 x_k)

    (Abramowitz & Stegun, 1964, 25.4.46). The sum runs over the nodes, so memory stays O(N).

    Args:
        click_score: (N,) a, the click logit without the intent.
        cvr_score: (N,) b, the conversion logit without the intent.
        selection_bias: s, the intent's weight in the conversion logit.

    Returns:
        ``(p_click, p_ctcvr)``, each (N,): the click and click-and-purchase probabilities given
        everything but η.
    """
    nodes, weights = np.polynomial.hermite.hermgauss(n_nodes)
    p_click, p_ctcvr = np.zeros(len(click_score)), np.zeros(len(click_score))
    for x, w in zip(math.sqrt(2.0) * nodes, weights / math.sqrt(math.pi)):
        clicked = _sigmoid(click_score + x)
        p_click += w * clicked
        p_ctcvr += w * clicked * _sigmoid(cvr_score + selection_bias * x)
    return p_click, p_ctcvr


def _check_int(name: str, value: object, minimum: int) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_unit(name: str, value: float, low: float = 0.0, high: float = 1.0) -> None:
    if not low <= float(value) <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value!r}")


def _titles(rng: np.random.Generator, category: np.ndarray, names: list[str]) -> list[str]:
    """'[filler] word word' titles: two distinct words of the item's category + one filler."""
    n = len(category)
    n_words = len(CATEGORY_WORDS[names[0]])
    first = rng.integers(0, n_words, n)
    second = (first + rng.integers(1, n_words, n)) % n_words  # distinct from `first`
    filler = rng.integers(0, len(FILLER_WORDS), n)
    use_filler = rng.random(n) < 0.7
    out = []
    for j in range(n):  # string assembly only; one title per item, not per sample
        words = CATEGORY_WORDS[names[category[j]]]
        parts = [FILLER_WORDS[filler[j]]] if use_filler[j] else []
        parts += [words[first[j]], words[second[j]]]
        out.append(" ".join(parts))
    return out


def _sample_from_pools(
    rng: np.random.Generator, pool_of_row: np.ndarray, pools: list[np.ndarray], weights: list[np.ndarray]
) -> np.ndarray:
    """For each row draw one member of pools[pool_of_row] with probability ∝ its weight."""
    out = np.zeros(len(pool_of_row), dtype=np.int64)
    u = rng.random(len(pool_of_row))
    for k, (members, w) in enumerate(zip(pools, weights)):
        rows = np.flatnonzero(pool_of_row == k)
        if len(rows) == 0:
            continue
        cdf = np.cumsum(w)
        pick = np.searchsorted(cdf, u[rows] * cdf[-1], side="right")
        out[rows] = members[np.minimum(pick, len(members) - 1)]
    return out


def make_recsys_funnel(
    n_users: int,
    n_items: int,
    *,
    n_impressions: int | None = None,
    n_categories: int = 8,
    dim: int = 16,
    task_relatedness: float = 0.5,
    selection_bias: float = 1.0,
    cold_item_fraction: float = 0.1,
    cold_start: float = 0.9,
    bot_fraction: float = 0.05,
    days: int = 90,
    seed: int = 0,
) -> FunnelData:
    r"""An e-commerce impression -> click -> purchase -> rating world with known probabilities.

    The generative story (all draws from one seeded ``numpy.random.Generator``):

    * items: a category k_j, a latent vector v_j = m_{k_j} + 0.6·ξ_j around the category centre
      m_k ~ N(0, I_dim), an exposure popularity π_j (log-normal), a quality q_j ~ N(0, 0.5²), a
      price (log-normal around a category level; ℓ_j = its z-scored log), and a title made of
      two words of the category's vocabulary (:data:`CATEGORY_WORDS`) plus, for 70 % of the
      items, a filler word shared by all categories (so a text model can recover the category);
    * users: a click factor a_i ~ N(0, I_dim), a click bias c_i ~ N(0, 0.5²) and a purchase
      factor b_i = ρ·a_i + sqrt(1 - ρ²)·z_i with ρ = ``task_relatedness`` (the construction of
      the MMoE paper, so corr(a_iᵀv, b_iᵀv) = ρ); categorical features that are noisy functions
      of a_i (age bucket ← a_i[0], region ← a_i[1:3], device ← a_i[3]) and a nuisance
      ``is_bot`` flag (bots are more active, click more, buy less, and mostly use the web);
    * impressions: each user gets >= 5 impressions (more for active users), at uniform times
      over ``days`` days; the category shown follows the user's taste (softmax of a_iᵀm_k/√dim)
      and the item within it its popularity. Cold items (``cold_item_fraction``) are launched at
      ``cold_start`` (a fraction of the time span), are only shown after it, and are promoted
      (3× exposure weight) from then on;
    * every impression has a hidden purchase intent η ~ N(0, 1) (never returned as a feature):

        P(click)            = σ(−3.2 + a_iᵀv_j/√dim + 0.3·log π_j + c_i + η + 0.5·bot_i)
        P(purchase | click) = σ(−2.3 + 1.5·b_iᵀv_j/√dim + q_j − 0.4·ℓ_j + s·η − 1.0·bot_i)

      with s = ``selection_bias``. Clicked impressions are enriched in high-intent ones, so the
      conversion rate among clicks over-estimates the conversion rate over the entire impression
      space, E[true_cvr]: a CVR model trained on clicked impressions only is biased on the entire
      space — the sample-selection bias that ESMM (Ma et al., SIGIR 2018) removes by modelling
      pCTCVR = pCTR·pCVR over all impressions. s = 0 removes the hidden confounder;
    * purchase is drawn only for clicked impressions (NaN otherwise: unobserved), and a rating
      r = clip(round(2.8 + 0.8·b_iᵀv_j/√dim + 0.8·q_j + N(0, 0.7²)), 1, 5) only after a purchase.

    With the defaults: CTR ≈ 0.18, CVR among clicks ≈ 0.39, CTCVR ≈ 0.07, mean rating ≈ 3.9.

    Two kinds of "truth" come with every impression. ``true_click_prob``, ``true_cvr`` and
    ``true_purchase_prob`` are the probabilities the outcomes were drawn from; they include the
    impression's hidden intent η, which no model can observe, so no model can reach their AUC.
    ``bayes_click_prob``, ``bayes_cvr`` and ``bayes_purchase_prob`` are the *achievable bound*:
    the same probabilities given everything a model could know (the user, the item, their
    features, the time), with η integrated out (:func:`intent_expectations`):

        P(click | obs)          = E_η[σ(s_click + η)]
        P(click, buy | obs)     = E_η[σ(s_click + η) · σ(s_cvr + s·η)]          (the CTCVR bound)
        P(buy | click, obs)     = P(click, buy | obs) / P(click | obs)

    where s_click and s_cvr are the logits above without η. They are the Bayes-optimal
    predictions: a model's AUC or log-loss is judged against theirs on the same rows. By the
    law of total expectation their means equal the label rates; with s = 0 the CVR bound
    equals ``true_cvr``, and it exceeds it on average otherwise (clicks select high intent).

    Args:
        n_users, n_items: sizes of the world (>= 2 each).
        n_impressions: total number of impressions (default 40 per user; >= 5·n_users).
        n_categories: 2..12 item categories (each has its own title vocabulary).
        dim: dimension of the latent factors (>= 4).
        task_relatedness: ρ in [-1, 1], correlation of the click and purchase affinities.
        selection_bias: s >= 0, weight of the hidden intent in the purchase score.
        cold_item_fraction: share of items launched only at ``cold_start`` (in [0, 0.9]).
        cold_start: time (fraction of the span, in (0, 1)) when the cold items launch.
        bot_fraction: share of users flagged ``is_bot`` (in [0, 1]).
        days: length of the time span in days (>= 1).
        seed: seed of the numpy Generator.
    """
    _check_int("n_users", n_users, 2)
    _check_int("n_items", n_items, 2)
    if n_impressions is None:
        n_impressions = 40 * n_users
    _check_int("n_impressions", n_impressions, 5 * n_users)
    _check_int("n_categories", n_categories, 2)
    if n_categories > len(CATEGORY_WORDS):
        raise ValueError(f"n_categories must be <= {len(CATEGORY_WORDS)}, got {n_categories!r}")
    _check_int("dim", dim, 4)
    _check_int("days", days, 1)
    _check_unit("task_relatedness", task_relatedness, -1.0, 1.0)
    if float(selection_bias) < 0:
        raise ValueError(f"selection_bias must be >= 0, got {selection_bias!r}")
    _check_unit("cold_item_fraction", cold_item_fraction, 0.0, 0.9)
    if not 0.0 < float(cold_start) < 1.0:
        raise ValueError(f"cold_start must be in (0, 1), got {cold_start!r}")
    _check_unit("bot_fraction", bot_fraction)

    rng = np.random.default_rng(seed)
    sqrt_dim = math.sqrt(dim)
    names = list(CATEGORY_WORDS)[:n_categories]

    # ---- items ------------------------------------------------------------------------------
    centres = rng.standard_normal((n_categories, dim))  # (K, dim)
    category = rng.integers(0, n_categories, n_items)
    category[:n_categories] = np.arange(min(n_categories, n_items))  # every category non-empty
    item_factors = centres[category] + 0.6 * rng.standard_normal((n_items, dim))  # (I, dim)
    popularity = np.exp(rng.standard_normal(n_items))  # exposure weight, log-normal
    item_pop_logit = 0.3 * np.log(popularity)  # popular items are also a little more clickable
    quality = 0.5 * rng.standard_normal(n_items)
    category_price = rng.uniform(1.0, 4.0, n_categories)  # log-price level per category
    log_price = category_price[category] + 0.3 * rng.standard_normal(n_items)
    price = np.round(np.exp(log_price), 2)
    price_z = (log_price - log_price.mean()) / (log_price.std() + 1e-12)
    n_cold = int(round(cold_item_fraction * n_items))
    is_cold = np.zeros(n_items, dtype=bool)
    is_cold[rng.permutation(n_items)[:n_cold]] = True
    titles = _titles(rng, category, names)

    # ---- users ------------------------------------------------------------------------------
    click_factors = rng.standard_normal((n_users, dim))  # a_i
    independent = rng.standard_normal((n_users, dim))  # z_i
    rho = float(task_relatedness)
    purchase_factors = rho * click_factors + math.sqrt(max(0.0, 1.0 - rho * rho)) * independent
    user_click_bias = 0.5 * rng.standard_normal(n_users)
    is_bot = rng.random(n_users) < bot_fraction
    noise = 0.5 * rng.standard_normal((n_users, 4))
    age_bucket = np.digitize(click_factors[:, 0] + noise[:, 0], [-0.84, -0.25, 0.25, 0.84])
    region = 2 * (click_factors[:, 1] + noise[:, 1] > 0) + (click_factors[:, 2] + noise[:, 2] > 0)
    device = np.digitize(-(click_factors[:, 3] + noise[:, 3]), [-0.4, 0.6])  # 0 ios, 1 android, 2 web
    device = np.where(is_bot & (rng.random(n_users) < 0.7), 2, device)  # bots mostly on the web

    # ---- impressions: who, when --------------------------------------------------------------
    activity = np.exp(0.75 * rng.standard_normal(n_users)) * np.where(is_bot, 2.0, 1.0)
    min_per_user = 5
    extra = rng.multinomial(n_impressions - min_per_user * n_users, activity / activity.sum())
    counts = min_per_user + extra
    user = np.repeat(np.arange(n_users), counts)  # (N,)
    span = days * _SECONDS_PER_DAY
    offset = np.floor(rng.random(n_impressions) * span).astype(np.int64)
    late = offset >= int(cold_start * span)  # cold items are only available in the late period

    # ---- impressions: which item (taste-driven category, popularity within it) ---------------
    taste = click_factors @ centres.T / sqrt_dim  # (U, K)
    early_pool_empty = np.array([not np.any((category == k) & ~is_cold) for k in range(n_categories)])
    gumbel = -np.log(-np.log(rng.random((n_impressions, n_categories)) + 1e-300) + 1e-300)
    logits = taste[user] + gumbel  # (N, K)
    logits[~late[:, None] & early_pool_empty[None, :]] = -np.inf
    shown_category = np.argmax(logits, axis=1)
    pools, weights = [], []
    for k in range(n_categories):
        for period in (0, 1):  # 0: before cold_start (warm items), 1: after (all; new ones promoted)
            members = np.flatnonzero((category == k) & (~is_cold if period == 0 else True))
            w = popularity[members] * np.where(is_cold[members], 3.0, 1.0)
            pools.append(members)
            weights.append(w if len(members) else np.ones(0))
    item = _sample_from_pools(rng, 2 * shown_category + late, pools, weights)

    # ---- outcomes ------------------------------------------------------------------------------
    intent = rng.standard_normal(n_impressions)  # η, hidden
    click_affinity = np.einsum("nd,nd->n", click_factors[user], item_factors[item]) / sqrt_dim
    purchase_affinity = np.einsum("nd,nd->n", purchase_factors[user], item_factors[item]) / sqrt_dim
    bot = is_bot[user].astype(np.float64)
    mu_click, mu_purchase = -3.2, -2.3
    # the logits without the hidden intent: all a model could learn from users, items and time
    click_score = mu_click + click_affinity + item_pop_logit[item] + user_click_bias[user] + 0.5 * bot
    cvr_score = mu_purchase + 1.5 * purchase_affinity + quality[item] - 0.4 * price_z[item] - 1.0 * bot
    p_click = _sigmoid(click_score + intent)
    p_cvr = _sigmoid(cvr_score + float(selection_bias) * intent)
    bayes_click, bayes_ctcvr = intent_expectations(click_score, cvr_score, float(selection_bias))
    u_click, u_purchase = rng.random(n_impressions), rng.random(n_impressions)
    click = (u_click < p_click).astype(np.int64)
    purchased = (click == 1) & (u_purchase < p_cvr)
    purchase = np.where(click == 1, purchased.astype(np.float64), np.nan)
    satisfaction = 0.8 * purchase_affinity + 0.8 * quality[item]
    raw_rating = 2.8 + satisfaction + 0.7 * rng.standard_normal(n_impressions)
    rating = np.where(purchased, np.clip(np.round(raw_rating), 1, 5), np.nan)

    timestamp = _START_TIMESTAMP + offset
    order = np.lexsort((item, user, timestamp))  # log order: by time, ties by user then item
    interactions = pd.DataFrame(
        {
            C.USER_ID: user[order] + 1,  # raw ids start at 1, like MovieLens
            C.ITEM_ID: item[order] + 1,
            C.TIMESTAMP: timestamp[order],
            C.CLICK: click[order],
            C.PURCHASE: purchase[order],
            C.RATING: rating[order],
            C.TRUE_CLICK_PROB: p_click[order],
            C.TRUE_CVR: p_cvr[order],
            C.TRUE_PURCHASE_PROB: (p_click * p_cvr)[order],
            C.BAYES_CLICK_PROB: bayes_click[order],
            C.BAYES_CVR: (bayes_ctcvr / bayes_click)[order],
            C.BAYES_PURCHASE_PROB: bayes_ctcvr[order],
        }
    )
    items = pd.DataFrame(
        {
            C.ITEM_ID: np.arange(1, n_items + 1),
            C.CATEGORY: np.array(names, dtype=object)[category],
            C.TITLE: titles,
            C.PRICE: price,
            C.IS_COLD: is_cold,
        }
    )
    users = pd.DataFrame(
        {
            C.USER_ID: np.arange(1, n_users + 1),
            C.AGE_BUCKET: np.array(AGE_BUCKETS, dtype=object)[age_bucket],
            C.REGION: np.array(REGIONS, dtype=object)[region],
            C.DEVICE: np.array(DEVICES, dtype=object)[device],
            C.IS_BOT: is_bot,
        }
    )
    truth = {
        "category_centres": centres,
        "item_factors": item_factors,
        "user_click_factors": click_factors,
        "user_purchase_factors": purchase_factors,
        "intercepts": np.array([mu_click, mu_purchase]),
    }
    params = dict(
        n_users=n_users, n_items=n_items, n_impressions=n_impressions, n_categories=n_categories,
        dim=dim, task_relatedness=rho, selection_bias=float(selection_bias),
        cold_item_fraction=float(cold_item_fraction), cold_start=float(cold_start),
        bot_fraction=float(bot_fraction), days=days, seed=seed,
    )
    return FunnelData(
        interactions=interactions, items=items, users=users, truth=truth, params=params,
        cold_start_timestamp=int(_START_TIMESTAMP + int(cold_start * span)),
    )
