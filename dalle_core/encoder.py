"""DalleBartEncoder: text tokens to one 2048-vector (mega) per token position.

Every layer is pre-norm self-attention and a GLU, each added back to its input. The
pad token (id 1) is masked out as a key, so padding never changes `encoder_state`.
"""
from __future__ import annotations

import torch
from torch import nn

from .attention import GLU, Attention
from .config import DalleConfig
from .tokenizer import PAD_ID
from .trace import record


def text_attention_mask(text_tokens: torch.Tensor) -> torch.Tensor:
    """True where a text token is real (not padding): (B, T) -> (B, 1, 1, T)."""
    return text_tokens.ne(PAD_ID)[:, None, None, :]  # (B, 1, 1, T): broadcast over heads and queries


class EncoderLayer(nn.Module):
    def __init__(self, config: DalleConfig):
        super().__init__()
        self.pre_self_attn_layer_norm = nn.LayerNorm(config.embed_count)
        self.self_attn = Attention(config.attention_head_count, config.embed_count, "encoder self-attention")
        self.self_attn_layer_norm = nn.LayerNorm(config.embed_count)
        self.glu = GLU(config.embed_count, config.glu_embed_count)

    def forward(self, encoder_state: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x = self.pre_self_attn_layer_norm(encoder_state)
        keys, values = self.self_attn.k_proj(x), self.self_attn.v_proj(x)
        x = self.self_attn(x, keys, values, attention_mask)
        encoder_state = encoder_state + self.self_attn_layer_norm(x)
        return encoder_state + self.glu(encoder_state)


class DalleBartEncoder(nn.Module):
    def __init__(self, config: DalleConfig):
        super().__init__()
        if not isinstance(config, DalleConfig):
            raise TypeError(f"DalleBartEncoder needs a DalleConfig, got {type(config).__name__}")
        self.config = config
        self.embed_tokens = nn.Embedding(config.text_vocab_count, config.embed_count)
        self.embed_positions = nn.Embedding(config.text_token_count, config.embed_count)
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.layer_count))
        self.layernorm_embedding = nn.LayerNorm(config.embed_count)
        self.final_ln = nn.LayerNorm(config.embed_count)

    def forward(self, text_tokens: torch.Tensor) -> torch.Tensor:
        """(B, text_token_count) ids -> encoder_state (B, text_token_count, embed_count)."""
        if text_tokens.dim() != 2 or text_tokens.dtype not in (torch.long, torch.int):
            raise ValueError(
                "text_tokens must be a 2-d integer tensor (batch, tokens), "
                f"got {tuple(text_tokens.shape)} {text_tokens.dtype}"
            )
        if text_tokens.shape[1] > self.config.text_token_count:
            raise ValueError(f"at most {self.config.text_token_count} text tokens, got {text_tokens.shape[1]}")
        attention_mask = text_attention_mask(text_tokens)
        positions = torch.arange(text_tokens.shape[1], device=text_tokens.device)
        encoder_state = self.embed_tokens(text_tokens) + self.embed_positions(positions)  # (B, T, E)
        encoder_state = self.layernorm_embedding(encoder_state)
        for layer in self.layers:
            encoder_state = layer(encoder_state, attention_mask)
        encoder_state = self.final_ln(encoder_state)
        record("encoder_state", encoder_state)
        return encoder_state
