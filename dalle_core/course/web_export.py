"""`python -m dalle_core export-web`: the course model as ONNX graphs for the browser (explorer/).

Three graphs with static shapes (one image, so 2 rows: unconditional, conditional), the
tokenizer's files and a manifest:

    encoder.onnx       text_tokens (2, 64) -> encoder_state (2, 64, 128),
                       encoder_keys_values (3, 2, 2, 64, 128): per layer the decoder's
                       cross-attention keys and values, computed once per prompt as
                       `DalleBartDecoder.encoder_keys_values` computes them
    decoder_step.onnx  one decoder step: prev_tokens (1, 1), token_index (1,),
                       attention_mask (2, 1, 1, 64), encoder_keys_values, and the cache
                       attention_state (3, 4, 256, 128) in -> logits (2, 1, 1025) and
                       new_keys_values (3, 4, 1, 128) out: this step's keys (rows 0, 1) and
                       values (rows 2, 3), which the caller writes into slot token_index
    detokenizer.onnx   image_tokens (rows, 16), rows = 1..16 -> pixels (4 rows, 64, 3),
                       floats 0..255: the VQGAN on the rows drawn so far
    tokenizer.json     vocab, merges, the words of the training captions
    emoji.json         emoji -> English name, the table `emoji.demojize` reads
    manifest.json      sizes, the graphs' inputs and outputs, bytes and sha256 of each file

The step graph is the package's decoder (`DalleBartDecoder.forward`, every layer's own
`forward`) with one method swapped: self-attention reads the cache as an input and attends
over its 256 slots plus the new token's key, under the mask `slot < token_index`, instead of
writing slot i in place (`DecoderLayer.self_attention`). An exporter could drop an in-place
write into an input; here nothing is written in place, and the cache is never copied out.

The shipped weights are float16 numbers (`weights_dtype` in metadata.json), so every weight
is stored in float16 and cast to float32 when the graph is loaded: the same float32 values
in half the bytes. tests/test_web_export.py compares each graph with PyTorch through
onnxruntime; docs/explorer.md gives the measured differences.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import logging
import shutil
import tempfile
import time
import warnings
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import TINY_ROOT
from ..decoder import DalleBartDecoder, DecoderLayer
from ..encoder import DalleBartEncoder
from ..pipeline import MinDalle
from ..tokenizer import BOS, EOS, PAD, PAD_ID, UNK
from ..vqgan import VQGanDetokenizer

OPSET = 18
FORMAT = 1  # manifest format: the page refuses a manifest of another format
GRAPHS = ("encoder.onnx", "decoder_step.onnx", "detokenizer.onnx")
FILES = (*GRAPHS, "tokenizer.json", "emoji.json")


# ---- the three graphs, as modules -----------------------------------------------------------
class WebEncoder(nn.Module):
    """text_tokens (2, 64) -> encoder_state (2, 64, E) and the cross-attention keys and values
    (layers, 2, 2, 64, E): [layer, 0] keys, [layer, 1] values, once per prompt."""

    def __init__(self, encoder: DalleBartEncoder, decoder: DalleBartDecoder):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, text_tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        encoder_state = self.encoder(text_tokens)  # (2, 64, E)
        keys_values = self.decoder.encoder_keys_values(encoder_state)  # per layer ((2, 64, E), (2, 64, E))
        return encoder_state, torch.stack([torch.stack(pair) for pair in keys_values])  # (layers, 2, 2, 64, E)


def cached_self_attention(
    layer: DecoderLayer, new_keys_values: list[torch.Tensor],
    x: torch.Tensor, token_index: torch.Tensor, layer_state: torch.Tensor,
) -> torch.Tensor:
    """`DecoderLayer.self_attention` for a step that writes nothing: attend over the cache's
    slots (layer_state (4, slots, E): rows 0, 1 keys, rows 2, 3 values) and the new token,
    and hand the new key and value to the caller through `new_keys_values`."""
    batch_count = x.shape[0]  # 2: unconditional, conditional
    keys, values = layer.self_attn.k_proj(x), layer.self_attn.v_proj(x)  # (2, 1, E) each
    new_keys_values.append(torch.cat([keys, values]))  # (4, 1, E): the cache's row order
    slot_count = layer_state.shape[1]
    keys = torch.cat([layer_state[:batch_count], keys], dim=1)  # (2, slots + 1, E): the new key last
    values = torch.cat([layer_state[batch_count:], values], dim=1)  # (2, slots + 1, E)
    is_written = torch.arange(slot_count, device=x.device) < token_index  # (slots,): slots 0..i-1 hold the past
    visible = torch.cat([is_written, torch.ones(1, dtype=torch.bool, device=x.device)])[None]  # (1, slots + 1)
    return layer.self_attn(x, keys, values, visible)


class WebDecoderStep(nn.Module):
    """One decoder step with static shapes; the cache comes in and only the new keys and values go out."""

    def __init__(self, decoder: DalleBartDecoder):
        super().__init__()
        self.decoder = copy.deepcopy(decoder)  # its layers get the swapped self-attention; the model's stay
        self.new_keys_values: list[torch.Tensor] = []
        for layer in self.decoder.layers:
            layer.self_attention = partial(cached_self_attention, layer, self.new_keys_values)

    def forward(
        self,
        prev_tokens: torch.Tensor,
        token_index: torch.Tensor,
        attention_mask: torch.Tensor,
        encoder_keys_values: torch.Tensor,
        attention_state: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        self.new_keys_values.clear()
        keys_values = [(pair[0], pair[1]) for pair in encoder_keys_values.unbind(0)]  # per layer (2, 64, E) twice
        logits, _ = self.decoder(attention_mask, None, attention_state, prev_tokens, token_index, keys_values)
        return logits, torch.stack(self.new_keys_values)  # (2, 1, vocab + 1), (layers, 4, 1, E)


class WebDetokenizer(nn.Module):
    """image_tokens (rows, side) -> pixels (f * rows, f * side, 3), 0..255: `decode_images` for
    one image whose first `rows` token rows are drawn (a partial grid is a shorter picture)."""

    def __init__(self, detokenizer: VQGanDetokenizer):
        super().__init__()
        self.detokenizer = detokenizer

    def forward(self, image_tokens: torch.Tensor) -> torch.Tensor:
        z = self.detokenizer.embedding(image_tokens[None])  # (1, rows, side, embed)
        z = z.permute(0, 3, 1, 2)  # (1, embed, rows, side): channels first
        z = self.detokenizer.decode_latents(z)  # (1, 3, f * rows, f * side)
        return (z.permute(0, 2, 3, 1).clip(0.0, 1.0) * 255)[0]  # (f * rows, f * side, 3)


def example_inputs(model: MinDalle) -> dict[str, dict[str, torch.Tensor]]:
    """Inputs of the right shapes and dtypes for each graph (what the exporter traces with)."""
    config = model.config
    L, E, S, T = config.layer_count, config.embed_count, config.image_token_count, config.text_token_count
    side = config.image_token_side
    text_tokens = model.text_tokens("a red circle")  # (2, 64)
    return {
        "encoder.onnx": {"text_tokens": text_tokens},
        "decoder_step.onnx": {
            "prev_tokens": torch.full((1, 1), config.image_start_token),
            "token_index": torch.zeros(1, dtype=torch.long),
            "attention_mask": text_tokens.ne(PAD_ID)[:, None, None, :],  # (2, 1, 1, 64)
            "encoder_keys_values": torch.zeros(L, 2, 2, T, E),
            "attention_state": torch.zeros(L, 4, S, E),
        },
        "detokenizer.onnx": {"image_tokens": torch.zeros(side - 1, side, dtype=torch.long)},
    }


OUTPUT_NAMES = {
    "encoder.onnx": ["encoder_state", "encoder_keys_values"],
    "decoder_step.onnx": ["logits", "new_keys_values"],
    "detokenizer.onnx": ["pixels"],
}


def web_modules(model: MinDalle) -> dict[str, nn.Module]:
    return {
        "encoder.onnx": WebEncoder(model.encoder, model.decoder).eval(),
        "decoder_step.onnx": WebDecoderStep(model.decoder).eval(),
        "detokenizer.onnx": WebDetokenizer(model.detokenizer).eval(),
    }


# ---- writing the graphs ---------------------------------------------------------------------
def finish_graph(graph_path: Path) -> None:
    """Make the exported file small and the same on every machine.

    Every float32 weight whose values float16 holds exactly is stored as float16 and cast back
    to float32 by a Cast node (onnxruntime folds it when it loads the graph): the same numbers in
    half the bytes; weights float16 cannot hold exactly stay float32. The exporter's notes on each
    node (the Python stack that made it, with this machine's paths) are dropped."""
    import onnx
    from onnx import helper, numpy_helper

    proto = onnx.load(str(graph_path))
    graph, casts = proto.graph, []
    for node in graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    for initializer in graph.initializer:
        if initializer.data_type != onnx.TensorProto.FLOAT:
            continue
        values = numpy_helper.to_array(initializer)
        with np.errstate(over="ignore"):  # a value beyond float16's range is not exact: it stays float32
            half = values.astype(np.float16)
        if values.size < 16 or not np.array_equal(half.astype(np.float32), values):
            continue
        name = initializer.name
        initializer.CopyFrom(numpy_helper.from_array(half, f"{name}.float16"))
        casts.append(helper.make_node("Cast", [f"{name}.float16"], [name], to=onnx.TensorProto.FLOAT))
    for node in reversed(casts):
        graph.node.insert(0, node)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(graph_path))


