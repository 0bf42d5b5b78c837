"""Checks on what the child reported, decided in the grader's process.

Structure checks read the model description (layers, configs, shapes);
accuracy is computed here from the child's predictions and labels the child
never saw.  Messages say what was expected and what was received.
"""
from __future__ import annotations

import difflib
import json

import numpy as np

from .results import (CHECKED, ERROR, FAILED, HELD, PASSED, SKIPPED, ComparisonResult,
                      Finding, TaskResult, percent)

# Findings of this severity hold a task that would pass: zero points until a TA looks.
REVIEW = "review"
from .rubric import Comparison, Rubric, Task

# Config keys that differ between two identical architectures built twice.
_IGNORED_CONFIG = {"name", "trainable", "dtype", "build_config"}


def _fmt_shape(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + \
        ("," if len(shape) == 1 else "") + ")" if shape is not None else "unknown"


def structure_findings(task: Task, rubric: Rubric, desc: dict, compile_info: dict | None,
                       same_as_desc: dict | None, settings: dict | None = None,
                       same_as_settings: dict | None = None) -> list[Finding]:
    """``settings`` and ``same_as_settings``: epochs and batch size of this task and of the
    task it must equal (Q6), so that "nothing else changed" covers the training too."""
    found: list[Finding] = []
    expected_in = [None, *rubric.input_shape]
    if desc.get("input_shape") != expected_in:
        found.append(Finding("input_shape", False,
                             f"Expected input shape {_fmt_shape(expected_in)}. "
                             f"Received: input_shape={_fmt_shape(desc.get('input_shape'))}"))
    else:
        found.append(Finding("input_shape", True, f"Input shape {_fmt_shape(expected_in)}."))
    expected_out = [None, rubric.num_classes]
    if desc.get("output_shape") != expected_out:
        found.append(Finding("output_shape", False,
                             f"Expected output shape {_fmt_shape(expected_out)}, one score per "
                             f"class. Received: output_shape="
                             f"{_fmt_shape(desc.get('output_shape'))}"))
    else:
        found.append(Finding("output_shape", True, f"Output shape {_fmt_shape(expected_out)}."))
    found.append(_output_activation(desc, compile_info))
    # A layer is what keras class it is: a student's ``class Dense(Conv2D)`` is a Conv2D.
    classes = [layer.get("keras_class") or layer["class_name"]
               for layer in desc.get("layers", [])]
    disguised = [f"{layer['class_name']} (a subclass of {layer['keras_class']})"
                 for layer in desc.get("layers", []) if layer.get("custom")
                 and layer.get("named_like_keras")]
    if disguised:
        found.append(Finding("custom_layer", False,
                             f"Custom layer class(es) named like keras' own layers: "
                             f"{', '.join(disguised)}. The structure checks read each as the "
                             f"keras class it derives from, and a TA should read its code.",
                             severity=REVIEW))
    for name in task.require_layers:
        if name in classes:
            found.append(Finding("require_layers", True, f"Has {classes.count(name)} {name} "
                                                         f"layer(s)."))
        else:
            found.append(Finding("require_layers", False,
                                 f"Expected at least one {name} layer. Received layers: "
                                 f"{', '.join(classes) or 'none'}"))
    forbidden = [c for c in classes if c in task.forbid_layers]
    if forbidden:
        found.append(Finding("forbid_layers", False,
                             f"{task.title} may not use {', '.join(sorted(set(forbidden)))}. "
                             f"Received layers: {', '.join(classes)}"))
    elif task.forbid_layers:
        found.append(Finding("forbid_layers", True, "No convolution or pooling layers."
                             if "Conv2D" in task.forbid_layers else "No forbidden layers."))
    if task.same_as is not None:
        found.append(same_architecture(task, desc, same_as_desc))
        if same_as_desc is not None:
            found.append(same_training(task, rubric, desc, same_as_desc, settings or {},
                                       same_as_settings or {}))
    return found


def effective_training(desc: dict, rubric: Rubric) -> dict:
    """The optimizer and loss a model trains with: the student's compile, else the defaults
    the child described for it, else the rubric's names."""
    comp = desc.get("compile") or {}
    if comp.get("compiled"):
        return {"optimizer": comp.get("optimizer") or {}, "loss": comp.get("loss") or {}}
    default = comp.get("default") or {}
    return {"optimizer": default.get("optimizer") or {"name": rubric.training.optimizer},
            "loss": default.get("loss") or {"name": rubric.training.loss}}


def _norm(name) -> str:
    return str(name or "").lower().replace("_", "")


def same_training(task: Task, rubric: Rubric, desc: dict, other: dict, settings: dict,
                  other_settings: dict) -> Finding:
    """Q6 "nothing else changed": optimizer (class, learning rate, schedule), loss, epochs
    and batch size must equal those of the task it extends; every difference is listed."""
    mine, theirs = effective_training(desc, rubric), effective_training(other, rubric)
    diffs = []
    mo, to = mine["optimizer"], theirs["optimizer"]
    if _norm(mo.get("name")) != _norm(to.get("name")):
        diffs.append(f"optimizer {to.get('name')} -> {mo.get('name')}")
    else:
        for key in ("learning_rate", "schedule"):
            if mo.get(key) != to.get(key):
                diffs.append(f"{key.replace('_', ' ')} {to.get(key)!r} -> {mo.get(key)!r}")
    ml, tl = mine["loss"], theirs["loss"]
    if _norm(ml.get("name")) != _norm(tl.get("name")) or \
            bool(ml.get("from_logits")) != bool(tl.get("from_logits")):
        diffs.append(f"loss {tl.get('name')}{' (from_logits)' if tl.get('from_logits') else ''}"
                     f" -> {ml.get('name')}{' (from_logits)' if ml.get('from_logits') else ''}")
    for key in ("epochs", "batch_size"):
        if settings.get(key) is not None and other_settings.get(key) is not None and \
                settings[key] != other_settings[key]:
            diffs.append(f"{key.replace('_', ' ')} {other_settings[key]} -> {settings[key]}")
    if not diffs:
        return Finding("same_training", True,
                       f"Same optimizer, loss, epochs and batch size as {task.same_as!r}.")
    return Finding("same_training", False,
                   f"Only {' and '.join(task.same_as_ignoring)} layers may change from "
                   f"{task.same_as!r}, but the training changed too: " + "; ".join(diffs)
                   + f". Train it exactly as {task.same_as!r} (same compile call and TRAINING "
                     f"entry) so that the comparison measures the effect of the layers alone.")


def _output_activation(desc: dict, compile_info: dict | None) -> Finding:
    act = desc.get("output_activation")
    loss = (compile_info or {}).get("loss") or {"name": None, "from_logits": False}
    from_logits = bool(loss.get("from_logits"))
    if act == "softmax":
        if from_logits:
            return Finding("output_activation", False,
                           "The output layer applies softmax, but the loss is set with "
                           "from_logits=True, so softmax is applied twice. Remove one of them.")
        return Finding("output_activation", True, "Output is a softmax probability distribution.")
    if act == "linear" and from_logits:
        return Finding("output_activation", True, "Output is logits, with a from_logits loss.")
    return Finding("output_activation", False,
                   f"Expected a softmax output, or logits (no activation) with a loss that has "
                   f"from_logits=True. Received: output activation {act!r}, loss "
                   f"{loss.get('name')!r} with from_logits={from_logits}")


def layer_signature(layer: dict) -> str:
    cfg = {k: v for k, v in layer.get("config", {}).items() if k not in _IGNORED_CONFIG}
    return layer["class_name"] + json.dumps(cfg, sort_keys=True)


def _layer_text(layer: dict) -> str:
    cfg = layer.get("config", {})
    keys = ("units", "filters", "kernel_size", "strides", "padding", "activation", "pool_size",
            "rate")
    shown = ", ".join(f"{k}={cfg[k]}" for k in keys if k in cfg)
    return f"{layer['class_name']}({shown})"


def same_architecture(task: Task, desc: dict, other: dict | None) -> Finding:
    """Q6: the model, with the ignored layers removed, must equal the other task's model."""
    if other is None:
        return Finding("same_as", False,
                       f"{task.question} cannot be checked: it must be the {task.same_as!r} "
                       f"model with only {' and '.join(task.same_as_ignoring)} layers added, "
                       f"and the {task.same_as!r} model did not build. Fix that builder first; "
                       f"this task earns no points until the two can be compared.")
    mine = [l for l in desc.get("layers", []) if l["class_name"] not in task.same_as_ignoring]
    theirs = [l for l in other.get("layers", []) if l["class_name"] not in task.same_as_ignoring]
    a = [layer_signature(l) for l in theirs]
    b = [layer_signature(l) for l in mine]
    if a == b:
        return Finding("same_as", True,
                       f"Apart from {', '.join(task.same_as_ignoring)} layers, identical to the "
                       f"{task.same_as!r} model ({len(a)} layers).")
    diffs = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            continue
        if op == "replace" and i2 - i1 == j2 - j1:
            for t, m in zip(theirs[i1:i2], mine[j1:j2]):
                diffs.append(_describe_change(t, m))
        else:
            for t in theirs[i1:i2]:
                diffs.append(f"removed {_layer_text(t)} (layer {t['index'] + 1} of "
                             f"{task.same_as!r})")
            for m in mine[j1:j2]:
                diffs.append(f"added {_layer_text(m)} (layer {m['index'] + 1} here)")
    ignored = " and ".join(task.same_as_ignoring)
    return Finding("same_as", False,
                   f"Apart from {ignored} layers, this model must be the same as "
                   f"{task.same_as!r}. Differences: " + "; ".join(diffs))


def _describe_change(theirs: dict, mine: dict) -> str:
    if theirs["class_name"] != mine["class_name"]:
        return (f"layer {mine['index'] + 1} is {_layer_text(mine)} here but "
                f"{_layer_text(theirs)} in the original")
    tc, mc = theirs.get("config", {}), mine.get("config", {})
    keys = sorted(k for k in set(tc) | set(mc) if k not in _IGNORED_CONFIG and tc.get(k) != mc.get(k))
    changed = ", ".join(f"{k} {tc.get(k)!r} -> {mc.get(k)!r}" for k in keys)
    return f"layer {mine['index'] + 1} {mine['class_name']}: {changed}"


def budget_findings(task: Task, epochs: int, batch_size: int, max_batch_size: int,
                    source: str) -> list[Finding]:
    found = []
    if epochs > task.max_epochs:
        found.append(Finding("budget", False,
                             f"{source} asks for {epochs} epochs; the budget for {task.id!r} is "
                             f"{task.max_epochs}. Set epochs <= {task.max_epochs}."))
    else:
        found.append(Finding("budget", True, f"{epochs} epoch{'s' if epochs != 1 else ''}, within the budget of "
                                             f"{task.max_epochs}."))
    if not 1 <= batch_size <= max_batch_size:
        found.append(Finding("batch_size", False,
                             f"batch_size must be between 1 and {max_batch_size}. "
                             f"Received: {batch_size}"))
    return found


def accuracy_and_confusion(predictions: np.ndarray, labels: np.ndarray, num_classes: int):
    pred = predictions.argmax(axis=1)
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (labels, pred), 1)
    per_class = cm.diagonal() / np.maximum(cm.sum(axis=1), 1)
    return float((pred == labels).mean()), cm.tolist(), [float(v) for v in per_class]


