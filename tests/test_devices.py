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


def test_the_cpus_instruction_sets_are_named(tmp_path):
    """Two CPUs of one name can pick different kernels (AVX-512 or not) and so train the
    same model and seed to different bits: results record what the kernels go by."""
    from grader.environment import cpu_isa

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\n"
                    "flags\t\t: fpu sse avx2 fma avx512f avx512_bf16\n\nprocessor\t: 1\n"
                    "flags\t\t: fpu\n")
    assert cpu_isa(str(info)) == "family 25 model 17: avx2 fma avx512f avx512_bf16"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse\n")
    assert cpu_isa(str(info)).endswith(": none of avx2, fma, avx_vnni, avx512f, avx512_vnni, "
                                       "avx512_bf16, amx_tile, amx_bf16")
    assert cpu_isa(str(tmp_path / "missing")) is None


def test_a_gpu_hidden_by_the_sandbox_is_not_blamed_on_the_install(monkeypatch):
    """`grader doctor` looks outside the sandbox too: a GPU the backend sees there but not
    inside is the sandbox's doing, and the advice says so instead of 'install CUDA'."""
    from grader.environment import unused_gpus

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    inside = {"backend": "jax", "kind": "cpu", "name": "AMD EPYC", "cpu": "AMD EPYC"}
    plain = unused_gpus(inside)
    assert "install a CUDA build of jax" in plain
    assert unused_gpus(inside, outside={"backend": "jax", "kind": "cpu"}) == plain
    hidden = unused_gpus(inside, outside={"backend": "jax", "kind": "gpu", "name": "H200"})
    assert "sees them outside the sandbox (H200), but none inside it" in hidden
    assert "install" not in hidden.lower().replace("the install is fine", "")
    assert "grader doctor --json" in hidden
