"""Convert dalle-mini's original Flax checkpoints into min-dalle's layout.

min-dalle's files were converted from the dalle-mini project's own releases: DALL·E Mini
(`dalle-mini/dalle-mini`) and Mega (`dalle-mini/dalle-mega`) as `flax_model.msgpack` +
`config.json` + the BART tokenizer files `vocab.json` / `merges.txt`, and the VQGAN as
`dalle-mini/vqgan_imagenet_f16_16384` (`flax_model.msgpack` + `config.json`). When
min-dalle's copies are gone, this module makes them again from the originals:

    python -m dalle_core convert --from DIR --model mega --models-root pretrained

Reading needs only the `msgpack` package (no jax). Flax writes a parameter tree as one
msgpack map whose leaves are msgpack extension objects of type 1: a nested msgpack
triple (shape, dtype name, raw C-order bytes) (flax/serialization.py). Arrays over
2**30 bytes are split into a dict marked `__msgpack_chunked_array__`.

What changes between the two frameworks, parameter by parameter:

* Flax `Dense` kernels are (in, out); torch `Linear` weights are (out, in): transposed.
* Flax `Conv` kernels are (height, width, in, out); torch's are (out, in, height, width).
* `LayerNorm` / `GroupNorm` `scale` is torch's `weight`; `Embed.embedding` is `weight`.
* dalle-mini trains with `nn.scan` over the layers, so each layer parameter is stored
  once for all layers, stacked on a leading axis (`.../layers/FlaxBartEncoderLayers/...`);
  it is cut into `layers.{i}.` here. Unscanned files (`FlaxBartEncoderLayer_{i}`) work too.
* The NormFormer LayerNorms in front of a dense layer are built with `use_scale=False`
  (unless the config sets `force_ln_scale`): the pre-attention norms, both GLU norms and
  `final_ln` have a bias but no scale. Their torch `weight` is written as ones, the value
  such a norm multiplies by, so the files load strictly everywhere.

Peak memory is about one copy of the model: the tree is read tensor by tensor, and each
Flax tensor is dropped as soon as its torch tensors exist. Output goes to `<file>.part`
and is moved into place only when complete.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..config import DalleConfig, VQGanConfig
from ..weights import MODELS, ModelFiles, model_files

FLAX_WEIGHTS = "flax_model.msgpack"
FLAX_CONFIG = "config.json"
TOKENIZER_FILES = ("vocab.json", "merges.txt")
VQGAN_REPO_NAME = "vqgan_imagenet_f16_16384"
RECORD_NAME = "converted.json"  # which files a conversion wrote (fetch and verify read it)
CHUNKED = "__msgpack_chunked_array__"
TORCH_DTYPES = {"float16": torch.float16, "float32": torch.float32, "bfloat16": torch.bfloat16,
                "float64": torch.float64, "int32": torch.int32, "int64": torch.int64}


class ConversionError(ValueError):
    """The Flax files cannot be converted; the message names the parameter or setting."""


# ---------------------------------------------------------------------------- reading msgpack


def _ndarray(data: bytes) -> torch.Tensor:
    """Flax's ndarray extension: msgpack (shape, dtype name, bytes) -> a tensor owning a copy.

    Only the short head (shape, dtype) goes through msgpack; the array's bytes are copied
    once, straight from `data` into the tensor's (aligned, writable) memory.
    """
    import msgpack

    head = msgpack.Unpacker(raw=True)
    head.feed(data[:4096])  # shape and dtype name take a few dozen bytes
    if head.read_array_header() != 3:
        raise ConversionError("a Flax array is not stored as (shape, dtype, bytes)")
    shape, dtype_name = head.unpack(), head.unpack()
    start = head.tell()
    marker = data[start]
    width = {0xC4: 1, 0xC5: 2, 0xC6: 4}.get(marker)  # msgpack bin 8 / 16 / 32
    if width is None:
        raise ConversionError(f"a Flax array's bytes have msgpack type 0x{marker:02x}, not bin")
    size = int.from_bytes(data[start + 1 : start + 1 + width], "big")
    start += 1 + width
    if start + size != len(data):
        raise ConversionError("a Flax array's byte count does not match its record")
    name = dtype_name.decode() if isinstance(dtype_name, bytes) else dtype_name
    if name not in TORCH_DTYPES:
        raise ConversionError(f"a Flax array has dtype {name!r}, which this converter does not read")
    if not size:
        return torch.empty(shape, dtype=TORCH_DTYPES[name])
    flat = torch.frombuffer(bytearray(memoryview(data)[start:]), dtype=TORCH_DTYPES[name])
    return flat.reshape(shape)


def _ext_hook(code: int, data: bytes) -> Any:
    if code == 1:  # ndarray
        return _ndarray(data)
    if code == 3:  # numpy scalar, stored as a 0-d ndarray
        return _ndarray(data)
    raise ConversionError(f"unknown msgpack extension type {code} in a Flax checkpoint")


class _CountingReader:
    """A file wrapper that moves a progress bar by the bytes read."""

    def __init__(self, stream: Any, bar: Any) -> None:
        self.stream, self.bar = stream, bar

    def read(self, size: int = -1) -> bytes:
        block = self.stream.read(size)
        self.bar.update(len(block))
        return block


def read_flax_params(path: str | Path, progress: bool = False) -> dict[str, torch.Tensor]:
    """A Flax `flax_model.msgpack` as a flat dict: '/'-joined parameter path -> tensor.

    The file is streamed (no copy of its bytes is held beside the tensors), so reading
    needs about the file's size in memory.
    """
    import msgpack
    from tqdm.auto import tqdm

    from ..memory import return_large_blocks_promptly

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    return_large_blocks_promptly()  # freed Flax tensors go back to the system, not to a heap that only grows
    size = path.stat().st_size
    with open(path, "rb") as stream, tqdm(
        total=size, unit="B", unit_scale=True, unit_divisor=1024, desc=f"read {path.name}",
        disable=not progress, leave=False,
    ) as bar:
        unpacker = msgpack.Unpacker(
            _CountingReader(stream, bar), ext_hook=_ext_hook, raw=False, strict_map_key=False,
            max_buffer_size=2**31 - 1,  # one leaf may be up to 2**30 bytes (Flax chunks larger ones)
        )
        try:
            tree = unpacker.unpack()
        except ConversionError:
            raise
        except Exception as error:  # msgpack raises several types for a cut or foreign file
            raise ConversionError(
                f"{path} is not a readable Flax msgpack checkpoint ({type(error).__name__}: {error}); "
                "it may be truncated: download it again"
            ) from None
        if unpacker.tell() != size:
            raise ConversionError(f"{path} has {size - unpacker.tell()} bytes after the parameter tree")
    if not isinstance(tree, dict):
        raise ConversionError(f"{path} does not hold a parameter tree (a map), but a {type(tree).__name__}")
    return dict(_flatten(tree, ""))


def _flatten(tree: dict, prefix: str) -> Iterator[tuple[str, torch.Tensor]]:
    for key in list(tree):
        value = tree.pop(key)  # the flat dict becomes the only owner of each tensor
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value.get(CHUNKED):
            shape = [value["shape"][str(i)] for i in range(len(value["shape"]))]
            chunks = [value["chunks"][str(i)] for i in range(len(value["chunks"]))]
            yield name, torch.cat(chunks).reshape(shape)
        elif isinstance(value, dict):
            yield from _flatten(value, name + "/")
        elif isinstance(value, torch.Tensor):
            yield name, value
        else:
            raise ConversionError(f"parameter {name} is a {type(value).__name__}, not an array")


def read_flax_config(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / FLAX_CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (the Flax checkpoint's config.json)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConversionError(f"{path} is not valid JSON ({error})") from None
    if not isinstance(config, dict):
        raise ConversionError(f"{path} is not a JSON object")
    return config


# ---------------------------------------------------------------------------- configurations

# dalle-mini's DalleBartConfig defaults (src/dalle_mini/model/configuration.py) for keys a
# config.json may leave out, and the value each architecture switch must have for the
# PyTorch model (the architecture min-dalle implements) to be the same function.
_BART_DEFAULTS = {
    "encoder_vocab_size": 50264, "image_vocab_size": 16384, "image_length": 256, "max_text_length": 64,
    "encoder_layers": 12, "decoder_layers": 12, "encoder_ffn_dim": 4096, "decoder_ffn_dim": 4096,
    "encoder_attention_heads": 16, "decoder_attention_heads": 16, "d_model": 1024,
}
_BART_REQUIRED = {
    "activation_function": "gelu", "scale_embedding": False, "use_bias": False, "ln_type": "layernorm",
    "ln_positions": "normformer", "use_head_scale": False, "use_cosine_attention": False,
    "use_absolute_position_embeddings": True, "use_swin_position_embeddings": False, "use_glu": True,
    "use_alibi": False, "sinkhorn_iters": 1, "use_final_ln_encoder": True, "use_final_ln_decoder": True,
    "tie_word_embeddings": False,
}


def dalle_config_from_flax(config: dict[str, Any]) -> tuple[DalleConfig, bool]:
    """(sizes, force_ln_scale) of a dalle-mini config.json; refuses variants min-dalle lacks."""
    for key, required in _BART_REQUIRED.items():
        value = config.get(key, required)
        if value != required:
            raise ConversionError(
                f"config.json sets {key}={value!r}; min-dalle's architecture has {key}={required!r}, "
                "so the converted model would compute something else"
            )
    get = lambda key: config.get(key, _BART_DEFAULTS[key])  # noqa: E731
    for a, b in (("encoder_layers", "decoder_layers"), ("encoder_attention_heads", "decoder_attention_heads"),
                 ("encoder_ffn_dim", "decoder_ffn_dim")):
        if get(a) != get(b):
            raise ConversionError(f"config.json has {a}={get(a)} but {b}={get(b)}; min-dalle needs them equal")
    image_vocab_count = get("image_vocab_size")
    sizes = DalleConfig(
        layer_count=get("encoder_layers"), attention_head_count=get("encoder_attention_heads"),
        embed_count=get("d_model"), glu_embed_count=get("encoder_ffn_dim"),
        text_vocab_count=get("encoder_vocab_size"), image_vocab_count=image_vocab_count,
        text_token_count=get("max_text_length"), image_token_count=get("image_length"),
        image_code_count=min(2**14, image_vocab_count), image_start_token=min(2**14 - 1, image_vocab_count),
        name="converted",
    )
    return sizes, bool(config.get("force_ln_scale", False))


def vqgan_config_from_flax(config: dict[str, Any]) -> VQGanConfig:
    """The detokenizer's sizes from the VQGAN's config.json (vqgan-jax's VQGANConfig)."""
    get = config.get
    for key, required in (("out_ch", 3), ("resamp_with_conv", True), ("give_pre_end", False)):
        if get(key, required) != required:
            raise ConversionError(
                f"the VQGAN's config.json sets {key}={get(key, required)!r}; min-dalle needs {required!r}"
            )
    ch, ch_mult = get("ch", 128), list(get("ch_mult", [1, 1, 2, 2, 4]))
    resolution, attn_resolutions = get("resolution", 256), list(get("attn_resolutions", [16]))
    embed_dim, z_channels = get("embed_dim", 256), get("z_channels", 256)
    if z_channels != embed_dim:
        raise ConversionError(
            f"the VQGAN has z_channels={z_channels} but embed_dim={embed_dim}; min-dalle needs them equal"
        )
    return VQGanConfig(
        vocab_count=get("n_embed", 1024),
        embed_count=embed_dim,
        channel_counts=tuple(ch * m for m in ch_mult),
        # up level i works at resolution // 2**i pixels (vqgan-jax's Decoder)
        attention_levels=tuple(i for i in range(len(ch_mult)) if resolution // 2**i in attn_resolutions),
        block_count=get("num_res_blocks", 2) + 1,
        group_count=32,  # vqgan-jax builds every GroupNorm with 32 groups
        name="converted",
    )


# ---------------------------------------------------------------------------- the parameter plan


@dataclass(frozen=True)
class Step:
    """One torch tensor: from which Flax parameter, how, and (stacked files) which layer."""

    flax: str
    torch: str
    kind: str  # "copy", "linear" (transpose), "conv" (HWIO -> OIHW)
    layer: int | None = None


def _norm(flax: str, torch_name: str, has_scale: bool) -> list[tuple[str, str, str, bool]]:
    """(flax suffix, torch suffix, kind, expected) of one LayerNorm's two parameters."""
    return [
        (f"{flax}/scale", f"{torch_name}.weight", "copy", has_scale),
        (f"{flax}/bias", f"{torch_name}.bias", "copy", True),
    ]


def _layer_params(is_decoder: bool, force_ln_scale: bool) -> list[tuple[str, str, str, bool]]:
    """A layer's parameters, named as dalle-mini's compact modules name them.

    In the decoder layer the modules are created in the order pre-self-attention norm,
    self-attention, its output norm, pre-cross-attention norm, cross-attention, its
    output norm, GLU; inside the GLU: norm, Dense (gate), Dense, norm, Dense (out).
    """

    def attention(flax: str, name: str) -> list[tuple[str, str, str, bool]]:
        return [
            (f"{flax}/{p}/kernel", f"{name}.{p}.weight", "linear", True)
            for p in ("q_proj", "k_proj", "v_proj", "out_proj")
        ]

    params = _norm("LayerNorm_0", "pre_self_attn_layer_norm", force_ln_scale)
    params += attention("FlaxBartAttention_0", "self_attn")
    params += _norm("LayerNorm_1", "self_attn_layer_norm", True)
    if is_decoder:
        params += _norm("LayerNorm_2", "pre_encoder_attn_layer_norm", force_ln_scale)
        params += attention("FlaxBartAttention_1", "encoder_attn")
        params += _norm("LayerNorm_3", "encoder_attn_layer_norm", True)
    params += _norm("GLU_0/LayerNorm_0", "glu.ln0", force_ln_scale)
    params += _norm("GLU_0/LayerNorm_1", "glu.ln1", force_ln_scale)
    params += [(f"GLU_0/Dense_{i}/kernel", f"glu.fc{i}.weight", "linear", True) for i in range(3)]
    return params


def dalle_bart_plan(
    flax_shapes: dict[str, tuple[int, ...]], config: DalleConfig, force_ln_scale: bool
) -> tuple[list[Step], list[Step], list[str], list[str]]:
    """(encoder steps, decoder steps, encoder defaults, decoder defaults) for a DalleBart tree.

    Defaults are the torch LayerNorm weights with no Flax scale (filled with ones).
    Every Flax parameter must be used once: a missing or unexpected one is an error
    that names it.
    """
    steps: dict[str, list[Step]] = {"encoder": [], "decoder": []}
    defaults: dict[str, list[str]] = {"encoder": [], "decoder": []}
    expected: set[str] = set()
    for codec in ("encoder", "decoder"):
        top = f"model/{codec}"
        params = [
            ("embed_tokens/embedding", "embed_tokens.weight", "copy", True),
            ("embed_positions/embedding", "embed_positions.weight", "copy", True),
        ]
        params += _norm("layernorm_embedding", "layernorm_embedding", True)
        params += _norm("final_ln", "final_ln", force_ln_scale)
        for flax, name, kind, present in params:
            if present:
                expected.add(f"{top}/{flax}")
                steps[codec].append(Step(f"{top}/{flax}", name, kind))
            else:
                defaults[codec].append(name)
        scanned = f"{top}/layers/FlaxBart{codec.title()}Layers"
        is_scanned = any(k.startswith(scanned + "/") for k in flax_shapes)
        for flax, name, kind, present in _layer_params(codec == "decoder", force_ln_scale):
            for i in range(config.layer_count):
                if not present:
                    defaults[codec].append(f"layers.{i}.{name}")
                elif is_scanned:
                    expected.add(f"{scanned}/{flax}")
                    steps[codec].append(Step(f"{scanned}/{flax}", f"layers.{i}.{name}", kind, layer=i))
                else:
                    source = f"{top}/layers/FlaxBart{codec.title()}Layer_{i}/{flax}"
                    expected.add(source)
                    steps[codec].append(Step(source, f"layers.{i}.{name}", kind))
    expected.add("lm_head/kernel")
    steps["decoder"].append(Step("lm_head/kernel", "lm_head.weight", "linear"))
    _check_names(expected, set(flax_shapes), "DALL·E BART")
    return steps["encoder"], steps["decoder"], defaults["encoder"], defaults["decoder"]


_VQGAN_UNUSED = ("encoder/", "quant_conv/")  # the image -> token half: not needed to draw images


def _vqgan_torch_name(flax: str) -> str | None:
    """Flax VQGAN name -> min-dalle's key (None for the encoder half). vqgan-jax keeps
    lists of blocks as `up_3/block_1/...`; min-dalle indexes them `up.3.block.1....`."""
    if flax.startswith(_VQGAN_UNUSED):
        return None
    if flax == "quantize/embedding/embedding":
        return "embedding.weight"
    name = re.sub(r"up_(\d+)", r"up.\1", flax)
    name = re.sub(r"(up\.\d+/)(block|attn)_(\d+)", r"\1\2.\3", name)
    name = name.replace("/", ".")
    return re.sub(r"\.(kernel|scale)$", ".weight", name)


def vqgan_plan(flax_shapes: dict[str, tuple[int, ...]], config: VQGanConfig) -> list[Step]:
    """Steps for the detokenizer; every key the torch module has must come from the file."""
    from ..vqgan import VQGanDetokenizer

    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in VQGanDetokenizer(config).state_dict().items()}
    steps, unexpected = [], []
    for flax in sorted(flax_shapes):
        name = _vqgan_torch_name(flax)
        if name is None:
            continue
        if name not in expected:
            unexpected.append(flax)
            continue
        kind = "conv" if flax.endswith("kernel") else "copy"
        steps.append(Step(flax, name, kind))
    made = {s.torch: s.flax for s in steps}
    missing = [f"{k} (no Flax parameter maps to it)" for k in sorted(set(expected) - set(made))]
    if missing or unexpected:
        _raise_names(missing, unexpected, "VQGAN")
    _check_shapes(steps, flax_shapes, expected)
    return steps


def _check_names(expected: set[str], present: set[str], what: str) -> None:
    missing, unexpected = sorted(expected - present), sorted(present - expected)
    if missing or unexpected:
        _raise_names(missing, unexpected, what)


def _raise_names(missing: list[str], unexpected: list[str], what: str) -> None:
    parts = [f"the Flax {what} checkpoint does not have the parameters this converter expects:"]
    for title, items in (("missing", missing), ("unexpected", unexpected)):
        if items:
            shown = ", ".join(items[:8]) + (f", ... ({len(items)} in all)" if len(items) > 8 else "")
            parts.append(f"  {title}: {shown}")
    parts.append("Is it a dalle-mini checkpoint of another architecture, or a different file (config.json vs weights)?")
    raise ConversionError("\n".join(parts))


def output_shape(step: Step, flax_shape: tuple[int, ...]) -> tuple[int, ...]:
    shape = tuple(flax_shape[1:] if step.layer is not None else flax_shape)
    if step.kind == "linear":
        return shape[::-1]
    if step.kind == "conv":
        h, w, i, o = shape
        return (o, i, h, w)
    return shape


def _check_shapes(
    steps: list[Step], flax_shapes: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, ...]]
) -> None:
    wrong = [
        f"{s.flax} -> {s.torch}: file {tuple(flax_shapes[s.flax])}, model {expected[s.torch]}"
        for s in steps
        if s.torch in expected and output_shape(s, tuple(flax_shapes[s.flax])) != expected[s.torch]
    ]
    if wrong:
        shown = "\n  ".join(wrong[:8]) + (f"\n  ... ({len(wrong)} in all)" if len(wrong) > 8 else "")
        raise ConversionError(f"parameter shapes disagree with config.json:\n  {shown}")


