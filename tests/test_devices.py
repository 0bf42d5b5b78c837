"""A GPU the driver lists but the backend cannot use is one loud warning, everywhere a
user looks: the terminal, results.json and `grader doctor`."""
from __future__ import annotations

import json

from click.testing import CliRunner

from grader.cli import main


def test_gpus_listed_but_unused_are_one_loud_warning(monkeypatch, synthetic_npz, submission,
                                                     tmp_path):
    # The driver "lists" a GPU (CUDA_VISIBLE_DEVICES is what it would export); this
    # machine's TensorFlow has no CUDA, so the backend sees none.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    r = CliRunner().invoke(main, ["check", str(submission("simple_fc.py")), "--data",
                                  str(synthetic_npz), "--tasks", "fc", "--quick", "--out",
                                  str(tmp_path)])
    assert "WARNING: The NVIDIA driver lists 1 GPU(s) but the tensorflow backend sees " \
           "none: training runs on the CPU" in " ".join(r.output.split()), r.output
    assert "pip install 'keras-lab-grader[tensorflow-gpu]'" in " ".join(r.output.split())
    saved = json.loads((tmp_path / "results.json").read_text())
    assert "sees none" in saved["environment"]["gpu_warning"]
    assert [n["check"] for n in saved["notes"]].count("device") == 1
    d = CliRunner().invoke(main, ["doctor", "--json", "--data", str(synthetic_npz)])
    devices = next(i for i in json.loads(d.output)["items"] if i["name"] == "devices")
    assert devices["ok"] is False and "sees none" in devices["detail"]


def test_no_warning_without_a_gpu(monkeypatch, synthetic_npz, submission, tmp_path):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    r = CliRunner().invoke(main, ["check", str(submission("simple_fc.py")), "--data",
                                  str(synthetic_npz), "--tasks", "fc", "--quick", "--out",
                                  str(tmp_path)])
    assert "NVIDIA" not in r.output
    assert "gpu_warning" not in json.loads((tmp_path / "results.json").read_text())["environment"]