def validate_predictions(preds, n: int, num_classes: int) -> str | None:
    """Why the child's predictions cannot be used, or None."""
    if not isinstance(preds, np.ndarray) or preds.dtype.kind != "f":
        return f"predictions must be a float array. Received: {type(preds).__name__}"
    if preds.shape != (n, num_classes):
        return f"expected predictions of shape ({n}, {num_classes}). Received: {preds.shape}"
    if not np.isfinite(preds).all():
        return "the model predicts NaN or infinite scores on the test images"
    return None


def decide(task: Task, result: TaskResult, quick: bool) -> None:
    """Set status, reason and points from the findings and the accuracy."""
    if result.status == ERROR:
        result.points = 0.0
        return
    failed = [f for f in result.findings if not f.ok and f.severity == "error"]
    if failed:
        result.status = FAILED
        result.reason = failed[0].message if len(failed) == 1 else \
            f"{len(failed)} checks failed: " + " | ".join(f.message for f in failed)
    elif quick:
        result.status = CHECKED
        result.reason = "Quick check only, not a grade: builds, passes the structure checks " \
                        "and trains one short epoch without NaN. Accuracy is not measured; " \
                        "grade without --quick for a verdict."
    elif task.threshold is not None:
        acc = result.test_accuracy
        how = _seeds_text(result)
        failed_runs = [r for r in result.runs if "test_accuracy" not in r]
        if acc is None:
            result.status, result.reason = ERROR, "No test accuracy was measured."
        elif failed_runs:
            result.status = FAILED
            result.reason = (f"{len(failed_runs)} of {len(result.runs)} seeds did not finish "
                             f"training, so the model does not reach the threshold reliably "
                             f"(a failed seed counts as 0%; mean {percent(acc, 2)}){how}.")
        elif acc >= task.threshold:
            result.status = PASSED
            result.reason = f"Test accuracy {percent(acc, 2)} >= {percent(task.threshold)}{how}."
        else:
            result.status = FAILED
            result.reason = f"Test accuracy {percent(acc, 2)} is below the threshold of " \
                            f"{percent(task.threshold)}{how}."
    else:
        acc = result.test_accuracy
        failed_runs = [r for r in result.runs if "test_accuracy" not in r]
        if failed_runs:  # no threshold, but a model that trains only on some seeds fails
            result.status = FAILED
            result.reason = (f"{len(failed_runs)} of {len(result.runs)} seeds did not finish "
                             f"training, so the model does not train reliably"
                             f"{_seeds_text(result)}.")
        else:
            result.status = PASSED
            result.reason = "Trained and meets every structure check" + (
                f"; test accuracy {acc:.2%}." if acc is not None else ".")
    held = [f for f in result.findings if not f.ok and f.severity == REVIEW]
    if result.status == PASSED and held:
        result.status = HELD
        result.reason = ("Held for review, no points until a TA has looked: "
                         + " | ".join(f.message for f in held) + f" (Otherwise: {result.reason})")
    result.points = task.points if result.status == PASSED else 0.0


