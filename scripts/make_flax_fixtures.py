"""Make the small Flax checkpoints that tests/test_convert.py converts (run once; outputs committed).

Needs jax, flax and msgpack, which the package and its tests do not: run it in a separate
environment, from the repository root:

    python3 -m venv /tmp/venv-flax && /tmp/venv-flax/bin/pip install "jax[cpu]" flax msgpack numpy
    /tmp/venv-flax/bin/python scripts/make_flax_fixtures.py

The committed fixtures were made with jax 0.10.2, flax 0.12.8, msgpack 1.2.4, numpy 2.4.6
(Python 3.11, CPU), in about 3 minutes on a 2-core machine.

The PyPI package `dalle-mini` (0.1.5) pins jax 0.3.25, flax 0.6.3 and transformers 4.25.1
and imports wandb, so it does not install on a current Python. The modules below instead
rebuild dalle-mini's model with flax.linen, following src/dalle_mini/model/modeling.py
(dalle-mini 0.1.5) line by line for the configuration DALL·E Mini and Mega were trained
with (ln_positions="normformer", use_glu, no biases, scanned layers, gelu), and the VQGAN
following patil-suraj/vqgan-jax (vqgan_jax/modeling_flax_vqgan.py at 10ef240). Module
classes, creation order and names are theirs, so Flax names the parameters exactly as in
the published files (checked below against the names min-dalle's own conversion reads).

Writes tests/fixtures/flax/:
  dalle/{flax_model.msgpack, config.json, vocab.json, merges.txt}   a tiny DalleBart
  vqgan/{flax_model.msgpack, config.json}                            a tiny VQGAN
  expected.npz     inputs and the Flax outputs: text_tokens, encoder_state,
                   image_tokens, logits (teacher forcing), vqgan_tokens, vqgan_pixels
  layouts.json     parameter names and shapes of the full-size Mini, Mega and VQGAN
                   (jax.eval_shape: no memory), for the key-and-shape tests
"""
from __future__ import annotations

import json
import shutil
from functools import partial
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization
from flax.traverse_util import flatten_dict

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "flax"

# ------------------------------------------------------------------------------- DalleBart

# config.json keys as dalle-mini's DalleBartConfig writes them (the architecture switches
# at the values of the published Mini / Mega)
BART_SWITCHES = dict(
    activation_function="gelu", scale_embedding=False, use_bias=False, ln_type="layernorm",
    ln_positions="normformer", use_head_scale=False, use_cosine_attention=False,
    use_absolute_position_embeddings=True, use_swin_position_embeddings=False, use_deepnet_scaling=False,
    use_subln_init=False, use_glu=True, use_alibi=False, sinkhorn_iters=1, use_final_ln_encoder=True,
    use_final_ln_decoder=True, force_ln_scale=False, tie_word_embeddings=False, use_scan=True,
    model_type="dallebart", init_std=0.02,
)
TINY_BART = dict(
    d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
    encoder_ffn_dim=48, decoder_ffn_dim=48, encoder_vocab_size=271, image_vocab_size=64,
    max_text_length=64, image_length=256, **BART_SWITCHES,
)
MINI_BART = dict(
    d_model=1024, encoder_layers=12, decoder_layers=12, encoder_attention_heads=16, decoder_attention_heads=16,
    encoder_ffn_dim=2730, decoder_ffn_dim=2730, encoder_vocab_size=50264, image_vocab_size=16384,
    max_text_length=64, image_length=256, **BART_SWITCHES,
)
MEGA_BART = dict(
    MINI_BART, d_model=2048, encoder_layers=24, decoder_layers=24, encoder_attention_heads=32,
    decoder_attention_heads=32, encoder_ffn_dim=4096, decoder_ffn_dim=4096, encoder_vocab_size=50272,
    image_vocab_size=16415,
)

# transformers' ACT2FN["gelu"] for Flax is the exact (erf) gelu
gelu = partial(nn.gelu, approximate=False)


def norm(use_scale: bool = True) -> nn.LayerNorm:
    """modeling.py's norm("layernorm", epsilon=1e-05, use_scale=...)."""
    return nn.LayerNorm(epsilon=1e-05, use_scale=use_scale)


