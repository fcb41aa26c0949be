"""MinDalle: min-dalle's generation API on dalle_core's modules.

The path of one prompt (shapes for DALL·E Mega, a 4x4 grid, n = 16 images):

    text -> tokens -> text_tokens (2, 64): row 0 the empty prompt, row 1 the prompt
    -> encoder_state (2, 64, 2048) -> expanded to 2n = 32 rows: n unconditional, n conditional
    -> 256 decoder steps, each: prev_tokens (16, 1) -> logits (32, 1, 16416)
       -> logits superconditioned (16, 16384) -> one sampled token per image
    -> image_tokens (16, 257): the start token, then 256 codes -> VQGAN -> image grid (1024, 1024, 3)

Differences from min-dalle 0.4.11, each a fix: no network when the files are present
(and none at all unless allow_download=True); strict loading with clear errors; the
course model as the default when no weights are given; `grid_size` may be positional;
float grids convert to PIL; `is_reusable=False` works with progressive output; the
sampling runs in float32 whatever the model's dtype; cross-attention keys and values are
computed once per prompt; on CUDA the decoder step has static shapes and is replayed
from a CUDA graph (`dalle_core.graph`).
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .config import TINY_ROOT, DalleConfig, VQGanConfig, load_model_config
from .decoder import DalleBartDecoder
from .encoder import DalleBartEncoder, text_attention_mask
from .graph import CapturedStep, StaticDecodeStep, choose_decode_path
from .memory import attention_state_bytes, check_memory, return_large_blocks_promptly
from .sampling import check_seed, check_settings
from .tokenizer import TextTokenizer, check_prompt, pack_text_tokens
from .trace import progress_bar, record
from .vqgan import VQGanDetokenizer, check_grid_size, check_image_tokens, grid_to_images
from .weights import ModelFiles, expected_module, load_module, model_files, require_files, resolve_device, tiny_files

DTYPES = (torch.float32, torch.float16, torch.bfloat16)
PROGRESSIVE_FRAMES = 8  # min-dalle yields every 32 of 256 tokens; any model: 8 frames


def expanded_indices(image_count: int) -> list[int]:
    """`[0]*n + [1]*n`: n copies of the empty-prompt row, then n of the prompt row."""
    return [0] * image_count + [1] * image_count


def new_attention_state(
    config: DalleConfig, image_count: int, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """The key/value cache: (layers, 4n, image_token_count, embed_count), zeros."""
    shape = (config.layer_count, 4 * image_count, config.image_token_count, config.embed_count)
    return torch.zeros(shape, dtype=dtype, device=device)


def default_attention_dtype(dtype: torch.dtype, device: torch.device) -> torch.dtype:
    """The cache's dtype, in which attention also runs: float32 on a CPU, whose float32
    attention is about ten times faster than its bfloat16 one (min-dalle's cache is always
    float32); the model's dtype on a GPU, where half-precision attention is fast and the
    cache is the larger cost in memory."""
    return torch.float32 if device.type == "cpu" else dtype


def to_pil(image: torch.Tensor | np.ndarray) -> Image.Image:
    """A (H, W, 3) image, float 0..255 or uint8, as a PIL image (truncating, as min-dalle)."""
    if isinstance(image, torch.Tensor):
        image = image.detach().to("cpu", torch.float32).numpy() if image.is_floating_point() else image.cpu().numpy()
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected one (height, width, 3) image, got shape {image.shape}")
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    return Image.fromarray(image)


class MinDalle:
    """Text to images with DALL·E Mega, Mini, or the course's own tiny model.

    `MinDalle()` with no weights is the shipped course model (offline, seconds on a CPU);
    `MinDalle(folder, model="tiny")` reads a course-model folder (config.json and the files).
    `MinDalle("pretrained", is_mega=True)` reads min-dalle's folder layout; missing files
    are fetched only with `allow_download=True`.
    """

    # None: a CUDA graph of the fixed-shape step on CUDA, the eager step elsewhere and while
    # recording; 'eager', 'static' or 'graph' to choose (see dalle_core.graph)
    decode_path: str | None = None
    # True only for modules on the meta device (lab.shapes): their tensors take no memory and
    # hold no values, so the checks that read them (free memory, token values) are skipped
    shapes_only: bool = False

    def __init__(
        self, models_root: str | Path | None = None, dtype: torch.dtype = torch.float32,
        device: str | torch.device | None = None, is_mega: bool = True, is_reusable: bool = True,
        is_verbose: bool = True, *, model: str | None = None, allow_download: bool = False,
        attention_state_dtype: torch.dtype | None = None,
    ):
        if dtype not in DTYPES or attention_state_dtype not in (None, *DTYPES):
            raise ValueError(f"dtype and attention_state_dtype must be one of {DTYPES}")
        if model is None:
            model = "tiny" if models_root is None else ("mega" if is_mega else "mini")
        if model not in ("mega", "mini", "tiny"):
            raise ValueError(f"unknown model {model!r}; choose 'mega', 'mini' or 'tiny' (the course model)")
        if model != "tiny" and models_root is None:
            raise ValueError(f"model {model!r} needs models_root, the folder with min-dalle's layout")
        self.model, self.is_mega = model, model == "mega"
        self.device = resolve_device(device)
        self.dtype = dtype
        self.attention_state_dtype = attention_state_dtype or default_attention_dtype(dtype, self.device)
        self.is_reusable, self.is_verbose = is_reusable, is_verbose
        self._say(f"using device {self.device}")

        if model == "tiny":
            self.files: ModelFiles | None = tiny_files(TINY_ROOT if models_root is None else models_root)
        else:
            self.files = model_files(models_root, model)
            if self.files.missing() and allow_download:
                from .hub.fetch import fetch_model

                fetch_model(model, models_root, progress=is_verbose)
        require_files(self.files, model)
        presets = (DalleConfig.from_name(model), VQGanConfig.dalle()) if model != "tiny" else None
        self.config, self.vqgan_config = presets or load_model_config(self.files.config.parent)
        self._init_modules()

    @classmethod
    def from_modules(
        cls, tokenizer: TextTokenizer, encoder: DalleBartEncoder, decoder: DalleBartDecoder,
        detokenizer: VQGanDetokenizer, is_verbose: bool = False, attention_state_dtype: torch.dtype | None = None,
    ) -> MinDalle:
        """Wrap modules already in memory (random weights in tests, a model being trained)."""
        self = cls.__new__(cls)
        self.model, self.is_mega, self.files = "custom", False, None
        self.config, self.vqgan_config = decoder.config, detokenizer.config
        self.device = next(decoder.parameters()).device
        self.dtype = next(decoder.parameters()).dtype
        self.attention_state_dtype = attention_state_dtype or default_attention_dtype(self.dtype, self.device)
        self.is_reusable, self.is_verbose = True, is_verbose
        self.tokenizer, self.encoder, self.decoder, self.detokenizer = tokenizer, encoder, decoder, detokenizer
        return self

    # ---- loading -------------------------------------------------------------------
    def _say(self, message: str) -> None:
        if self.is_verbose:
            print(message)

    def _init_modules(self) -> None:
        if self.device.type == "cpu":  # peaks count live tensors only (see dalle_core/memory.py)
            return_large_blocks_promptly()
        self._say("initializing TextTokenizer")
        self.tokenizer = TextTokenizer.from_files(self.files.vocab, self.files.merges)
        self.encoder = self.decoder = self.detokenizer = None
        if self.is_reusable:
            self.init_encoder()
            self.init_decoder()
            self.init_detokenizer()

    def _build(self, role: str, config: Any, path: Path, dtype: torch.dtype) -> torch.nn.Module:
        # built on the meta device (no random weights): the file's tensors are assigned directly
        return load_module(expected_module(role, config), path, dtype=dtype, device=self.device)

    def init_encoder(self) -> None:
        self._say("initializing DalleBartEncoder")
        self.encoder = self._build("encoder", self.config, self.files.encoder, self.dtype)

    def init_decoder(self) -> None:
        self._say("initializing DalleBartDecoder")
        self.decoder = self._build("decoder", self.config, self.files.decoder, self.dtype)

    def init_detokenizer(self) -> None:
        # float32 always, as min-dalle: the VQGAN is small and its activations overflow float16
        self._say("initializing VQGanDetokenizer")
        self.detokenizer = self._build("detoker", self.vqgan_config, self.files.detoker, torch.float32)

    def _release(self, name: str) -> None:
        if not self.is_reusable:
            setattr(self, name, None)
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

    # ---- the generation path ---------------------------------------------------------
    def text_tokens(self, text: str, is_verbose: bool = False) -> torch.Tensor:
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        tokens = self.tokenizer.tokenize(text, is_verbose=is_verbose)
        if is_verbose:
            print(f"{len(tokens)} text tokens", tokens)
        text_tokens = pack_text_tokens(tokens, self.config.text_token_count, self.device)
        record("text_tokens", text_tokens)
        return text_tokens

    @torch.inference_mode()
    def image_token_stream(
        self, text: str, seed: int = -1, grid_size: int = 1, temperature: float = 1.0, top_k: int = 256,
        supercondition_factor: float = 16.0, every: int | None = None, is_verbose: bool = False,
        progress: bool | None = None,
    ) -> Iterator[torch.Tensor]:
        """Yield image_tokens (n, 1 + image_token_count) every `every` steps and at the end."""
        grid_size, seed = check_grid_size(grid_size), check_seed(seed)
        check_settings(temperature, top_k, supercondition_factor)  # before any work is done
        check_prompt(self.tokenizer, text)
        if not self.shapes_only:
            check_memory(self.config, self.vqgan_config, grid_size, self.dtype, self.attention_state_dtype,
                         self.device)
        image_count = grid_size**2

        text_tokens = self.text_tokens(text, is_verbose)
        if self.encoder is None:
            self.init_encoder()
        encoder_state = self.encoder(text_tokens)  # (2, 64, E)
        self._release("encoder")

        indices = expanded_indices(image_count)
        record("expanded_indices", indices)
        text_tokens = text_tokens[indices]  # (2n, 64)
        encoder_state = encoder_state[indices]  # (2n, 64, E)
        record("text_tokens expanded", text_tokens)
        record("encoder_state expanded", encoder_state)
        settings = (temperature, top_k, supercondition_factor)
        yield from self.sample_image_tokens(text_tokens, encoder_state, settings, seed, every, is_verbose, progress)

    @torch.inference_mode()
    def sample_image_tokens(
        self, text_tokens: torch.Tensor, encoder_state: torch.Tensor, settings: tuple[float, int, float],
        seed: int = -1, every: int | None = None, is_verbose: bool = False, progress: bool | None = None,
    ) -> Iterator[torch.Tensor]:
        """The decoding loop for any 2n rows: n unconditional, then n conditional.

        `settings` is (temperature, top_k, supercondition_factor), min-dalle's `settings`, already
        checked by the caller (`image_token_stream`, `course.batch_generation`) before any work.
        The conditional rows need not share one prompt: `dalle_core.course.batch_generation`
        puts a different prompt in each, one image per prompt.
        """
        temperature, top_k, supercondition_factor = settings
        config, image_count = self.config, text_tokens.shape[0] // 2
        attention_mask = text_attention_mask(text_tokens)  # (2n, 1, 1, 64)
        record("attention_mask", attention_mask)
        attention_state = new_attention_state(config, image_count, self.attention_state_dtype, self.device)
        if is_verbose:
            megabytes = attention_state_bytes(config, image_count, self.attention_state_dtype) / 2**20
            print(f"attention_state {tuple(attention_state.shape)}: {megabytes:.0f} MiB")
        record("attention_state", attention_state)
        image_tokens = torch.full(
            (image_count, config.image_token_count + 1), config.image_start_token, dtype=torch.long, device=self.device
        )
        record("image_tokens", image_tokens)

        if self.decoder is None:
            self.init_decoder()
        # once per prompt, in the dtype attention runs in (the cache's)
        encoder_keys_values = [(k.to(attention_state.dtype), v.to(attention_state.dtype))
                               for k, v in self.decoder.encoder_keys_values(encoder_state)]
        token_indices = torch.arange(config.image_token_count, device=self.device)
        record("token_indices", token_indices)
        # read as numbers each step; on the CPU so that reading them never waits for a GPU
        settings = torch.tensor([temperature, top_k, supercondition_factor], dtype=torch.float32)
        step = None  # the eager step below, or one with static shapes that writes image_tokens itself
        path = choose_decode_path(self.decode_path, self.device)
        if path != "eager":
            step = StaticDecodeStep(self.decoder, attention_mask, encoder_keys_values, attention_state, image_tokens,
                                    temperature, top_k, supercondition_factor)
            if path == "graph":
                step = CapturedStep(step)  # before seeding: capturing runs steps that draw
        if seed > 0:
            torch.manual_seed(seed)
        show = self.is_verbose if progress is None else progress
        last = config.image_token_count - 1
        try:
            for i in progress_bar(range(config.image_token_count), "image tokens", show, leave=False):
                if step is not None:
                    step()
                else:
                    record("prev_tokens", image_tokens[:, [i]])
                    record("token_index", token_indices[[i]])
                    image_tokens[:, i + 1], attention_state = self.decoder.sample_tokens(
                        settings, attention_mask=attention_mask, encoder_state=encoder_state,
                        attention_state=attention_state, prev_tokens=image_tokens[:, [i]],
                        token_index=token_indices[[i]], encoder_keys_values=encoder_keys_values,
                    )
                if every and (i + 1) % every == 0 and i < last:
                    yield image_tokens  # the decoder stays loaded: more steps follow
        finally:
            del attention_state, encoder_keys_values, step
            self._release("decoder")  # before the last frame, so the VQGAN never sits beside it
        yield image_tokens

    def generate_image_tokens(
        self, text: str, seed: int = -1, grid_size: int = 1, temperature: float = 1.0, top_k: int = 256,
        supercondition_factor: float = 16.0, is_verbose: bool = False, progress: bool | None = None,
    ) -> torch.Tensor:
        """(n, image_token_count) sampled tokens, no pixels."""
        stream = self.image_token_stream(
            text, seed, grid_size, temperature, top_k, supercondition_factor, is_verbose=is_verbose, progress=progress
        )
        *_, image_tokens = stream
        return image_tokens[:, 1:].clone()

    def drawable_tokens(self, image_tokens: torch.Tensor) -> torch.Tensor:
        """Tokens the VQGAN can draw: a start token outside the codebook becomes the last code."""
        start, codes = self.config.image_start_token, self.vqgan_config.vocab_count
        return image_tokens if start < codes else image_tokens.masked_fill(image_tokens == start, codes - 1)

    @torch.inference_mode()
    def image_grid_from_tokens(
        self, image_tokens: torch.Tensor, is_seamless: bool, is_verbose: bool = False
    ) -> torch.Tensor:
        if self.detokenizer is None:
            self.init_detokenizer()
        if is_verbose:
            print("detokenizing image")
        image_tokens = self.drawable_tokens(image_tokens)
        if not self.shapes_only:
            check_image_tokens(image_tokens, self.vqgan_config.vocab_count)
        grid = self.detokenizer(is_seamless, image_tokens)
        self._release("detokenizer")
        return grid

    def generate_raw_image_stream(
        self, text: str, seed: int = -1, grid_size: int = 1, progressive_outputs: bool = False,
        is_seamless: bool = False, temperature: float = 1.0, top_k: int = 256, supercondition_factor: float = 16.0,
        is_verbose: bool = False, progress: bool | None = None,
    ) -> Iterator[torch.Tensor]:
        """Grids (g*H, g*W, 3) of floats 0..255: 8 frames if progressive (every 32 tokens for mega), else one."""
        every = max(1, self.config.image_token_count // PROGRESSIVE_FRAMES) if progressive_outputs else None
        stream = self.image_token_stream(
            text, seed, grid_size, temperature, top_k, supercondition_factor, every, is_verbose, progress
        )
        for image_tokens in stream:
            yield self.image_grid_from_tokens(image_tokens[:, 1:], is_seamless, is_verbose)

    def generate_image_stream(self, *args: Any, **kwargs: Any) -> Iterator[Image.Image]:
        for grid in self.generate_raw_image_stream(*args, **kwargs):
            yield to_pil(grid)

    def generate_images_stream(
        self, text: str, seed: int = -1, grid_size: int = 1, *args: Any, **kwargs: Any
    ) -> Iterator[torch.Tensor]:
        grid_size = check_grid_size(grid_size)
        for grid in self.generate_raw_image_stream(text, seed, grid_size, *args, **kwargs):
            yield grid_to_images(grid, grid_size)  # (n, H, W, 3)

    def generate_image(self, *args: Any, **kwargs: Any) -> Image.Image:
        kwargs["progressive_outputs"] = False
        return next(iter(self.generate_image_stream(*args, **kwargs)))

    def generate_images(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        kwargs["progressive_outputs"] = False
        return next(iter(self.generate_images_stream(*args, **kwargs)))
