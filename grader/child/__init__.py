"""What runs in the child process, beside the student's code: the worker loop, building
and describing models, training, and the backend probe.

Two rules, checked by ``tests/test_layout.py``: the grader's own process (everything
outside this package) never imports keras at module import time, and this package
imports nothing of the parent's results, data, checks or rubric, only the line
protocol, Landlock and the hardware names (``ALLOWED_PARENT_MODULES``).  Student
code runs only here.
"""

# The grader modules outside this package that the child may import.
ALLOWED_PARENT_MODULES = ("grader.protocol", "grader.landlock", "grader.environment",
                          "grader.architecture")
