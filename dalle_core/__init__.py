"""dalle_core: DALL·E Mini / Mega inference, readable, checkpoint-compatible with min-dalle."""
import os

from .config import DalleConfig, VQGanConfig
from .decoder import DalleBartDecoder
from .encoder import DalleBartEncoder
from .tokenizer import TextTokenizer
from .vqgan import VQGanDetokenizer

__all__ = [
    "DalleBartDecoder",
    "DalleBartEncoder",
    "DalleConfig",
    "MinDalle",
    "TextTokenizer",
    "VQGanConfig",
    "VQGanDetokenizer",
    "thread_count",
]
__version__ = "0.1.0"
THREADS_VARIABLE = "DALLE_CORE_THREADS"


def thread_count(default: int = 1) -> int:
    """Torch CPU threads for the command line and the notebooks: DALLE_CORE_THREADS when set
    (a positive integer), else `default`. One thread by default: the numbers do not depend on
    the core count, and small operations run fastest that way on a shared machine, where a
    second thread waits at every barrier."""
    value = os.environ.get(THREADS_VARIABLE, "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{THREADS_VARIABLE} must be a positive integer such as 2, got {value!r}")
    return int(value)


def __getattr__(name: str):
    # MinDalle pulls in PIL and tqdm; import it on first use so `import dalle_core` stays light
    if name == "MinDalle":
        from .pipeline import MinDalle

        return MinDalle
    raise AttributeError(f"module 'dalle_core' has no attribute {name!r}")
