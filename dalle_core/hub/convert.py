"""Convert dalle-mini's original Flax checkpoints into min-dalle's layout (`python -m dalle_core convert`).

min-dalle's files were converted from dalle-mini's releases (Mini, Mega, the VQGAN); this makes them again from
those originals, with `msgpack` alone (no jax). The plan walks the torch module's parameters and names the Flax
parameter each comes from: `Dense` kernels (in, out) are transposed, `Conv` kernels go from (h, w, in, out) to
(out, in, h, w), `scale` and `embedding` become `weight`, layers stacked by `nn.scan` are cut apart, and the
NormFormer LayerNorms that Flax builds without a scale get a weight of ones, so the files load strictly into
min-dalle and dalle_core alike. Memory peaks near one copy of the model: each Flax tensor is freed once converted.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import msgpack
import torch
from torch import nn
from tqdm.utils import CallbackIOWrapper

from ..config import DalleConfig, VQGanConfig, read_json
from ..memory import return_large_blocks_promptly
from ..trace import progress_bar
from ..weights import ModelFiles, atomic_write, expected_module, list_differences, model_files
from .files import add_model_options, byte_bar, write_record

FLAX_WEIGHTS, FLAX_CONFIG = "flax_model.msgpack", "config.json"
TOKENIZER_FILES = ("vocab.json", "merges.txt")
# a Flax folder's files, DALL·E's BART (with its tokenizer) or the VQGAN: config.json first: a wrong model shows early
FLAX_FILES = {"bart": (FLAX_CONFIG, *TOKENIZER_FILES, FLAX_WEIGHTS), "vqgan": (FLAX_CONFIG, FLAX_WEIGHTS)}
VQGAN_REPO_NAME = "vqgan_imagenet_f16_16384"
CHUNKED = "__msgpack_chunked_array__"
TORCH_DTYPES = {"float16": torch.float16, "float32": torch.float32, "bfloat16": torch.bfloat16,
                "float64": torch.float64, "int32": torch.int32, "int64": torch.int64}
Shapes = dict[str, tuple[int, ...]]


class ConversionError(ValueError):
    """The Flax files cannot be converted; the message names the parameter or setting."""


def _ndarray(code: int, data: bytes) -> torch.Tensor:
    """msgpack's extension hook for Flax's ndarray (type 1) and numpy scalar (type 3): a msgpack triple
    (shape, dtype name, C-order bytes). Only the head is unpacked; the bytes are copied once, into the tensor."""
    if code not in (1, 3):
        raise ConversionError(f"unknown msgpack extension type {code} in a Flax checkpoint")
    head = msgpack.Unpacker(raw=True)
    head.feed(data[:4096])  # shape and dtype name take a few dozen bytes
    if head.read_array_header() != 3:
        raise ConversionError("a Flax array is not stored as (shape, dtype, bytes)")
    shape, name = head.unpack(), head.unpack().decode()
    if (dtype := TORCH_DTYPES.get(name)) is None:
        raise ConversionError(f"a Flax array has dtype {name!r}, which this converter does not read")
    nbytes = math.prod(shape) * dtype.itemsize
    if len(data) - nbytes - head.tell() not in (2, 3, 5):  # a msgpack bin header (8, 16 or 32-bit length) is left
        raise ConversionError("a Flax array's byte count does not match its shape and dtype")
    if not nbytes:
        return torch.empty(shape, dtype=dtype)
    return torch.frombuffer(bytearray(memoryview(data)[len(data) - nbytes:]), dtype=dtype).reshape(shape)


def read_flax_params(path: str | Path, progress: bool = False) -> dict[str, torch.Tensor]:
    """A `flax_model.msgpack` as a flat dict: '/'-joined parameter path -> tensor. The file is streamed,
    so reading needs about its size in memory, not twice that."""
    path = Path(path)
    return_large_blocks_promptly()  # freed Flax tensors go back to the system, not to a heap that only grows
    size = path.stat().st_size
    with open(path, "rb") as stream, byte_bar(f"read {path.name}", size, progress) as bar:
        unpacker = msgpack.Unpacker(CallbackIOWrapper(bar.update, stream, "read"), ext_hook=_ndarray, raw=False,
                                    strict_map_key=False, max_buffer_size=2**31 - 1)  # a leaf is up to 2**30 bytes
        try:
            tree = unpacker.unpack()
        except ConversionError:
            raise
        except Exception as error:  # msgpack raises several types for a cut or foreign file
            raise ConversionError(f"{path} is not a readable Flax msgpack checkpoint ({type(error).__name__}: "
                                  f"{error}); it may be truncated: download it again") from None
        if unpacker.tell() != size:
            raise ConversionError(f"{path} has {size - unpacker.tell()} bytes after the parameter tree")
    if not isinstance(tree, dict):
        raise ConversionError(f"{path} does not hold a parameter tree (a map), but a {type(tree).__name__}")
    return dict(_flatten(tree, ""))


def _flatten(tree: dict, prefix: str) -> Iterator[tuple[str, torch.Tensor]]:
    for key in list(tree):
        value, name = tree.pop(key), f"{prefix}{key}"  # popped: the flat dict becomes each tensor's only owner
        if isinstance(value, dict) and value.get(CHUNKED):
            shape = [value["shape"][str(i)] for i in range(len(value["shape"]))]
            yield name, torch.cat([value["chunks"][str(i)] for i in range(len(value["chunks"]))]).reshape(shape)
        elif isinstance(value, dict):
            yield from _flatten(value, name + "/")
        elif isinstance(value, torch.Tensor):
            yield name, value
        else:
            raise ConversionError(f"parameter {name} is a {type(value).__name__}, not an array")


# dalle-mini's DalleBartConfig (src/dalle_mini/model/configuration.py): the config.json key and default of each
# DalleConfig size, and the value each architecture switch must have for the model to be min-dalle's function
_BART_SIZES = {
    "layer_count": ("encoder_layers", 12), "attention_head_count": ("encoder_attention_heads", 16),
    "embed_count": ("d_model", 1024), "glu_embed_count": ("encoder_ffn_dim", 4096),
    "text_vocab_count": ("encoder_vocab_size", 50264), "image_vocab_count": ("image_vocab_size", 16384),
    "text_token_count": ("max_text_length", 64), "image_token_count": ("image_length", 256),
}
_BART_REQUIRED = {
    "activation_function": "gelu", "scale_embedding": False, "use_bias": False, "ln_type": "layernorm",
    "ln_positions": "normformer", "use_head_scale": False, "use_cosine_attention": False,
    "use_absolute_position_embeddings": True, "use_swin_position_embeddings": False, "use_glu": True,
    "use_alibi": False, "sinkhorn_iters": 1, "use_final_ln_encoder": True, "use_final_ln_decoder": True,
    "tie_word_embeddings": False,
}
# vqgan-jax's VQGANConfig defaults for the keys the detokenizer's sizes come from
_VQGAN_DEFAULTS = {"ch": 128, "ch_mult": (1, 1, 2, 2, 4), "resolution": 256, "attn_resolutions": (16,),
                   "num_res_blocks": 2, "n_embed": 1024, "embed_dim": 256, "z_channels": 256}


def dalle_config_from_flax(config: dict[str, Any]) -> tuple[DalleConfig, bool]:
    """(sizes, force_ln_scale) of a dalle-mini config.json; refuses variants min-dalle lacks."""
    for key, required in _BART_REQUIRED.items():
        if config.get(key, required) != required:
            raise ConversionError(f"config.json sets {key}={config[key]!r}; min-dalle's architecture has "
                                  f"{key}={required!r}, so the converted model would compute something else")
    sizes = {field: config.get(key, default) for field, (key, default) in _BART_SIZES.items()}
    for field, twin in (("layer_count", "decoder_layers"), ("attention_head_count", "decoder_attention_heads"),
                        ("glu_embed_count", "decoder_ffn_dim")):  # min-dalle: one value for both stacks
        if (value := config.get(twin, _BART_SIZES[field][1])) != sizes[field]:
            raise ConversionError(f"config.json has {_BART_SIZES[field][0]}={sizes[field]} but {twin}={value}; "
                                  "min-dalle needs them equal")
    vocab = sizes["image_vocab_count"]
    return DalleConfig(**sizes, image_code_count=min(2**14, vocab), image_start_token=min(2**14 - 1, vocab),
                       name="converted"), bool(config.get("force_ln_scale", False))


def vqgan_config_from_flax(config: dict[str, Any]) -> VQGanConfig:
    """The detokenizer's sizes from the VQGAN's config.json (vqgan-jax's VQGANConfig)."""
    for key, required in (("out_ch", 3), ("resamp_with_conv", True), ("give_pre_end", False)):
        if config.get(key, required) != required:
            raise ConversionError(f"the VQGAN's config.json sets {key}={config[key]!r}; min-dalle needs {required!r}")
    config = {**_VQGAN_DEFAULTS, **config}
    if config["z_channels"] != config["embed_dim"]:
        raise ConversionError(f"the VQGAN has z_channels={config['z_channels']} but embed_dim={config['embed_dim']}; "
                              "min-dalle needs them equal")
    levels = range(len(config["ch_mult"]))  # up level i works at resolution // 2**i pixels (vqgan-jax's Decoder)
    return VQGanConfig(
        vocab_count=config["n_embed"], embed_count=config["embed_dim"],
        channel_counts=tuple(config["ch"] * m for m in config["ch_mult"]),
        attention_levels=tuple(i for i in levels if config["resolution"] // 2**i in config["attn_resolutions"]),
        block_count=config["num_res_blocks"] + 1, group_count=32,  # vqgan-jax: every GroupNorm has 32 groups
        name="converted")


class Step(NamedTuple):
    """One torch tensor: from which Flax parameter, how, and which layer of a stacked (nn.scan) one."""
    flax: str
    torch: str
    kind: str  # "copy", "linear" (transpose), "conv" (HWIO -> OIHW)
    layer: int | None = None


_LEAVES = {nn.Linear: ("kernel", "linear"), nn.Conv2d: ("kernel", "conv"), nn.Embedding: ("embedding", "copy")}
# dalle-mini's compact modules in a BART layer, by min-dalle's names (Flax numbers them in creation order)
_BART_NAMES = {
    "pre_self_attn_layer_norm": "LayerNorm_0", "self_attn": "FlaxBartAttention_0",
    "self_attn_layer_norm": "LayerNorm_1", "pre_encoder_attn_layer_norm": "LayerNorm_2",
    "encoder_attn": "FlaxBartAttention_1", "encoder_attn_layer_norm": "LayerNorm_3", "glu": "GLU_0",
    "ln0": "LayerNorm_0", "ln1": "LayerNorm_1", "fc0": "Dense_0", "fc1": "Dense_1", "fc2": "Dense_2",
}
# NormFormer's LayerNorms in front of a dense layer: built without a scale unless config.json sets force_ln_scale
_NO_SCALE = ("pre_self_attn_layer_norm", "pre_encoder_attn_layer_norm", "glu.ln0", "glu.ln1", "final_ln")


def _plan(module: nn.Module, flax_shapes: Shapes, where: Callable[[str], tuple[str, int | None]],
          no_scale: tuple[str, ...] = ()) -> tuple[list[Step], list[str], list[str], list[str]]:
    """(steps, defaults, missing, wrong shapes) that fill every parameter of `module` (on meta) from a Flax tree.
    `where` gives a torch module's Flax path (and layer); a `no_scale` norm's weight absent in the file is ones."""
    steps, defaults, missing, wrong = [], [], [], []
    for key, value in module.named_parameters():
        owner, _, param = key.rpartition(".")
        leaf, kind = _LEAVES.get(type(module.get_submodule(owner)), ("scale", "copy"))  # scale: a norm's weight
        path, layer = where(owner)
        step = Step(f"{path}/{'bias' if param == 'bias' else leaf}", key, "copy" if param == "bias" else kind, layer)
        if step.flax not in flax_shapes and param == "weight" and owner.endswith(no_scale):
            defaults.append(key)
        elif step.flax not in flax_shapes:
            missing.append(step.flax)
        else:
            steps.append(step)
            if output_shape(step, flax_shapes[step.flax]) != tuple(value.shape):
                wrong.append(f"{step.flax} -> {key}: file {tuple(flax_shapes[step.flax])}, model {tuple(value.shape)}")
    return steps, defaults, missing, wrong


def _bart_where(codec: str, is_stacked: bool, name: str) -> tuple[str, int | None]:
    """min-dalle's module name -> dalle-mini's Flax path (and layer): `layers.3.glu.fc0` is layer 3 of
    `model/encoder/layers/FlaxBartEncoderLayers/GLU_0/Dense_0` (stacked), or `.../FlaxBartEncoderLayer_3/...`."""
    if name == "lm_head" or not name.startswith("layers."):
        return (name if name == "lm_head" else f"model/{codec}/{name}"), None
    _, i, rest = name.split(".", 2)
    layers = f"model/{codec}/layers/FlaxBart{codec.title()}Layer"
    path = "/".join(_BART_NAMES.get(part, part) for part in rest.split("."))
    return (f"{layers}s/{path}", int(i)) if is_stacked else (f"{layers}_{i}/{path}", None)


def dalle_bart_plan(flax_shapes: Shapes, config: DalleConfig, force_ln_scale: bool
                    ) -> tuple[list[Step], list[Step], list[str], list[str]]:
    """(encoder steps, decoder steps, encoder defaults, decoder defaults) for a DalleBart tree. Every Flax
    parameter must be used: a missing or unexpected one is an error that names it."""
    no_scale = () if force_ln_scale else _NO_SCALE
    steps, defaults, missing, wrong = {}, {}, [], []
    for codec in ("encoder", "decoder"):
        is_stacked = any(k.startswith(f"model/{codec}/layers/FlaxBart{codec.title()}Layers/") for k in flax_shapes)
        where = functools.partial(_bart_where, codec, is_stacked)
        steps[codec], defaults[codec], lost, bad = _plan(expected_module(codec, config), flax_shapes, where, no_scale)
        missing += lost
        wrong += bad
    unexpected = set(flax_shapes) - {s.flax for s in steps["encoder"] + steps["decoder"]}
    _check(missing, unexpected, wrong, "DALL·E BART")
    return steps["encoder"], steps["decoder"], defaults["encoder"], defaults["decoder"]


def _vqgan_where(name: str) -> tuple[str, None]:
    """min-dalle's module name -> vqgan-jax's: `decoder.up.3.block.1.norm1` is `decoder/up_3/block_1/norm1`."""
    return ("quantize/embedding" if name == "embedding" else re.sub(r"\.(\d+)", r"_\1", name).replace(".", "/")), None


def vqgan_plan(flax_shapes: Shapes, config: VQGanConfig) -> list[Step]:
    """Steps for the detokenizer; the VQGAN's encoder half (image -> tokens) is not needed to draw."""
    steps, _, missing, wrong = _plan(expected_module("detoker", config), flax_shapes, _vqgan_where)
    used = {s.flax for s in steps}
    unexpected = [k for k in flax_shapes if k not in used and not k.startswith(("encoder/", "quant_conv/"))]
    _check(missing, unexpected, wrong, "VQGAN")
    return steps


def _check(missing: Iterable[str], unexpected: Iterable[str], wrong: list[str], what: str) -> None:
    """Refuse a plan with missing or unexpected Flax parameters, or shapes that disagree, naming them."""
    if missing or unexpected or wrong:
        raise ConversionError(list_differences(
            f"the Flax {what} checkpoint does not have the parameters this converter expects:",
            {"missing": sorted(set(missing)), "unexpected": sorted(set(unexpected)),
             "shapes that disagree with config.json": wrong},
            "Is it a dalle-mini checkpoint of another architecture, or a different file?",
        ))


def output_shape(step: Step, flax_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of the torch tensor that `step` makes of a Flax tensor of `flax_shape` (traced on meta)."""
    return tuple(_convert_one(torch.empty(flax_shape, device="meta"), step, None).shape)


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


def _convert_and_save(params: dict[str, torch.Tensor], steps: list[Step], defaults: Iterable[str],
                      dtype: torch.dtype | None, progress: bool, path: Path) -> None:
    """Apply `steps` and save the state at `path` (whole or not at all). Each Flax tensor leaves `params`
    after its last step, so that memory holds about one copy of the model throughout."""
    last_use = {s.flax: i for i, s in enumerate(steps)}
    state: dict[str, torch.Tensor] = {}
    for i, step in enumerate(progress_bar(steps, f"convert {path.name}", progress, unit="tensor", leave=False)):
        state[step.torch] = _convert_one(params[step.flax], step, dtype)
        if last_use[step.flax] == i:
            del params[step.flax]
    for key in defaults:  # no learned scale: the norm multiplies by one
        state[key] = torch.ones_like(state[key.rsplit(".", 1)[0] + ".bias"])
    with atomic_write(path) as part:
        torch.save(state, part)


def check_flax_config(part: str, folder: Path, model: str | None) -> Any:
    """The sizes that a Flax folder's config.json describes, refusing an unsupported variant or (with `model`)
    other sizes than that model's, before the weights are read or even downloaded. `part` "bart" gives
    (DalleConfig, force_ln_scale); "vqgan" a VQGanConfig, where any `model` means DALL·E's VQGAN."""
    path = Path(folder) / FLAX_CONFIG
    if part == "vqgan":
        config = vqgan_config_from_flax(read_json(path))
        if model is not None and dataclasses.replace(config, name="dalle") != VQGanConfig.dalle():
            raise ConversionError(f"{path} describes a VQGAN of another size ({config}); DALL·E's is "
                                  f"{VQGanConfig.dalle()}. Is it dalle-mini/{VQGAN_REPO_NAME}?")
        return config
    config, force_ln_scale = dalle_config_from_flax(read_json(path))
    preset = DalleConfig.from_name(model).replace(name=config.name) if model is not None else config
    wrong = [f"{key} {value} (the {model} model has {getattr(preset, key)})"
             for key, value in config.to_dict().items() if value != getattr(preset, key)]
    if wrong:
        raise ConversionError(f"{path} does not describe DALL·E {str(model).title()}: {', '.join(wrong)}. Is it the "
                              f"{'mega' if model == 'mini' else 'mini'} checkpoint? (For a model of other sizes, "
                              "convert with --any-size.)")
    return config, force_ln_scale


def convert_model(source: str | Path, model: str, models_root: str | Path, *, vqgan: str | Path | None = None,
                  check_sizes: bool = True, dtype: str | None = None, progress: bool = True) -> ModelFiles:
    """Convert a DALL·E Flax folder, and the VQGAN's (`--vqgan`, else found inside or beside it), into
    `models_root` in min-dalle's layout; returns the local paths. Without a VQGAN folder an existing
    `vqgan/detoker.pt` is kept. `check_sizes=False` accepts sizes other than Mini's / Mega's."""
    source = Path(source)
    files = model_files(models_root, model)  # refuses an unknown model
    if not source.is_dir():
        raise FileNotFoundError(f"{source} is not a folder (expected a download of dalle-mini/dalle-{model})")
    nearby = (source / VQGAN_REPO_NAME, source.parent / VQGAN_REPO_NAME)
    vqgan = Path(vqgan) if vqgan is not None else next((f for f in nearby if (f / FLAX_WEIGHTS).is_file()), None)
    if vqgan is None and not files.detoker.is_file():
        raise FileNotFoundError(f"no VQGAN found: pass --vqgan DIR (a download of dalle-mini/{VQGAN_REPO_NAME}), or "
                                f"put it at {nearby[0]} or {nearby[1]}")
    convert_into(source, vqgan, model, models_root, check_sizes=check_sizes, dtype=dtype, progress=progress)
    return files


def convert_into(source: Path | None, vqgan: Path | None, model: str, models_root: str | Path, *,
                 check_sizes: bool = True, dtype: str | None = None, progress: bool = True,
                 origin: dict[str, str] | None = None) -> None:
    """Convert whichever of the two Flax folders is given (None skips it) into `models_root`, and record
    the written files' sizes and sha256 in a converted.json beside them, which fetch and verify check
    instead of the published table (the bytes differ from min-dalle's files)."""
    if dtype not in (None, "keep", "float16", "float32", "bfloat16"):
        raise ValueError(f"dtype must be keep, float16, float32 or bfloat16, got {dtype!r}")
    files, origin = model_files(models_root, model), origin or {}
    dtype = TORCH_DTYPES.get(dtype or "keep")  # None keeps each tensor's own
    for folder, part in ((source, "bart"), (vqgan, "vqgan")):
        for name in FLAX_FILES[part] if folder is not None else ():
            if not (folder / name).is_file():
                raise FileNotFoundError(f"{folder / name} does not exist (dalle-mini's {name})")
    if source is not None:
        config, force_ln_scale = check_flax_config("bart", source, model if check_sizes else None)
        params = read_flax_params(source / FLAX_WEIGHTS, progress=progress)
        encoder, decoder, encoder_defaults, decoder_defaults = dalle_bart_plan(
            {k: tuple(v.shape) for k, v in params.items()}, config, force_ln_scale)
        for name in TOKENIZER_FILES:  # small files first: a wrong folder shows before the long part
            with atomic_write(files.encoder.parent / name) as part:
                shutil.copyfile(source / name, part)
        _convert_and_save(params, encoder, encoder_defaults, dtype, progress, files.encoder)
        _convert_and_save(params, decoder, decoder_defaults, dtype, progress, files.decoder)
        write_record(files.encoder.parent, (*TOKENIZER_FILES, "encoder.pt", "decoder.pt"),
                     origin.get("bart", str(source)))
    if vqgan is not None:
        config = check_flax_config("vqgan", vqgan, "dalle" if check_sizes else None)
        params = read_flax_params(vqgan / FLAX_WEIGHTS, progress=progress)
        steps = vqgan_plan({k: tuple(v.shape) for k, v in params.items()}, config)
        _convert_and_save(params, steps, (), dtype, progress, files.detoker)
        write_record(files.detoker.parent, ("detoker.pt",), origin.get("vqgan", str(vqgan)))


def add_cli(subparsers: Any) -> None:
    """Register `convert` on an argparse subparsers object (sets `func(args) -> int`)."""
    parser = subparsers.add_parser(
        "convert", help="convert dalle-mini's original Flax checkpoints into min-dalle's layout",
        description="Read a download of dalle-mini/dalle-mini or dalle-mega (config.json, vocab.json, merges.txt, "
                    f"flax_model.msgpack) and of {VQGAN_REPO_NAME}; write encoder.pt, decoder.pt, the tokenizer files "
                    "and vqgan/detoker.pt in min-dalle's layout. Needs no jax.")
    parser.add_argument("--from", dest="source", required=True, metavar="DIR", help="the DALL·E Flax folder")
    add_model_options(parser, "which model the folder holds")
    parser.add_argument("--vqgan", metavar="DIR", help="the VQGAN Flax folder (default: found in or beside DIR)")
    parser.add_argument("--dtype", choices=["keep", "float16", "float32", "bfloat16"], default="keep",
                        help="dtype of the written tensors (default: as stored in the Flax file)")
    parser.add_argument("--any-size", action="store_true", help="accept sizes other than Mini's / Mega's (custom)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=_run_convert)


def _run_convert(args: argparse.Namespace) -> int:
    files = convert_model(args.source, args.model, args.models_root, vqgan=args.vqgan,
                          check_sizes=not args.any_size, dtype=args.dtype, progress=not args.quiet)
    if not args.quiet:
        print(f"converted the {args.model} model into {args.models_root}:", *(f"  {p}" for p in files), sep="\n")
    return 0
