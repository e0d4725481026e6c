"""TCM Explorer's engine: threshold-consistency metrics, the TCM loss, data, models, training.

Definitions follow ``../shared/METHOD.md``. Importing this package has no side effects and
never imports Streamlit.
"""

from tcm_core.errors import TCMError

__all__ = ["TCMError"]
__version__ = "0.1.0"