def review_margin(review_gap: float, n_val: int, n_test: int) -> float:
    """How far test accuracy may exceed validation accuracy before a task is held: the
    rubric's gap, widened on small sets to four standard errors of the difference of two
    accuracies (at most 0.25 each), so that sampling noise alone never holds a task."""
    noise = 4 * (0.25 / max(n_val, 1) + 0.25 / max(n_test, 1)) ** 0.5
    return max(review_gap, noise)


def review_findings(result: TaskResult, rubric: Rubric, n_val: int,
                    n_test: int) -> list[Finding]:
    """Signs that a test accuracy did not come from training, whatever the sandbox:
    a test accuracy far above the best validation accuracy, predictions that survive
    re-initialising the weights, and non-trainable state large enough to hold the labels."""
    found = []
    fair = rubric.fairness
    val = [v for v in result.history.get("val_accuracy", []) if v is not None]
    acc = result.test_accuracy
    margin = review_margin(fair.review_gap, n_val, n_test)
    if acc is not None and val and acc - max(val) > margin:
        found.append(Finding("review_gap", False,
                             f"Test accuracy {percent(acc, 2)} is {100 * (acc - max(val)):.1f} "
                             f"points above the best validation accuracy {percent(max(val), 2)}; "
                             f"honest training stays within {100 * margin:.1f} points on "
                             f"{n_val:,} validation and {n_test:,} test images.",
                             severity=REVIEW))
    agree = result.reinit_agreement
    if agree is not None and agree >= fair.review_agreement:
        found.append(Finding("review_reinit", False,
                             f"Re-initialising the model's weights left its test predictions "
                             f"unchanged on {percent(agree, 1)} of the images checked: the "
                             f"answers do not come from the trained weights.", severity=REVIEW))
    desc = result.description or {}
    frozen = desc.get("params_label_capacity")
    if not isinstance(frozen, int) and isinstance(desc.get("params_total"), int) and \
            isinstance(desc.get("params_trainable"), int):
        frozen = desc["params_total"] - desc["params_trainable"]
    if isinstance(frozen, int) and frozen >= n_test:
        found.append(Finding("review_state", False,
                             f"The model has {frozen:,} non-trainable weights (besides "
                             f"BatchNormalization's running statistics), enough to hold a "
                             f"label for each of the {n_test:,} test images.",
                             severity=REVIEW))
    return found


