"""Column names shared by every data loader and sample builder (one place, no scattered literals)."""

from __future__ import annotations

# Interactions (ratings / impressions)
USER_ID = "user_id"
ITEM_ID = "item_id"
RATING = "rating"
TIMESTAMP = "timestamp"

# Items
TITLE = "title"
YEAR = "year"
GENRES = "genres"
CATEGORY = "category"

# Users
GENDER = "gender"
AGE = "age"
OCCUPATION = "occupation"
ZIP = "zip"

# Task names used across the kit
CLICK = "click"
LIKE = "like"
PURCHASE = "purchase"
RATING_TASK = "rating"

# Task definitions
LIKE_MIN_RATING = 4  # the "like" task: rating >= 4 on MovieLens' 1-5 scale

# Synthetic funnel (mtlkit.data.synthetic.make_recsys_funnel)
PRICE = "price"
IS_COLD = "is_cold"
AGE_BUCKET = "age_bucket"
REGION = "region"
DEVICE = "device"
IS_BOT = "is_bot"  # nuisance user attribute (never a model input by default)
TRUE_CLICK_PROB = "true_click_prob"  # ground truth P(click)
TRUE_CVR = "true_cvr"  # ground truth P(purchase | click)
TRUE_PURCHASE_PROB = "true_purchase_prob"  # ground truth P(click and purchase) = CTCVR
# The achievable bound: the same probabilities given only what a model can know (the hidden
# intent η integrated out), the best any model can predict
BAYES_CLICK_PROB = "bayes_click_prob"  # E_η[P(click)]
BAYES_CVR = "bayes_cvr"  # P(purchase | click) = E_η[P(click) P(purchase | click)] / E_η[P(click)]
BAYES_PURCHASE_PROB = "bayes_purchase_prob"  # E_η[P(click) P(purchase | click)] = the CTCVR bound

# More task names
WATCH = "watch"  # alias of the implicit "click" task for MovieLens-style positives
CONVERSION = "conversion"  # P(purchase | click), labelled on clicked impressions only
CLICK_LIKE = "click_like"  # P(click AND like), labelled on every row (the entire-space twin of "like")