class FlaxBartAttention(nn.Module):
    """transformers' FlaxBartAttention as dalle-mini configures it: no bias, mask -> -inf bias."""

    config: dict
    embed_dim: int
    num_heads: int
    causal: bool = False

    def setup(self) -> None:
        dense = partial(nn.Dense, self.embed_dim, use_bias=False,
                        kernel_init=jax.nn.initializers.normal(self.config["init_std"]))
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = dense(), dense(), dense(), dense()

    def __call__(self, hidden_states, key_value_states=None, attention_mask=None):
        kv = hidden_states if key_value_states is None else key_value_states
        heads = lambda x: x.reshape(x.shape[:2] + (self.num_heads, self.embed_dim // self.num_heads))  # noqa: E731
        query, key, value = heads(self.q_proj(hidden_states)), heads(self.k_proj(kv)), heads(self.v_proj(kv))
        mask = jnp.expand_dims(attention_mask, axis=(-3, -2))  # (B, 1, 1, K)
        if self.causal:
            q_len, k_len = query.shape[1], key.shape[1]
            mask = nn.combine_masks(mask, nn.make_causal_mask(jnp.ones((1, k_len)))[:, :, :q_len, :k_len])
        bias = jax.lax.select(mask > 0, jnp.zeros(mask.shape), jnp.full(mask.shape, -jnp.inf))
        weights = jnp.einsum("...qhd,...khd->...hqk", query, key) / jnp.sqrt(query.shape[-1])
        weights = jax.nn.softmax(weights + bias)
        output = jnp.einsum("...hqk,...khd->...qhd", weights, value)
        return self.out_proj(output.reshape(output.shape[:2] + (self.embed_dim,)))


class GLU(nn.Module):
    config: dict
    ffn_dim: int
    embed_dim: int

    @nn.compact
    def __call__(self, x):
        x = norm(use_scale=self.config["force_ln_scale"])(x)
        init = jax.nn.initializers.normal(self.config["init_std"])
        w = gelu(nn.Dense(self.ffn_dim, use_bias=False, kernel_init=init)(x))
        v = nn.Dense(self.ffn_dim, use_bias=False, kernel_init=init)(x)
        x = norm(use_scale=self.config["force_ln_scale"])(w * v)
        return nn.Dense(self.embed_dim, use_bias=False, kernel_init=init)(x)


class FlaxBartEncoderLayer(nn.Module):
    config: dict

    @nn.compact
    def __call__(self, hidden_states, attention_mask):
        hidden_states = hidden_states[0]  # use_scan: the carry is a tuple
        c = self.config
        residual = hidden_states
        hidden_states = norm(use_scale=c["force_ln_scale"])(hidden_states)
        hidden_states = FlaxBartAttention(c, c["d_model"], c["encoder_attention_heads"])(
            hidden_states, attention_mask=attention_mask)
        hidden_states = residual + norm()(hidden_states)
        residual = hidden_states
        hidden_states = residual + GLU(c, c["encoder_ffn_dim"], c["d_model"])(hidden_states)
        return (hidden_states,), None


class FlaxBartDecoderLayer(nn.Module):
    config: dict

    @nn.compact
    def __call__(self, hidden_states, attention_mask, encoder_hidden_states, encoder_attention_mask):
        hidden_states = hidden_states[0]
        c = self.config
        residual = hidden_states
        hidden_states = norm(use_scale=c["force_ln_scale"])(hidden_states)
        hidden_states = FlaxBartAttention(c, c["d_model"], c["decoder_attention_heads"], causal=True)(
            hidden_states, attention_mask=attention_mask)
        hidden_states = residual + norm()(hidden_states)
        residual = hidden_states
        hidden_states = norm(use_scale=c["force_ln_scale"])(hidden_states)
        hidden_states = FlaxBartAttention(c, c["d_model"], c["decoder_attention_heads"])(
            hidden_states, key_value_states=encoder_hidden_states, attention_mask=encoder_attention_mask)
        hidden_states = residual + norm()(hidden_states)
        residual = hidden_states
        hidden_states = residual + GLU(c, c["decoder_ffn_dim"], c["d_model"])(hidden_states)
        return (hidden_states,), None


class FlaxBartEncoderLayerCollection(nn.Module):
    config: dict

    @nn.compact
    def __call__(self, hidden_states, attention_mask):
        (hidden_states,), _ = nn.scan(
            FlaxBartEncoderLayer, variable_axes={"params": 0}, split_rngs={"params": True},
            in_axes=(nn.broadcast,), length=self.config["encoder_layers"],
        )(self.config, name="FlaxBartEncoderLayers")((hidden_states,), attention_mask)
        return hidden_states


class FlaxBartDecoderLayerCollection(nn.Module):
    config: dict

    @nn.compact
    def __call__(self, hidden_states, attention_mask, encoder_hidden_states, encoder_attention_mask):
        (hidden_states,), _ = nn.scan(
            FlaxBartDecoderLayer, variable_axes={"params": 0}, split_rngs={"params": True},
            in_axes=(nn.broadcast, nn.broadcast, nn.broadcast), length=self.config["decoder_layers"],
        )(self.config, name="FlaxBartDecoderLayers")(
            (hidden_states,), attention_mask, encoder_hidden_states, encoder_attention_mask)
        return hidden_states


class FlaxBartEncoder(nn.Module):
    config: dict
    embed_tokens: nn.Embed

    def setup(self):
        c = self.config
        self.embed_positions = nn.Embed(c["max_text_length"], c["d_model"],
                                        embedding_init=jax.nn.initializers.normal(c["init_std"]))
        self.layers = FlaxBartEncoderLayerCollection(c)
        self.layernorm_embedding = norm()
        self.final_ln = norm(use_scale=c["force_ln_scale"])

    def __call__(self, input_ids, attention_mask):
        positions = jnp.arange(input_ids.shape[-1])[None]
        hidden_states = self.layernorm_embedding(self.embed_tokens(input_ids) + self.embed_positions(positions))
        return self.final_ln(self.layers(hidden_states, attention_mask))


class FlaxBartDecoder(nn.Module):
    config: dict
    embed_tokens: nn.Embed

    def setup(self):
        c = self.config
        self.embed_positions = nn.Embed(c["image_length"], c["d_model"],
                                        embedding_init=jax.nn.initializers.normal(c["init_std"]))
        self.layers = FlaxBartDecoderLayerCollection(c)
        self.layernorm_embedding = norm()
        self.final_ln = norm(use_scale=c["force_ln_scale"])

    def __call__(self, input_ids, attention_mask, encoder_hidden_states, encoder_attention_mask):
        positions = jnp.arange(input_ids.shape[-1])[None]
        hidden_states = self.layernorm_embedding(self.embed_tokens(input_ids) + self.embed_positions(positions))
        hidden_states = self.layers(hidden_states, attention_mask, encoder_hidden_states, encoder_attention_mask)
        return self.final_ln(hidden_states)


class FlaxBartModule(nn.Module):
    config: dict

    def setup(self):
        c = self.config
        init = jax.nn.initializers.normal(c["init_std"])
        # created here, adopted by the encoder / decoder: their parameters live under
        # model/encoder/embed_tokens and model/decoder/embed_tokens
        encoder_embed_tokens = nn.Embed(c["encoder_vocab_size"], c["d_model"], embedding_init=init)
        decoder_embed_tokens = nn.Embed(c["image_vocab_size"] + 1, c["d_model"], embedding_init=init)
        self.encoder = FlaxBartEncoder(c, embed_tokens=encoder_embed_tokens)
        self.decoder = FlaxBartDecoder(c, embed_tokens=decoder_embed_tokens)


class DalleBartModule(nn.Module):
    """FlaxBartForConditionalGenerationModule: `model` + `lm_head` (no bias)."""

    config: dict

    def setup(self):
        self.model = FlaxBartModule(self.config)
        self.lm_head = nn.Dense(self.config["image_vocab_size"] + 1, use_bias=False,
                                kernel_init=jax.nn.initializers.normal(self.config["init_std"]))

    def encode(self, input_ids, attention_mask):
        return self.model.encoder(input_ids, attention_mask)

    def decode(self, decoder_input_ids, encoder_hidden_states, encoder_attention_mask):
        mask = jnp.ones(decoder_input_ids.shape, dtype="i4")
        hidden_states = self.model.decoder(decoder_input_ids, mask, encoder_hidden_states, encoder_attention_mask)
        return self.lm_head(hidden_states)

    def __call__(self, input_ids, attention_mask, decoder_input_ids):
        encoder_hidden_states = self.encode(input_ids, attention_mask)
        return self.decode(decoder_input_ids, encoder_hidden_states, attention_mask)


# ------------------------------------------------------------------------------- VQGAN

TINY_VQGAN = dict(ch=32, out_ch=3, in_channels=3, num_res_blocks=0, resolution=16, z_channels=32,
                  ch_mult=[2, 1], attn_resolutions=[8], n_embed=64, embed_dim=32, dropout=0.0,
                  double_z=False, resamp_with_conv=True, give_pre_end=False)
FULL_VQGAN = dict(ch=128, out_ch=3, in_channels=3, num_res_blocks=2, resolution=256, z_channels=256,
                  ch_mult=[1, 1, 2, 2, 4], attn_resolutions=[16], n_embed=16384, embed_dim=256, dropout=0.0,
                  double_z=False, resamp_with_conv=True, give_pre_end=False)

conv3 = partial(nn.Conv, kernel_size=(3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))
conv1 = partial(nn.Conv, kernel_size=(1, 1), strides=(1, 1), padding="VALID")


class Upsample(nn.Module):
    in_channels: int

    def setup(self):
        self.conv = conv3(self.in_channels)

    def __call__(self, h):
        b, height, width, c = h.shape
        return self.conv(jax.image.resize(h, (b, height * 2, width * 2, c), method="nearest"))


class Downsample(nn.Module):
    in_channels: int

    def setup(self):
        self.conv = nn.Conv(self.in_channels, kernel_size=(3, 3), strides=(2, 2), padding="VALID")

    def __call__(self, h):
        return self.conv(jnp.pad(h, ((0, 0), (0, 1), (0, 1), (0, 0))))


class ResnetBlock(nn.Module):
    in_channels: int
    out_channels: int

    def setup(self):
        self.norm1 = nn.GroupNorm(num_groups=32, epsilon=1e-6)
        self.conv1 = conv3(self.out_channels)
        self.norm2 = nn.GroupNorm(num_groups=32, epsilon=1e-6)
        self.conv2 = conv3(self.out_channels)
        if self.in_channels != self.out_channels:
            self.nin_shortcut = conv1(self.out_channels)

    def __call__(self, x):
        h = self.conv1(nn.swish(self.norm1(x)))
        h = self.conv2(nn.swish(self.norm2(h)))
        if self.in_channels != self.out_channels:
            x = self.nin_shortcut(x)
        return h + x


class AttnBlock(nn.Module):
    in_channels: int

    def setup(self):
        self.norm = nn.GroupNorm(num_groups=32, epsilon=1e-6)
        self.q, self.k, self.v = conv1(self.in_channels), conv1(self.in_channels), conv1(self.in_channels)
        self.proj_out = conv1(self.in_channels)

    def __call__(self, x):
        h = self.norm(x)
        b, height, width, c = h.shape
        q = self.q(h).reshape((b, height * width, c))
        k = self.k(h).reshape((b, height * width, c))
        v = self.v(h).reshape((b, height * width, c))
        weights = nn.softmax(jnp.einsum("...qc,...kc->...qk", q, k) * (int(c) ** -0.5), axis=2)
        h = jnp.einsum("...kc,...qk->...qc", v, weights).reshape((b, height, width, c))
        return self.proj_out(h) + x


class UpsamplingBlock(nn.Module):
    config: dict
    curr_res: int
    block_idx: int

    def setup(self):
        c = self.config
        count = len(c["ch_mult"])
        block_in = c["ch"] * c["ch_mult"][-1 if self.block_idx == count - 1 else self.block_idx + 1]
        block_out = c["ch"] * c["ch_mult"][self.block_idx]
        blocks, attns = [], []
        for _ in range(c["num_res_blocks"] + 1):
            blocks.append(ResnetBlock(block_in, block_out))
            block_in = block_out
            if self.curr_res in c["attn_resolutions"]:
                attns.append(AttnBlock(block_in))
        self.block, self.attn = blocks, attns
        self.upsample = Upsample(block_in) if self.block_idx != 0 else None

    def __call__(self, h):
        for i, block in enumerate(self.block):
            h = block(h)
            if self.attn:
                h = self.attn[i](h)
        return self.upsample(h) if self.upsample is not None else h


class DownsamplingBlock(nn.Module):
    config: dict
    curr_res: int
    block_idx: int

    def setup(self):
        c = self.config
        block_in = c["ch"] * ((1,) + tuple(c["ch_mult"]))[self.block_idx]
        block_out = c["ch"] * c["ch_mult"][self.block_idx]
        blocks, attns = [], []
        for _ in range(c["num_res_blocks"]):
            blocks.append(ResnetBlock(block_in, block_out))
            block_in = block_out
            if self.curr_res in c["attn_resolutions"]:
                attns.append(AttnBlock(block_in))
        self.block, self.attn = blocks, attns
        self.downsample = Downsample(block_in) if self.block_idx != len(c["ch_mult"]) - 1 else None

    def __call__(self, h):
        for i, block in enumerate(self.block):
            h = block(h)
            if self.attn:
                h = self.attn[i](h)
        return self.downsample(h) if self.downsample is not None else h


class MidBlock(nn.Module):
    in_channels: int

    def setup(self):
        self.block_1 = ResnetBlock(self.in_channels, self.in_channels)
        self.attn_1 = AttnBlock(self.in_channels)
        self.block_2 = ResnetBlock(self.in_channels, self.in_channels)

    def __call__(self, h):
        return self.block_2(self.attn_1(self.block_1(h)))


class Encoder(nn.Module):
    config: dict

    def setup(self):
        c = self.config
        self.conv_in = conv3(c["ch"])
        curr_res, blocks = c["resolution"], []
        for i in range(len(c["ch_mult"])):
            blocks.append(DownsamplingBlock(c, curr_res, block_idx=i))
            if i != len(c["ch_mult"]) - 1:
                curr_res //= 2
        self.down = blocks
        self.mid = MidBlock(c["ch"] * c["ch_mult"][-1])
        self.norm_out = nn.GroupNorm(num_groups=32, epsilon=1e-6)
        self.conv_out = conv3(2 * c["z_channels"] if c["double_z"] else c["z_channels"])

    def __call__(self, x):
        h = self.conv_in(x)
        for block in self.down:
            h = block(h)
        return self.conv_out(nn.swish(self.norm_out(self.mid(h))))


class Decoder(nn.Module):
    config: dict

    def setup(self):
        c = self.config
        count = len(c["ch_mult"])
        block_in = c["ch"] * c["ch_mult"][count - 1]
        curr_res = c["resolution"] // 2 ** (count - 1)
        self.conv_in = conv3(block_in)
        self.mid = MidBlock(block_in)
        blocks = []
        for i in reversed(range(count)):
            blocks.append(UpsamplingBlock(c, curr_res, block_idx=i))
            if i != 0:
                curr_res *= 2
        self.up = list(reversed(blocks))
        self.norm_out = nn.GroupNorm(num_groups=32, epsilon=1e-6)
        self.conv_out = conv3(c["out_ch"])

    def __call__(self, h):
        h = self.mid(self.conv_in(h))
        for block in reversed(self.up):
            h = block(h)
        return self.conv_out(nn.swish(self.norm_out(h)))


class VectorQuantizer(nn.Module):
    config: dict

    def setup(self):
        self.embedding = nn.Embed(self.config["n_embed"], self.config["embed_dim"])

    def __call__(self, h):
        flat = h.reshape((-1, self.config["embed_dim"]))
        self.embedding(jnp.ones((1, 1), dtype="i4"))
        table = self.variables["params"]["embedding"]["embedding"]
        distance = (flat**2).sum(1, keepdims=True) + (table**2).sum(1) - 2 * flat @ table.T
        indices = jnp.argmin(distance, axis=1)
        return self.embedding(indices).reshape(h.shape), indices.reshape(h.shape[0], -1)

    def get_codebook_entry(self, indices):
        b, n = indices.shape
        side = int(np.sqrt(n))
        return self.embedding(indices).reshape(b, side, side, -1)


class VQModule(nn.Module):
    config: dict

    def setup(self):
        c = self.config
        self.encoder = Encoder(c)
        self.decoder = Decoder(c)
        self.quantize = VectorQuantizer(c)
        self.quant_conv = conv1(c["embed_dim"])
        self.post_quant_conv = conv1(c["z_channels"])

    def decode_code(self, indices):
        return self.decoder(self.post_quant_conv(self.quantize.get_codebook_entry(indices)))

    def __call__(self, pixel_values):
        quant, indices = self.quantize(self.quant_conv(self.encoder(pixel_values)))
        return self.decoder(self.post_quant_conv(quant)), indices


# ------------------------------------------------------------------------------- checks and outputs


def flat_shapes(params: Any) -> dict[str, list[int]]:
    return {"/".join(k): list(v.shape) for k, v in sorted(flatten_dict(params).items())}


def expected_bart_names(layer_count_free: bool = True) -> set[str]:
    """The names min-dalle's conversion (kuprel/min-dalle min_dalle/load_params.py) reads."""
    names = {"lm_head/kernel"}
    for codec in ("encoder", "decoder"):
        top = f"model/{codec}"
        names |= {f"{top}/embed_tokens/embedding", f"{top}/embed_positions/embedding",
                  f"{top}/layernorm_embedding/scale", f"{top}/layernorm_embedding/bias", f"{top}/final_ln/bias"}
        layer = f"{top}/layers/FlaxBart{codec.title()}Layers"
        norms = ["LayerNorm_0/bias", "LayerNorm_1/scale", "LayerNorm_1/bias", "GLU_0/LayerNorm_0/bias",
                 "GLU_0/LayerNorm_1/bias"]
        attns = ["FlaxBartAttention_0"]
        if codec == "decoder":
            norms += ["LayerNorm_2/bias", "LayerNorm_3/scale", "LayerNorm_3/bias"]
            attns += ["FlaxBartAttention_1"]
        names |= {f"{layer}/{n}" for n in norms}
        names |= {f"{layer}/{a}/{p}/kernel" for a in attns for p in ("q_proj", "k_proj", "v_proj", "out_proj")}
        names |= {f"{layer}/GLU_0/Dense_{i}/kernel" for i in range(3)}
    return names


def bart_inputs(c: dict) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    text_tokens = np.ones((2, c["max_text_length"]), dtype=np.int32)  # pad id 1
    text_tokens[0, :2] = [0, 2]  # the empty prompt: <s> </s>
    prompt = rng.integers(4, c["encoder_vocab_size"], size=9)
    text_tokens[1, :11] = [0, *prompt, 2]
    image_tokens = rng.integers(0, c["image_vocab_size"], size=(1, 32)).astype(np.int32)
    image_tokens[0, 0] = c["image_vocab_size"] - 1  # a start token, as min-dalle uses 2**14 - 1
    return text_tokens, np.repeat(image_tokens, 2, axis=0)  # the same image row under both prompts


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    (OUT / "dalle").mkdir(parents=True)
    (OUT / "vqgan").mkdir(parents=True)

    # --- DalleBart: parameters stored as float16, as the published Mega is
    bart = DalleBartModule(TINY_BART)
    text_tokens, image_tokens = bart_inputs(TINY_BART)
    params = bart.init(jax.random.PRNGKey(1), text_tokens, text_tokens != 1, image_tokens)["params"]
    # larger than the 0.02 init, so differences show; LayerNorm scales / biases off their defaults
    keys = iter(jax.random.split(jax.random.PRNGKey(2), 200))
    params = jax.tree_util.tree_map(
        lambda p: (p + 0.3 * jax.random.normal(next(keys), p.shape)).astype(jnp.float16), params)
    names = set(flat_shapes(params))
    assert names == expected_bart_names(), sorted(names ^ expected_bart_names())
    (OUT / "dalle" / "flax_model.msgpack").write_bytes(serialization.to_bytes(params))
    f32 = jax.tree_util.tree_map(lambda p: p.astype(jnp.float32), params)
    mask = (text_tokens != 1).astype("i4")
    encoder_state = bart.apply({"params": f32}, text_tokens, mask, method=DalleBartModule.encode)
    logits = bart.apply({"params": f32}, image_tokens, encoder_state, mask, method=DalleBartModule.decode)
    (OUT / "dalle" / "config.json").write_text(json.dumps(TINY_BART, indent=2) + "\n")
    for name in ("vocab.json", "merges.txt"):  # the course model's tokenizer: 271 ids
        shutil.copyfile(ROOT / "dalle_core" / "assets" / "tiny" / name, OUT / "dalle" / name)

    # --- VQGAN, stored as float16 to keep the fixture small (the reader handles any float dtype)
    vq = VQModule(TINY_VQGAN)
    vq_params = vq.init(jax.random.PRNGKey(3), jnp.zeros((1, 16, 16, 3)))["params"]
    keys = iter(jax.random.split(jax.random.PRNGKey(4), 400))
    vq_params = jax.tree_util.tree_map(
        lambda p: (p + 0.1 * jax.random.normal(next(keys), p.shape)).astype(jnp.float16), vq_params)
    # the image -> token half is never converted (the detokenizer does not use it): zeros
    # keep the file's layout complete while git stores them in almost no space
    for half in ("encoder", "quant_conv"):
        vq_params[half] = jax.tree_util.tree_map(jnp.zeros_like, vq_params[half])
    (OUT / "vqgan" / "flax_model.msgpack").write_bytes(serialization.to_bytes(vq_params))
    (OUT / "vqgan" / "config.json").write_text(json.dumps(TINY_VQGAN, indent=2) + "\n")
    vqgan_tokens = np.random.default_rng(5).integers(0, TINY_VQGAN["n_embed"], size=(2, 16)).astype(np.int32)
    vq_f32 = jax.tree_util.tree_map(lambda p: p.astype(jnp.float32), vq_params)
    pixels = vq.apply({"params": vq_f32}, vqgan_tokens, method=VQModule.decode_code)  # (2, 8, 8, 3)

    np.savez_compressed(
        OUT / "expected.npz", text_tokens=text_tokens, encoder_state=np.asarray(encoder_state),
        image_tokens=image_tokens, logits=np.asarray(logits), vqgan_tokens=vqgan_tokens,
        vqgan_pixels=np.asarray(pixels),
    )

    # --- full-size layouts, shapes only
    layouts = {}
    for name, config in (("mini", MINI_BART), ("mega", MEGA_BART)):
        t, i = bart_inputs(dict(config))
        def init(config=config, t=t, i=i):
            return DalleBartModule(config).init(jax.random.PRNGKey(0), t, t != 1, i)

        shapes = jax.eval_shape(init)
        layouts[name] = flat_shapes(shapes["params"])
        assert set(layouts[name]) == expected_bart_names(), name
    shapes = jax.eval_shape(lambda: VQModule(FULL_VQGAN).init(jax.random.PRNGKey(0), jnp.zeros((1, 256, 256, 3))))
    layouts["vqgan"] = flat_shapes(shapes["params"])
    layouts["configs"] = {"mini": MINI_BART, "mega": MEGA_BART, "vqgan": FULL_VQGAN}
    (OUT / "layouts.json").write_text(json.dumps(layouts, indent=0, sort_keys=True) + "\n")

    for path in sorted(OUT.rglob("*")):
        if path.is_file():
            print(f"{path.relative_to(ROOT)}: {path.stat().st_size} bytes")
    print("encoder_state", encoder_state.shape, "logits", logits.shape, "pixels", pixels.shape)


if __name__ == "__main__":
    main()
