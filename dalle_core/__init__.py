"""dalle_core: DALL·E Mini / Mega inference, readable, checkpoint-compatible with min-dalle."""
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
]
__version__ = "0.1.0"


def __getattr__(name: str):
    # MinDalle pulls in PIL and tqdm; import it on first use so `import dalle_core` stays light
    if name == "MinDalle":
        from .pipeline import MinDalle

        return MinDalle
    raise AttributeError(f"module 'dalle_core' has no attribute {name!r}")