def expected_bart_shapes(config: DalleConfig) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
    """Keys and shapes of dalle_core's encoder and decoder (min-dalle's keys), on the meta device."""
    from ..decoder import DalleBartDecoder
    from ..encoder import DalleBartEncoder

    with torch.device("meta"):
        encoder, decoder = DalleBartEncoder(config), DalleBartDecoder(config)
    return (
        {k: tuple(v.shape) for k, v in encoder.state_dict().items()},
        {k: tuple(v.shape) for k, v in decoder.state_dict().items()},
    )


# ---------------------------------------------------------------------------- converting


def _convert_one(tensor: torch.Tensor, step: Step, dtype: torch.dtype | None) -> torch.Tensor:
    if step.layer is not None:
        tensor = tensor[step.layer]
    if step.kind == "linear":
        tensor = tensor.transpose(0, 1)  # (in, out) -> (out, in)
    elif step.kind == "conv":
        tensor = tensor.permute(3, 2, 0, 1)  # (h, w, in, out) -> (out, in, h, w)
    if dtype is not None and tensor.is_floating_point():
        tensor = tensor.to(dtype)
    tensor = tensor.contiguous()
    if tensor.untyped_storage().nbytes() != tensor.numel() * tensor.element_size():
        tensor = tensor.clone()  # one layer of a stacked tensor: torch.save would write the whole stack
    return tensor