def export_graph(module: nn.Module, inputs: dict[str, torch.Tensor], output_names: list[str], path: Path,
                 dynamic_shapes: dict[str, Any] | None = None) -> None:
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # its notes on optional packages (torchvision) it does not need
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's notes on its own internals
            torch.onnx.export(
                module, tuple(inputs.values()), str(path), input_names=list(inputs), output_names=output_names,
                dynamic_shapes=dynamic_shapes, opset_version=OPSET, dynamo=True, external_data=False, verbose=False,
            )
    finally:
        exporter_log.setLevel(level)
    finish_graph(path)


# ---- the tokenizer's files --------------------------------------------------------------------
def caption_words(count: int | None = None) -> list[str]:
    """The words of the course model's training captions (`count` of them, default all): words the
    model has seen. Other words still tokenize (into pieces), but the model never learned them."""
    from .data import make_scene
    from .train import TrainSettings

    settings = TrainSettings()
    count = settings.example_count if count is None else count
    words = set()
    for index in range(count):
        caption = make_scene(settings.data_seed, index, wrong_colour_share=settings.wrong_colour_share).caption
        words.update(caption.split())
    return sorted(words)


def emoji_table() -> dict[str, Any]:
    """What `emoji.demojize` reads: every emoji it knows -> the name it writes (English, no
    delimiters; "" for the few without an English name, which demojize keeps and the ASCII step
    then drops), and which emoji are components (skin tones, hair), which it joins differently."""
    from emoji import EMOJI_DATA, STATUS

    names = {emoji: data["en"][1:-1] if "en" in data else "" for emoji, data in EMOJI_DATA.items()}
    components = [emoji for emoji, data in EMOJI_DATA.items() if data["status"] == STATUS["component"]]
    return {"names": names, "components": components}


