"""grader: trains a student's Keras models under a budget and explains the verdict."""
__version__ = "0.1.0"

from .errors import GraderError  # noqa: E402
from .grading import check  # noqa: E402
from .results import Results, load_results  # noqa: E402
from .rubric import Rubric, load_rubric  # noqa: E402

__all__ = ["check", "load_rubric", "load_results", "Results", "Rubric", "GraderError",
           "__version__"]