def convert_state(
    params: dict[str, torch.Tensor],
    steps: list[Step],
    defaults: Iterable[str] = (),
    dtype: torch.dtype | None = None,
    progress: bool = False,
    desc: str = "convert",
) -> dict[str, torch.Tensor]:
    """Apply `steps`, popping each Flax tensor from `params` once its last step is done,
    so memory holds about one copy of the model throughout."""
    from tqdm.auto import tqdm

    last_use = {s.flax: i for i, s in enumerate(steps)}
    state: dict[str, torch.Tensor] = {}
    for i, step in enumerate(tqdm(steps, desc=desc, unit="tensor", disable=not progress, leave=False)):
        state[step.torch] = _convert_one(params[step.flax], step, dtype)
        if last_use[step.flax] == i:
            del params[step.flax]
    like = next(iter(state.values()))
    for key in defaults:  # a LayerNorm without a learned scale multiplies by one
        size = state[key.rsplit(".", 1)[0] + ".bias"].shape
        state[key] = torch.ones(size, dtype=dtype or like.dtype)
    return state


def save_atomic(state: dict[str, torch.Tensor], path: Path) -> None:
    """torch.save into `<path>.part`, then move it into place: never half a file at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    torch.save(state, part)
    os.replace(part, path)


def copy_atomic(source: Path, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    shutil.copyfile(source, part)
    os.replace(part, path)


def _dtype(name: str | None) -> torch.dtype | None:
    if name in (None, "keep"):
        return None
    if name not in ("float16", "float32", "bfloat16"):
        raise ValueError(f"dtype must be keep, float16, float32 or bfloat16, got {name!r}")
    return TORCH_DTYPES[name]


def convert_dalle_bart(
    source: str | Path,
    target: str | Path,
    *,
    model: str | None = None,
    dtype: str | None = None,
    progress: bool = True,
) -> DalleConfig:
    """dalle-mini's DalleBart folder -> `target/{encoder.pt, decoder.pt, vocab.json, merges.txt}`.

    `model` ("mini" or "mega") makes the sizes in config.json be checked against that
    model's; None accepts any size (a test or custom model).
    """
    source, target = Path(source), Path(target)
    for name in (FLAX_WEIGHTS, *TOKENIZER_FILES):
        if not (source / name).is_file():
            raise FileNotFoundError(f"{source / name} does not exist (dalle-mini's {name})")
    config, force_ln_scale = dalle_config_from_flax(read_flax_config(source))
    if model is not None:
        _check_preset(config, model, source)
    params = read_flax_params(source / FLAX_WEIGHTS, progress=progress)
    shapes = {k: tuple(v.shape) for k, v in params.items()}
    encoder_steps, decoder_steps, encoder_defaults, decoder_defaults = dalle_bart_plan(shapes, config, force_ln_scale)
    expected_encoder, expected_decoder = expected_bart_shapes(config)
    _check_shapes(encoder_steps, shapes, expected_encoder)
    _check_shapes(decoder_steps, shapes, expected_decoder)
    for name in TOKENIZER_FILES:  # small files first: a wrong folder shows before the long part
        copy_atomic(source / name, target / name)
    for steps, defaults, name in (
        (encoder_steps, encoder_defaults, "encoder"),
        (decoder_steps, decoder_defaults, "decoder"),
    ):
        state = convert_state(params, steps, defaults, _dtype(dtype), progress, desc=f"convert {name}")
        save_atomic(state, target / f"{name}.pt")
        del state
    return config


def convert_vqgan(
    source: str | Path, target: str | Path, *, check_sizes: bool = True, dtype: str | None = None, progress: bool = True
) -> VQGanConfig:
    """dalle-mini/vqgan_imagenet_f16_16384 folder -> `target` (detoker.pt)."""
    source, target = Path(source), Path(target)
    if not (source / FLAX_WEIGHTS).is_file():
        raise FileNotFoundError(f"{source / FLAX_WEIGHTS} does not exist (the VQGAN's weights)")
    check_flax_config("vqgan", source, "checked" if check_sizes else None)
    config = vqgan_config_from_flax(read_flax_config(source))
    params = read_flax_params(source / FLAX_WEIGHTS, progress=progress)
    steps = vqgan_plan({k: tuple(v.shape) for k, v in params.items()}, config)
    state = convert_state(params, steps, (), _dtype(dtype), progress, desc="convert detoker")
    save_atomic(state, target)
    return config


def _sizes(config: VQGanConfig) -> dict[str, Any]:
    return {k: v for k, v in config.to_dict().items() if k != "name"}


def _check_preset(config: DalleConfig, model: str, source: Path) -> None:
    preset = DalleConfig.from_name(model)
    fields = (
        "layer_count",
        "attention_head_count",
        "embed_count",
        "glu_embed_count",
        "text_vocab_count",
        "image_vocab_count",
        "text_token_count",
        "image_token_count",
    )
    wrong = [
        f"{f} {getattr(config, f)} (the {model} model has {getattr(preset, f)})"
        for f in fields
        if getattr(config, f) != getattr(preset, f)
    ]
    if wrong:
        other = [m for m in MODELS if m != model]
        raise ConversionError(
            f"{source / FLAX_CONFIG} does not describe DALL·E {model.title()}: "
            + ", ".join(wrong)
            + f". Is it the {other[0]} checkpoint? (For a model of other sizes, convert with --any-size.)"
        )


def check_flax_config(part: str, folder: Path, model: str | None) -> None:
    """Refuse a config.json of an unsupported variant, or (with `model`) of other sizes,
    before its weights are downloaded or read. `part` is "bart" or "vqgan"; for the VQGAN
    any `model` means: check that it is DALL·E's size."""
    if part == "bart":
        config, _ = dalle_config_from_flax(read_flax_config(folder))
        if model is not None:
            _check_preset(config, model, folder)
        return
    config = vqgan_config_from_flax(read_flax_config(folder))
    if model is not None and _sizes(config) != _sizes(VQGanConfig.dalle()):
        raise ConversionError(
            f"{folder / FLAX_CONFIG} describes a VQGAN of another size ({config}); DALL·E's is "
            f"{VQGanConfig.dalle()}. Is it dalle-mini/{VQGAN_REPO_NAME}?"
        )