def tokenizer_file(model: MinDalle, words: list[str]) -> dict[str, Any]:
    tokenizer = model.tokenizer
    merges = [f"{a} {b}" for (a, b), _ in sorted(tokenizer.rank_from_pair.items(), key=lambda item: item[1])]
    specials = {name: tokenizer.token_from_subword[name] for name in (BOS, PAD, EOS, UNK)}
    return {"vocab": tokenizer.token_from_subword, "merges": merges, "special_tokens": specials,
            "text_token_count": model.config.text_token_count, "caption_words": words}


# ---- the manifest -----------------------------------------------------------------------------
def file_record(path: Path) -> dict[str, Any]:
    return {"bytes": path.stat().st_size, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def graph_signature(path: Path) -> dict[str, Any]:
    """Names, element types and shapes (a name for a dynamic size) of a graph's inputs and outputs."""
    import onnx

    graph = onnx.load(str(path)).graph

    def describe(values) -> dict[str, Any]:
        out = {}
        for value in values:
            tensor = value.type.tensor_type
            shape = [d.dim_param or d.dim_value for d in tensor.shape.dim]
            out[value.name] = {"type": onnx.TensorProto.DataType.Name(tensor.elem_type).lower(), "shape": shape}
        return out

    return {"inputs": describe(graph.input), "outputs": describe(graph.output)}


def check_out(out: str | Path) -> Path:
    """The folder to write; refused before any work if it is a file or its parent is missing."""
    if not isinstance(out, (str, Path)):
        raise TypeError(f"out must be a folder path, got {type(out).__name__}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is not a folder; give --out a folder")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"the parent folder of {out}, {out.parent}, does not exist")
    return out


