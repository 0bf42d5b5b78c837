"""The child imports keras with matplotlib and IPython deferred: they must still work."""
from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("keras")
pytest.importorskip("matplotlib")

PROGRAM = r'''
import sys
from grader.child.deferred import deferred_imports
with deferred_imports():
    import keras
lazy = sorted(n for n in ("matplotlib.pyplot", "IPython")
              if type(sys.modules.get(n)).__name__ == "_LazyModule")
print("lazy:", lazy)
import numpy as np
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
fig = plt.figure()
plt.plot([0, 1], [1, 0])
keras.visualization.plot_image_gallery(np.zeros((2, 8, 8, 3), "uint8"), rows=1, cols=2)
import IPython
print("pyplot:", type(plt).__name__, hasattr(plt, "savefig"), "ipython:",
      IPython.get_ipython())
'''


def test_deferred_packages_load_when_first_used():
    run = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "lazy: ['IPython', 'matplotlib.pyplot']" in run.stdout  # not loaded by keras
    assert "pyplot: module True ipython: None" in run.stdout  # the real modules, later