def find_vqgan_folder(source: Path) -> Path | None:
    """Where a downloaded VQGAN usually sits: inside or beside the DALL·E folder."""
    for folder in (source / VQGAN_REPO_NAME, source.parent / VQGAN_REPO_NAME):
        if (folder / FLAX_WEIGHTS).is_file():
            return folder
    return None


def convert_model(
    source: str | Path,
    model: str,
    models_root: str | Path,
    *,
    vqgan: str | Path | None = None,
    check_sizes: bool = True,
    dtype: str | None = None,
    progress: bool = True,
    origin: dict[str, str] | None = None,
) -> ModelFiles:
    """Convert a DALL·E folder (and the VQGAN, found with `find_vqgan_folder` unless given)
    into `models_root` in min-dalle's layout; returns the local paths.

    Without a VQGAN folder an existing `vqgan/detoker.pt` is kept. A `converted.json`
    beside the files records their sizes and sha256 so that `fetch` and `verify` treat
    them as complete (their bytes differ from min-dalle's published files).
    """
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {MODELS}")
    source = Path(source)
    if not source.is_dir():
        raise FileNotFoundError(f"{source} is not a folder (expected a download of dalle-mini/dalle-{model})")
    files = model_files(models_root, model)
    vqgan_folder = Path(vqgan) if vqgan is not None else find_vqgan_folder(source)
    if vqgan_folder is None and not files.detoker.is_file():
        raise FileNotFoundError(
            f"no VQGAN found: pass --vqgan DIR (a download of dalle-mini/{VQGAN_REPO_NAME}), or put it at "
            f"{source / VQGAN_REPO_NAME} or {source.parent / VQGAN_REPO_NAME}"
        )
    convert_into(
        source, vqgan_folder, model, models_root, check_sizes=check_sizes, dtype=dtype, progress=progress, origin=origin
    )
    return files


