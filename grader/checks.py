"""Checks on what the child reported, decided in the grader's process.

Structure checks read the model description (layers, configs, shapes);
accuracy is computed here from the child's predictions and labels the child
never saw.  Messages say what was expected and what was received.
"""
from __future__ import annotations

import difflib
import json

import numpy as np

from .results import ERROR, FAILED, PASSED, SKIPPED, ComparisonResult, Finding, TaskResult
from .rubric import Comparison, Rubric, Task

# Config keys that differ between two identical architectures built twice.
_IGNORED_CONFIG = {"name", "trainable", "dtype", "build_config"}


def _fmt_shape(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + \
        ("," if len(shape) == 1 else "") + ")" if shape is not None else "unknown"


def structure_findings(task: Task, rubric: Rubric, desc: dict, compile_info: dict | None,
                       same_as_desc: dict | None) -> list[Finding]:
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
    classes = [layer["class_name"] for layer in desc.get("layers", [])]
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
    return found


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
                       f"Cannot compare with {task.same_as!r}: that model could not be built.",
                       severity="warning")
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
        result.status = PASSED
        result.reason = "Quick check passed: builds, structure checks pass, trains without NaN " \
                        "(no accuracy verdict in --quick)."
    elif task.threshold is not None:
        acc = result.test_accuracy
        runs = [r for r in result.runs if "test_accuracy" in r]
        how = ""
        if len(runs) > 1:
            how = f" (mean of {len(runs)} seeds: " + ", ".join(
                f"{r['test_accuracy']:.2%}" for r in runs) + ")"
            if result.borderline:
                how += "; re-graded with more seeds because the first run landed near the " \
                       "threshold"
        if acc is None:
            result.status, result.reason = ERROR, "No test accuracy was measured."
        elif acc >= task.threshold:
            result.status = PASSED
            result.reason = f"Test accuracy {acc:.2%} >= {task.threshold:.0%}{how}."
        else:
            result.status = FAILED
            result.reason = f"Test accuracy {acc:.2%} is below the threshold of " \
                            f"{task.threshold:.0%}{how}."
    else:
        result.status = PASSED
        acc = result.test_accuracy
        result.reason = "Trained and meets every structure check" + (
            f"; test accuracy {acc:.2%}." if acc is not None else ".")
    result.points = task.points if result.status == PASSED else 0.0


def compare(comp: Comparison, results: dict[str, TaskResult], quick: bool) -> ComparisonResult:
    out = ComparisonResult(comp.id, comp.question, comp.title, comp.task, comp.baseline,
                           status=SKIPPED, reason="", max_points=comp.points)
    a, b = results.get(comp.task), results.get(comp.baseline)
    if a is None or b is None:
        out.reason = f"Needs both {comp.task!r} and {comp.baseline!r} to be graded."
        return out
    problems, facts = [], []
    if comp.fewer_params:
        if a.params_total is None or b.params_total is None:
            problems.append("parameter counts are missing (a model did not build)")
        else:
            ok = a.params_total < b.params_total
            facts.append(f"{comp.task} has {a.params_total:,} parameters vs {b.params_total:,} "
                         f"for {comp.baseline}")
            if not ok:
                problems.append(f"{comp.task} must have fewer parameters than {comp.baseline} "
                                f"({a.params_total:,} >= {b.params_total:,})")
    if comp.higher_accuracy and not quick:
        if a.test_accuracy is None or b.test_accuracy is None:
            problems.append("a test accuracy is missing (a model did not train)")
        else:
            facts.append(f"test accuracy {a.test_accuracy:.2%} vs {b.test_accuracy:.2%}")
            if not a.test_accuracy > b.test_accuracy:
                problems.append(f"{comp.task} must reach a higher test accuracy than "
                                f"{comp.baseline} ({a.test_accuracy:.2%} <= "
                                f"{b.test_accuracy:.2%})")
    if problems:
        out.status = ERROR if any("missing" in p for p in problems) else FAILED
        out.reason = "; ".join(problems) + "."
    else:
        out.status = PASSED
        text = "; ".join(facts)
        out.reason = text[:1].upper() + text[1:] + "." + (
            " (Accuracy not compared in --quick.)" if quick and comp.higher_accuracy else "")
        out.points = comp.points
    return out
