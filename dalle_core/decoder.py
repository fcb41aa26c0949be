"""DalleBartDecoder: image tokens one at a time, with the key/value cache `attention_state`.

Each step feeds the previous token of every image and returns logits for the next.
Self-attention needs the keys and values of *all* earlier tokens; recomputing them would
make step i cost O(i) layer passes, so they are cached:

    attention_state  (layer_count, 4n, image_token_count, embed_count)

where, per layer, rows [:2n] hold keys and rows [2n:] values, and 2n is the batch
(n unconditional + n conditional rows). Step i writes slot i and attends to slots 0..i:
it reads just those slots; inside `decoder.fixed_length()` (a CUDA graph, the meta-device
shape trace) it reads all of them under the mask `slot <= i`, as min-dalle does, so that
every step has the same shapes.

Cross-attention reads `encoder_state`, which never changes during a generation, so its
keys and values are computed once (`encoder_keys_values`) instead of at every step as
min-dalle does: the same numbers, 2 x layer_count fewer matrix products per token.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from .attention import GLU, Attention
from .config import DalleConfig
from .sampling import sample_next_tokens
from .trace import record

EncoderKeysValues = list[tuple[torch.Tensor, torch.Tensor]]


def causal_mask(token_index: torch.Tensor, key_index: torch.Tensor) -> torch.Tensor:
    """True where the query at position token_index[q] may see the key at key_index[k]."""
    return key_index[None, :] <= token_index[:, None]  # (Q, K): a token sees itself and the past


class DecoderLayer(nn.Module):
    def __init__(self, config: DalleConfig):
        super().__init__()
        E = config.embed_count
        self.pre_self_attn_layer_norm = nn.LayerNorm(E)
        self.self_attn = Attention(config.attention_head_count, E, "decoder self-attention")
        self.self_attn_layer_norm = nn.LayerNorm(E)
        self.pre_encoder_attn_layer_norm = nn.LayerNorm(E)
        self.encoder_attn = Attention(config.attention_head_count, E, "decoder cross-attention")
        self.encoder_attn_layer_norm = nn.LayerNorm(E)
        self.glu = GLU(E, config.glu_embed_count)
        self.reads_all_slots = False  # set by DalleBartDecoder.fixed_length()

    def encoder_keys_values(self, encoder_state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder_attn.k_proj(encoder_state), self.encoder_attn.v_proj(encoder_state)

    def self_attention(
        self, x: torch.Tensor, token_index: torch.Tensor, layer_state: torch.Tensor | None
    ) -> torch.Tensor:
        """Attend to earlier tokens: from the cache when there is one, else among `x` itself."""
        batch_count = x.shape[0]
        keys, values = self.self_attn.k_proj(x), self.self_attn.v_proj(x)  # (B, T, E) each
        if layer_state is None:  # teacher forcing: the T tokens see themselves and their past
            return self.self_attn(x, keys, values, causal_mask(token_index, token_index))
        # write the new keys and values into their slots: rows [:B] keys, rows [B:] values
        # (index_copy_ reads token_index on the device only, so a CUDA graph can capture it)
        layer_state[:batch_count].index_copy_(1, token_index, keys.to(layer_state.dtype))
        layer_state[batch_count:].index_copy_(1, token_index, values.to(layer_state.dtype))
        if self.reads_all_slots:  # every slot, the future masked, as min-dalle does
            key_count = layer_state.shape[1]
            mask = causal_mask(token_index, torch.arange(key_count, device=x.device))
        else:  # slots 0..key_count-1 are written; one new token sees them all
            key_count = int(token_index.max()) + 1
            mask = None if x.shape[1] == 1 else causal_mask(token_index, torch.arange(key_count, device=x.device))
        keys = layer_state[:batch_count, :key_count]  # (B, key_count, E), in the cache's dtype
        values = layer_state[batch_count:, :key_count]  # (B, key_count, E)
        return self.self_attn(x, keys, values, mask)

    def forward(
        self,
        decoder_state: torch.Tensor,
        encoder_keys_values: tuple[torch.Tensor, torch.Tensor],
        attention_mask: torch.Tensor,
        token_index: torch.Tensor,
        layer_state: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = self.pre_self_attn_layer_norm(decoder_state)
        x = self.self_attention(x, token_index, layer_state)
        decoder_state = decoder_state + self.self_attn_layer_norm(x)

        x = self.pre_encoder_attn_layer_norm(decoder_state)
        x = self.encoder_attn(x, *encoder_keys_values, attention_mask)  # the text's keys and values
        decoder_state = decoder_state + self.encoder_attn_layer_norm(x)

        return decoder_state + self.glu(decoder_state)


class DalleBartDecoder(nn.Module):
    def __init__(self, config: DalleConfig):
        super().__init__()
        if not isinstance(config, DalleConfig):
            raise TypeError(f"DalleBartDecoder needs a DalleConfig, got {type(config).__name__}")
        self.config = config
        E = config.embed_count
        self.embed_tokens = nn.Embedding(config.image_vocab_count + 1, E)
        self.embed_positions = nn.Embedding(config.image_token_count, E)
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.layer_count))
        self.layernorm_embedding = nn.LayerNorm(E)
        self.final_ln = nn.LayerNorm(E)
        self.lm_head = nn.Linear(E, config.image_vocab_count + 1, bias=False)

    @contextmanager
    def fixed_length(self) -> Iterator[None]:
        """Inside: every cached step reads all slots under the mask `slot <= i`, as min-dalle
        does, instead of slots 0..i. No shape then depends on the position and nothing reads
        it on the host, so a CUDA graph can replay the step (`graph.StaticDecodeStep`) and the
        meta device can trace it (`lab.shapes`)."""
        for layer in self.layers:
            layer.reads_all_slots = True
        try:
            yield
        finally:
            for layer in self.layers:
                layer.reads_all_slots = False

    def encoder_keys_values(self, encoder_state: torch.Tensor) -> EncoderKeysValues:
        """Cross-attention keys and values of every layer, (B, 64, E) each: once per prompt."""
        return [layer.encoder_keys_values(encoder_state) for layer in self.layers]

    def decode(
        self,
        encoder_state: torch.Tensor,
        attention_mask: torch.Tensor,
        prev_tokens: torch.Tensor,
        token_index: torch.Tensor,
        attention_state: torch.Tensor | None = None,
        encoder_keys_values: EncoderKeysValues | None = None,
    ) -> torch.Tensor:
        """Logits (B, T, image_vocab_count + 1) for tokens (B, T) at positions token_index (T,).

        With `attention_state` the new keys and values are written into it (in place) and
        earlier slots are attended to; without it the T tokens attend causally among
        themselves (teacher forcing: one pass over a whole known image, for training).
        """
        if prev_tokens.dim() != 2 or token_index.dim() != 1 or prev_tokens.shape[1] != token_index.shape[0]:
            raise ValueError(
                f"prev_tokens must be (batch, T) and token_index (T,), got {tuple(prev_tokens.shape)} "
                f"and {tuple(token_index.shape)}"
            )
        if encoder_keys_values is None:
            encoder_keys_values = self.encoder_keys_values(encoder_state)
        decoder_state = self.embed_tokens(prev_tokens) + self.embed_positions(token_index)  # (B, T, E)
        decoder_state = self.layernorm_embedding(decoder_state)
        record("decoder_state", decoder_state)
        for i, layer in enumerate(self.layers):
            layer_state = None if attention_state is None else attention_state[i]
            decoder_state = layer(decoder_state, encoder_keys_values[i], attention_mask, token_index, layer_state)
        decoder_state = self.final_ln(decoder_state)
        logits = self.lm_head(decoder_state)
        record("logits", logits)
        return logits

    def forward(
        self,
        attention_mask: torch.Tensor,
        encoder_state: torch.Tensor,
        attention_state: torch.Tensor,
        prev_tokens: torch.Tensor,
        token_index: torch.Tensor,
        encoder_keys_values: EncoderKeysValues | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """min-dalle's step: `prev_tokens` (n, T) serve both halves of the 2n-row batch."""
        prev_tokens = prev_tokens.repeat(2, 1)  # (2n, T): unconditional rows, then conditional rows
        record("prev_tokens repeated", prev_tokens)
        logits = self.decode(
            encoder_state, attention_mask, prev_tokens, token_index, attention_state, encoder_keys_values
        )
        return logits, attention_state

    def sample_tokens(self, settings: torch.Tensor, **kwargs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step and one draw: `settings` = [temperature, top_k, supercondition_factor]."""
        logits, attention_state = self.forward(**kwargs)
        temperature, top_k, supercondition_factor = (float(x) for x in settings.tolist())
        image_tokens = sample_next_tokens(
            logits[:, -1, : self.config.image_code_count],
            temperature=temperature,
            top_k=int(top_k),
            supercondition_factor=supercondition_factor,
        )
        return image_tokens, attention_state