def convert_into(
    source: Path | None,
    vqgan: Path | None,
    model: str,
    models_root: str | Path,
    *,
    check_sizes: bool = True,
    dtype: str | None = None,
    progress: bool = True,
    origin: dict[str, str] | None = None,
) -> None:
    """Convert whichever of the two parts is given (None skips it) and record the files."""
    files, origin = model_files(models_root, model), origin or {}
    if source is not None:
        convert_dalle_bart(
            source, files.encoder.parent, model=model if check_sizes else None, dtype=dtype, progress=progress
        )
        write_record(
            files.encoder.parent,
            ("vocab.json", "merges.txt", "encoder.pt", "decoder.pt"),
            origin.get("dalle", str(source)),
        )
    if vqgan is not None:
        convert_vqgan(vqgan, files.detoker, check_sizes=check_sizes, dtype=dtype, progress=progress)
        write_record(files.detoker.parent, ("detoker.pt",), origin.get("vqgan", str(vqgan)))


# ---------------------------------------------------------------------------- the record


def write_record(folder: Path, names: Iterable[str], origin: str) -> None:
    from .fetch import file_sha256

    record = {
        "converted_from": origin,
        "files": {
            name: {"size": (folder / name).stat().st_size, "sha256": file_sha256(folder / name)} for name in names
        },
    }
    part = folder / (RECORD_NAME + ".part")
    part.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    os.replace(part, folder / RECORD_NAME)


