"""The decoder step with static shapes, and the CUDA graph that replays it.

On a GPU one eager decoder step of DALL·E Mega launches hundreds of small kernels, and the
launches, not the arithmetic, set the pace (docs/performance.md has the profile). A CUDA
graph records the kernels of one step once and replays them all with one launch. It
replays addresses and shapes as recorded, so the step must keep every tensor's shape and
address from one position to the next:

- the cache is read at its full length under the mask `slot <= i`
  (inside `DalleBartDecoder.fixed_length()`), not as slots 0..i;
- the position is a tensor, `token_index` (1,), which the step advances itself;
- the previous tokens are read from, and the drawn ones written into, `image_tokens`;
- the settings are tensors, and sampling never waits for the host: the k-th largest logit
  by sorting (`sampling.top_k_mask`), the draw by `sampling.draw_once`, torch.multinomial's
  own arithmetic without its host-side check.

Run eagerly (any device) the step draws exactly the eager loop's tokens for the same seed
(tested on the CPU); replayed from a graph it runs the same kernels on the same numbers,
so it draws them again (tested where CUDA exists).
"""
from __future__ import annotations

from typing import ClassVar

import torch

from .decoder import DalleBartDecoder, EncoderKeysValues
from .sampling import draw_once, probabilities, supercondition
from .trace import is_recording

DECODE_PATHS = ("eager", "static", "graph")


def choose_decode_path(requested: str | None, device: torch.device) -> str:
    """Which loop `MinDalle` runs: 'graph' on CUDA, 'eager' elsewhere and while recording.

    requested: None (choose), 'eager' (the step as the notebooks read it, slots 0..i),
    'static' (the fixed-shape step without a graph, for comparisons) or 'graph'.
    """
    if requested is None:  # the notebooks record tensors of the eager step; a replay records nothing
        return "graph" if device.type == "cuda" and not is_recording() else "eager"
    if requested not in DECODE_PATHS:
        raise ValueError(f"decode_path must be None or one of {DECODE_PATHS}, got {requested!r}")
    if requested == "graph" and device.type != "cuda":
        raise ValueError(f"a CUDA graph needs a CUDA device, not {device}; use decode_path='static' or 'eager'")
    return requested


class StaticDecodeStep:
    """One decoder step that reads and writes only tensors it was given or made at the start."""

    def __init__(
        self,
        decoder: DalleBartDecoder,
        attention_mask: torch.Tensor,
        encoder_keys_values: EncoderKeysValues,
        attention_state: torch.Tensor,
        image_tokens: torch.Tensor,
        temperature: float,
        top_k: int,
        supercondition_factor: float,
    ):
        device = image_tokens.device
        self.decoder = decoder
        self.attention_mask = attention_mask  # (2n, 1, 1, 64)
        self.encoder_keys_values = encoder_keys_values  # per layer (2n, 64, E) twice
        self.attention_state = attention_state  # (layers, 4n, slots, E)
        self.image_tokens = image_tokens  # (n, 1 + slots): the start token, then the drawn ones
        self.token_index = torch.zeros(1, dtype=torch.long, device=device)  # (1,): the position i
        self.temperature = torch.tensor(temperature, dtype=torch.float32, device=device)
        self.top_k = torch.tensor(int(top_k), dtype=torch.long, device=device)
        self.supercondition_factor = torch.tensor(supercondition_factor, dtype=torch.float32, device=device)

    def __call__(self) -> None:
        """Read image_tokens[:, i], write cache slot i and image_tokens[:, i + 1], then i += 1."""
        i = self.token_index
        prev_tokens = self.image_tokens.index_select(1, i).repeat(2, 1)  # (2n, 1): unconditional rows, then conditional
        with self.decoder.fixed_length():
            logits = self.decoder.decode(
                None, self.attention_mask, prev_tokens, i, self.attention_state, self.encoder_keys_values
            )  # (2n, 1, image_vocab_count + 1)
        logits = logits[:, -1, : self.decoder.config.image_code_count].to(torch.float32)  # (2n, codes)
        probs = probabilities(supercondition(logits, self.supercondition_factor), self.temperature, self.top_k)
        self.image_tokens.index_copy_(1, i + 1, draw_once(probs)[:, None])  # (n, 1) into column i + 1
        self.token_index += 1

    def reset(self) -> None:
        """Back to position 0 with an empty cache (a graph's warm-up and capture ran steps)."""
        self.token_index.zero_()
        self.image_tokens.fill_(self.decoder.config.image_start_token)
        self.attention_state.zero_()


class CapturedStep:
    """A StaticDecodeStep recorded into a CUDA graph; calling it replays the whole step.

    Capturing runs the step (warm-up steps first, on a side stream, so that lazy
    initialisation such as cuBLAS's workspace happens outside the recording) and so draws
    random numbers: seed the generator after building this, not before.
    """

    _streams: ClassVar[dict[torch.device, torch.cuda.Stream]] = {}  # one side stream per GPU for every capture

    def __init__(self, step: StaticDecodeStep, warmup_steps: int = 1):
        self.step = step
        device = step.image_tokens.device
        if device not in self._streams:
            self._streams[device] = torch.cuda.Stream(device)
        stream = self._streams[device]
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream):
            for _ in range(warmup_steps):
                step()
        torch.cuda.current_stream(device).wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, stream=stream):
            step()
        step.reset()

    def __call__(self) -> None:
        self.graph.replay()
