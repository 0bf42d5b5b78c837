"""Feedback that reads the numbers: each rule looks at one task's results and, when it
applies, says in plain words what the numbers show and what to try next."""
from __future__ import annotations

import math
from dataclasses import dataclass

from .results import TaskResult

OVERFIT_GAP = 0.10       # training minus validation accuracy at the last epoch
UNDERFIT_TRAIN = 0.50    # training accuracy below this at the last epoch
RISING_STEP = 0.005      # validation accuracy gain per epoch that counts as still rising
SMALL_BATCH = 16         # BatchNormalization statistics get noisy at or below this


@dataclass(frozen=True)
class Feedback:
    rule: str
    message: str


def last_value(history: dict, key: str):
    """The last recorded value of a history key, skipping NaN epochs written as null."""
    values = [v for v in history.get(key, []) if v is not None]
    return values[-1] if values else None


def overfitting(t: TaskResult, max_epochs: int) -> Feedback | None:
    train, val = last_value(t.history, "accuracy"), last_value(t.history, "val_accuracy")
    if train is None or val is None or train - val <= OVERFIT_GAP:
        return None
    return Feedback("overfitting",
                    f"Training accuracy ({train:.0%}) ends far above validation accuracy "
                    f"({val:.0%}): the model is memorising the training images. Dropout, data "
                    f"augmentation (e.g. RandomFlip, RandomTranslation layers) or weight decay "
                    f"usually narrow this gap.")


def underfitting(t: TaskResult, max_epochs: int) -> Feedback | None:
    train = last_value(t.history, "accuracy")
    if train is None or train >= UNDERFIT_TRAIN or not t.history.get("loss"):
        return None
    return Feedback("underfitting",
                    f"Training accuracy is only {train:.0%} at the last epoch: the model cannot "
                    f"even fit the training images. Give it more capacity (more filters or "
                    f"units, another block), check the learning rate, or train for more epochs.")


def diverging(t: TaskResult, max_epochs: int) -> Feedback | None:
    losses = t.history.get("loss", [])
    nan = any(v is None or (isinstance(v, float) and not math.isfinite(v)) for v in losses) or \
        any(f.check == "nan_loss" and not f.ok for f in t.findings)
    if nan:
        return Feedback("diverging",
                        "The loss became NaN: the updates grew without bound. Lower the "
                        "learning rate (10x smaller is a good first step), and check that "
                        "inputs are scaled to [0, 1].")
    if len(losses) >= 3 and losses[-1] > losses[0] * 1.05:
        return Feedback("diverging",
                        f"The training loss rose from {losses[0]:.3f} to {losses[-1]:.3f}: "
                        f"training is diverging. Lower the learning rate.")
    return None


def still_rising(t: TaskResult, max_epochs: int) -> Feedback | None:
    val = [v for v in t.history.get("val_accuracy", []) if v is not None]
    if len(val) < 3 or not (val[-1] - val[-2] > RISING_STEP and val[-2] - val[-3] > RISING_STEP):
        return None
    room = max_epochs - len(val)
    more = (f"the budget allows {room} more epoch(s)" if room > 0 else
            "the budget is used up, so a faster-learning model or a higher learning rate "
            "would help more")
    return Feedback("still_rising",
                    f"Validation accuracy was still rising at the last epoch "
                    f"({val[-3]:.1%} -> {val[-2]:.1%} -> {val[-1]:.1%}): more epochs would "
                    f"likely help; {more}.")


def small_batch_with_batchnorm(t: TaskResult, max_epochs: int) -> Feedback | None:
    layers = (t.description or {}).get("layers", [])
    if not t.batch_size or t.batch_size > SMALL_BATCH or \
            not any(l["class_name"] == "BatchNormalization" for l in layers):
        return None
    return Feedback("small_batch_batchnorm",
                    f"BatchNormalization normalises each minibatch with that minibatch's own "
                    f"mean and variance; with a batch size of {t.batch_size} those estimates are "
                    f"noisy, which hurts training and makes the moving statistics used at test "
                    f"time unreliable. Batch sizes of 32 to 128 work better.")


def output_and_loss(t: TaskResult, max_epochs: int) -> Feedback | None:
    for f in t.findings:
        if f.check == "output_activation" and not f.ok:
            return Feedback("output_and_loss",
                            f.message + " Either end the model with "
                            "Dense(10, activation='softmax'), or keep the linear output and "
                            "compile with SparseCategoricalCrossentropy(from_logits=True).")
    return None


RULES = (diverging, overfitting, underfitting, still_rising, small_batch_with_batchnorm,
         output_and_loss)


# Rules that read a trend over epochs: meaningless after a quick check's one short epoch.
EPOCH_RULES = (overfitting, underfitting, still_rising)


def feedback(t: TaskResult, max_epochs: int, quick: bool = False) -> list[Feedback]:
    return [fb for rule in RULES if not (quick and rule in EPOCH_RULES)
            and (fb := rule(t, max_epochs)) is not None]