def export_web(out: str | Path, models_root: str | Path | None = None, words: list[str] | None = None,
               is_verbose: bool = False) -> dict[str, Any]:
    """Write the course model's graphs, tokenizer files and manifest.json into `out`; return the manifest.

    models_root: a course-model folder (config.json, vocab.json, merges.txt, *.pt), default the
    shipped one. Files are written into a temporary folder beside `out` and moved in only when all
    are written: an interrupted export leaves `out` as it was."""
    out = check_out(out)
    root = Path(models_root) if models_root is not None else TINY_ROOT
    model = MinDalle(root, model="tiny", is_verbose=False)
    start = time.monotonic()
    inputs = example_inputs(model)
    modules = web_modules(model)
    rows = torch.export.Dim("rows", min=1, max=model.config.image_token_side)
    dynamic = {"detokenizer.onnx": {"image_tokens": {0: rows}}}
    with tempfile.TemporaryDirectory(prefix=f".{out.name}-", dir=out.parent) as temporary:
        staging = Path(temporary)
        for name in GRAPHS:
            if is_verbose:
                print(f"exporting {name}")
            export_graph(modules[name], inputs[name], OUTPUT_NAMES[name], staging / name, dynamic.get(name))
        words = caption_words() if words is None else words
        with open(staging / "tokenizer.json", "w", encoding="utf-8") as f:
            json.dump(tokenizer_file(model, words), f, ensure_ascii=False, separators=(",", ":"))
        with open(staging / "emoji.json", "w", encoding="utf-8") as f:
            json.dump(emoji_table(), f, ensure_ascii=False, separators=(",", ":"))
        sources = {name: file_record(root / name) for name in ("config.json", "encoder.pt", "decoder.pt", "detoker.pt",
                                                               "vocab.json", "merges.txt")}
        manifest = {
            "format": FORMAT,
            "model": {"dalle": model.config.to_dict(), "vqgan": model.vqgan_config.to_dict(),
                      "downsample_factor": model.vqgan_config.downsample_factor,
                      "parameters": {name: sum(p.numel() for p in module.parameters()) for name, module in
                                     (("encoder", model.encoder), ("decoder", model.decoder),
                                      ("detokenizer", model.detokenizer))}},
            "opset": OPSET,
            "torch_version": torch.__version__,
            "graphs": {name: graph_signature(staging / name) for name in GRAPHS},
            "files": {name: file_record(staging / name) for name in FILES},
            "sources": sources,
        }
        with open(staging / "manifest.json", "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1)
        out.mkdir(exist_ok=True)
        for name in (*FILES, "manifest.json"):  # manifest last: it describes the files beside it
            shutil.move(str(staging / name), out / name)
    if is_verbose:
        total = sum(record["bytes"] for record in manifest["files"].values())
        print(f"wrote {len(FILES) + 1} files ({total / 2**20:.1f} MiB) to {out} in {time.monotonic() - start:.0f} s")
    return manifest


def add_cli(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `export-web` on a `python -m dalle_core` sub-command parser."""
    parser = subparsers.add_parser(
        "export-web",
        help="write the course model as ONNX graphs for the browser explorer (explorer/, docs/explorer.md)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", required=True, help="folder to write (created if missing)")
    parser.add_argument("--models-root", default=None, help="a course-model folder (default: the shipped one)")
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(func=run_export_web)
    return parser


def run_export_web(args: argparse.Namespace) -> int:
    export_web(args.out, args.models_root, is_verbose=not args.quiet)
    return 0
