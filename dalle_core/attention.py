"""The two building blocks shared by encoder and decoder: multi-head attention and GLU.

Attention computes, per head h,

    weights = softmax(q_h k_h^T / sqrt(d) + bias),   output = weights v_h

with d = embed_count / head_count. The mask says which keys a query may see; a hidden
key gets a bias so negative that its weight underflows to exactly 0.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from .trace import is_recording, record

# On CUDA the fused attention is pinned to the memory-efficient kernel, the plain formula
# (MATH) where that kernel refuses the inputs: both take a mask, compute each output without
# atomics or split reductions, and need no per-shape setup. Left to itself, torch may choose
# cuDNN's kernel, which builds a plan for every new shape (a long first call). Flash
# attention takes no mask at all. docs/performance.md ("On a GPU") gives the whole reasoning.
CUDA_ATTENTION_BACKENDS = [SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


def attend(
    queries: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    attention_mask: torch.Tensor | None,
    head_count: int,
    name: str = "attention",
) -> torch.Tensor:
    """Scaled dot-product attention over projected (B, Q, E) queries and (B, K, E) keys/values.

    `attention_mask` is boolean, True where a query may attend, broadcastable to
    (B, heads, Q, K); None means every key is visible.

    The formula is spelled out below, and it runs whenever a recording is active (the
    course plots its weights). Otherwise torch's fused `scaled_dot_product_attention`
    computes the same thing: it reads the cache's keys and values where they lie, while
    the spelled-out products first copy them into per-head order, which made attention
    a third of a decoder step. The two agree to float rounding (tested).

    The products run in the keys' dtype: a float32 cache serves a bfloat16 model without
    converting the cache (CPUs compute float32 attention about ten times faster). On CUDA
    the fused kernel is pinned (`CUDA_ATTENTION_BACKENDS`), so the same inputs give the same
    bits in every run.
    """
    output_dtype = queries.dtype
    queries = queries.to(keys.dtype)
    batch_count, query_count, embed_count = queries.shape
    key_count = keys.shape[1]
    head_embed_count = embed_count // head_count
    queries = queries.reshape(batch_count, query_count, head_count, head_embed_count).transpose(1, 2)  # (B, H, Q, D)
    keys = keys.reshape(batch_count, key_count, head_count, head_embed_count).transpose(1, 2)  # (B, H, K, D)
    values = values.reshape(batch_count, key_count, head_count, head_embed_count).transpose(1, 2)  # (B, H, K, D)
    if is_recording():
        attention_weights = queries @ keys.transpose(-1, -2) / head_embed_count**0.5  # (B, H, Q, K)
        if attention_mask is not None:
            hidden = torch.finfo(attention_weights.dtype).min  # exp() of it is exactly 0
            attention_weights = attention_weights.masked_fill(~attention_mask, hidden)
        attention_weights = torch.softmax(attention_weights, dim=-1)
        record(f"{name} weights", attention_weights)
        output = attention_weights @ values  # (B, H, Q, D)
    elif queries.device.type == "cuda":
        with sdpa_kernel(CUDA_ATTENTION_BACKENDS):
            output = nn.functional.scaled_dot_product_attention(queries, keys, values, attn_mask=attention_mask)
    else:
        output = nn.functional.scaled_dot_product_attention(queries, keys, values, attn_mask=attention_mask)
    output = output.transpose(1, 2).reshape(batch_count, query_count, embed_count)  # (B, Q, E): heads side by side
    return output.to(output_dtype)


class Attention(nn.Module):
    """Projections of one attention block; min-dalle's key names, all without bias."""

    def __init__(self, head_count: int, embed_count: int, name: str = "attention"):
        super().__init__()
        self.head_count = head_count
        self.name = name  # how its weights are recorded: "encoder self-attention", ...
        self.k_proj = nn.Linear(embed_count, embed_count, bias=False)
        self.v_proj = nn.Linear(embed_count, embed_count, bias=False)
        self.q_proj = nn.Linear(embed_count, embed_count, bias=False)
        self.out_proj = nn.Linear(embed_count, embed_count, bias=False)

    def forward(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        attention_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """Attend with already projected keys and values; project queries and the output."""
        queries = self.q_proj(queries)
        return self.out_proj(attend(queries, keys, values, attention_mask, self.head_count, self.name))


class GLU(nn.Module):
    """Gated feed-forward block: fc2(ln1(gelu(fc0(x)) * fc1(x))), x = ln0(input)."""

    def __init__(self, count_in_out: int, count_middle: int):
        super().__init__()
        self.ln0 = nn.LayerNorm(count_in_out)
        self.ln1 = nn.LayerNorm(count_middle)
        self.fc0 = nn.Linear(count_in_out, count_middle, bias=False)
        self.fc1 = nn.Linear(count_in_out, count_middle, bias=False)
        self.fc2 = nn.Linear(count_middle, count_in_out, bias=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = self.ln0(z)
        gate = nn.functional.gelu(self.fc0(z))
        return self.fc2(self.ln1(gate * self.fc1(z)))
