"""IAFactory Agents: people and AI agents in shared rooms, long jobs as Temporal workflows."""

import os
import warnings

# The one place that sets the process environment: every entry point (the `iaf` command, the
# test suite, the benchmarks) imports this package before litellm or sentence-transformers load.
# litellm downloads a price map at import unless told to use its bundled copy; we are offline.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Progress bars (loading the embedding model) are not log lines.
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
# platformdirs warns when XDG_RUNTIME_DIR is unset (root shells, CI): it falls back to /tmp,
# which is fine for us, and the warning would be the first line of every `iaf dev`.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