def recorded(path: Path) -> dict[str, Any] | None:
    """{size, sha256} of `path` if a conversion wrote it (per the folder's converted.json)."""
    record_path = path.parent / RECORD_NAME
    if not record_path.is_file():
        return None
    try:
        entry = json.loads(record_path.read_text(encoding="utf-8"))["files"].get(path.name)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return entry if isinstance(entry, dict) else None


# ---------------------------------------------------------------------------- command line


def add_cli(subparsers: Any) -> None:
    """Register `convert` on an argparse subparsers object (sets `func(args) -> int`)."""
    parser = subparsers.add_parser(
        "convert",
        help="convert dalle-mini's original Flax checkpoints into min-dalle's layout",
        description=(
            "Read dalle-mini's flax_model.msgpack + config.json + vocab.json + merges.txt (a download "
            f"of dalle-mini/dalle-mini or dalle-mini/dalle-mega) and the VQGAN's ({VQGAN_REPO_NAME}), "
            "and write encoder.pt, decoder.pt, the tokenizer files and vqgan/detoker.pt in min-dalle's "
            "layout. Needs no jax."
        ),
    )
    parser.add_argument("--from", dest="source", required=True, metavar="DIR", help="the DALL·E Flax folder")
    parser.add_argument("--model", required=True, choices=MODELS, help="which model the folder holds")
    parser.add_argument(
        "--models-root",
        default="pretrained",
        metavar="DIR",
        help="where dalle_bart_{mini,mega}/ and vqgan/ go (default: pretrained)",
    )
    parser.add_argument(
        "--vqgan",
        metavar="DIR",
        default=None,
        help=f"the VQGAN Flax folder (default: DIR/{VQGAN_REPO_NAME} or beside DIR)",
    )
    parser.add_argument(
        "--dtype",
        choices=["keep", "float16", "float32", "bfloat16"],
        default="keep",
        help="dtype of the written tensors (default: as stored in the Flax file)",
    )
    parser.add_argument(
        "--any-size",
        action="store_true",
        help="accept sizes other than DALL·E Mini's / Mega's (test and custom models)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=_run_convert)


def run_and_report(
    make: Callable[[], Iterable[Path]], errors: tuple[type[Exception], ...], done: str, quiet: bool
) -> int:
    """The tail of the `convert` and `fetch` commands: one line and exit status 1 for an
    expected error, else the files in place (unless quiet) and 0."""
    try:
        files = list(make())
    except errors as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not quiet:
        print(done)
        for path in files:
            print(f"  {path}")
    return 0


def _run_convert(args: argparse.Namespace) -> int:
    return run_and_report(
        lambda: convert_model(
            args.source,
            args.model,
            args.models_root,
            vqgan=args.vqgan,
            check_sizes=not args.any_size,
            dtype=args.dtype,
            progress=not args.quiet,
        ),
        (ConversionError,),
        f"converted the {args.model} model into {args.models_root}:",
        args.quiet,
    )