def _seeds_text(result: TaskResult) -> str:
    """' (mean of 3 seeds: seed 0 61.20%, seed 1 crashed: ..., ...)' when several ran."""
    if len(result.runs) <= 1:
        return ""
    parts = [f"seed {r['seed']} {percent(r['test_accuracy'], 2)}" if "test_accuracy" in r
             else f"seed {r['seed']} failed: {r.get('error', 'no result')}" for r in result.runs]
    how = f" (mean of {len(result.runs)} seeds: " + "; ".join(parts) + ")"
    if result.borderline:
        how += "; re-graded with more seeds because the first run landed near the threshold"
    return how


def compare(comp: Comparison, results: dict[str, TaskResult], quick: bool) -> ComparisonResult:
    """A comparison between two graded tasks.  In a quick run only the parameter counts are
    compared, and the outcome is CHECKED with no points: accuracy was not measured."""
    out = ComparisonResult(comp.id, comp.question, comp.title, comp.task, comp.baseline,
                           status=SKIPPED, reason="", max_points=comp.points)
    a, b = results.get(comp.task), results.get(comp.baseline)
    if a is None or b is None:
        out.reason = f"Needs both {comp.task!r} and {comp.baseline!r} to be graded."
        return out
    problems, missing, facts = [], [], []
    if comp.fewer_params:
        if a.params_total is None or b.params_total is None:
            missing.append("parameter counts are missing (a model did not build)")
        else:
            facts.append(f"{comp.task} has {a.params_total:,} parameters vs {b.params_total:,} "
                         f"for {comp.baseline}")
            if not a.params_total < b.params_total:
                problems.append(f"{comp.task} must have fewer parameters than {comp.baseline} "
                                f"({a.params_total:,} >= {b.params_total:,})")
    if comp.higher_accuracy and not quick:
        if a.test_accuracy is None or b.test_accuracy is None:
            missing.append("a test accuracy is missing (a model did not train)")
        else:
            facts.append(f"test accuracy {percent(a.test_accuracy, 2)} vs "
                         f"{percent(b.test_accuracy, 2)}")
            if not a.test_accuracy > b.test_accuracy:
                problems.append(f"{comp.task} must reach a higher test accuracy than "
                                f"{comp.baseline} ({percent(a.test_accuracy, 2)} <= "
                                f"{percent(b.test_accuracy, 2)})")
    # A verdict on two results stands only on results that stand themselves: a held task's
    # accuracy is not trusted until a TA looks, and a failed or errored one earns nothing.
    held = [t for t in (comp.task, comp.baseline) if results[t].status == HELD]
    unearned = [t for t in (comp.task, comp.baseline)
                if results[t].status not in (PASSED, CHECKED, HELD)]
    if not quick and not missing and not problems and (held or unearned):
        out.status = HELD if held and not unearned else FAILED
        why = ([f"{t} is held for review (its accuracy is not trusted until a TA looks)"
                for t in held] +
               [f"{t} did not pass ({results[t].status})" for t in unearned])
        text = "; ".join(facts)
        out.reason = (text[:1].upper() + text[1:] + ", but " if text else "") + \
            "; ".join(why) + f": {comp.question} earns no point from it."
        return out
    if missing or problems:
        out.status = ERROR if missing else FAILED
        out.reason = "; ".join(missing + problems) + "."
    elif quick:
        out.status = CHECKED
        text = "; ".join(facts) or "nothing to compare without accuracy"
        out.reason = (text[:1].upper() + text[1:] + ". Quick check only: parameters compared, "
                      "accuracy not measured, no points.")
    else:
        out.status = PASSED
        text = "; ".join(facts)
        out.reason = text[:1].upper() + text[1:] + "."
        out.points = comp.points
    return out
