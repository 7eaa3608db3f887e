"""Plain-PyTorch reference implementation of Qwen3ForCausalLM (fp32).

Written from the formulas Hugging Face transformers uses for Qwen3, so that the C++
implementation can be checked against it without depending on transformers itself.
Parameter names match the Hugging Face state-dict keys exactly, e.g.
``model.layers.0.self_attn.q_proj.weight``.

Works with torch 1.13 (no scaled_dot_product_attention; attention is an explicit
matmul + mask + softmax).

Public API:
    Qwen3Ref(config: dict)                        -- the model (torch.nn.Module)
    Qwen3Ref.forward(input_ids, labels=None, positions=None, doc_ids=None)
                                                  -> (logits [B, T, V], loss or None)
    read_layout(path) -> [(name, offset, shape)]  -- parse a layout.tsv file
    load_flat(model, flat, layout)                -- copy tensors out of a flat fp32 array
    init_hf(model, std, seed)                     -- HF-style random initialisation
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

IGNORE_INDEX = -100


def _at_least_fp32(x):
    """Upcast half/bfloat16 tensors to fp32 (HF computes norms/softmax/loss in fp32).

    fp32 and fp64 tensors are returned unchanged, so the module can be run in double
    precision (e.g. for gradcheck) without silently dropping to fp32.
    """
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x

# HF config.json keys the reference needs, with defaults for the optional ones.
_REQUIRED_KEYS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
)
_OPTIONAL_DEFAULTS = {
    "num_key_value_heads": None,  # defaults to num_attention_heads
    "head_dim": None,  # defaults to hidden_size // num_attention_heads
    "rms_norm_eps": 1e-6,
    "rope_theta": 10000.0,
    "tie_word_embeddings": False,
}


def _normalise_config(config):
    """Return a dict holding every key the reference uses, with defaults filled in.

    Unknown keys (name, model_type, hidden_act, ...) are ignored.
    """
    missing = [k for k in _REQUIRED_KEYS if k not in config]
    if missing:
        raise KeyError("Qwen3 config is missing keys: %s" % ", ".join(missing))
    cfg = {k: config[k] for k in _REQUIRED_KEYS}
    for key, default in _OPTIONAL_DEFAULTS.items():
        value = config.get(key, default)
        cfg[key] = default if value is None else value
    if cfg["num_key_value_heads"] is None:
        cfg["num_key_value_heads"] = cfg["num_attention_heads"]
    if cfg["head_dim"] is None:
        cfg["head_dim"] = cfg["hidden_size"] // cfg["num_attention_heads"]
    for key in _REQUIRED_KEYS + ("num_key_value_heads", "head_dim"):
        cfg[key] = int(cfg[key])
    cfg["rms_norm_eps"] = float(cfg["rms_norm_eps"])
    cfg["rope_theta"] = float(cfg["rope_theta"])
    cfg["tie_word_embeddings"] = bool(cfg["tie_word_embeddings"])
    if cfg["num_attention_heads"] % cfg["num_key_value_heads"] != 0:
        raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
    if cfg["head_dim"] % 2 != 0:
        raise ValueError("head_dim must be even for rotary embeddings")
    return cfg


class RMSNorm(nn.Module):
    """RMSNorm over the last dimension, in the exact HF operation order."""

    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        input_dtype = x.dtype
        x = _at_least_fp32(x)
        var = x.pow(2).mean(-1, keepdim=True)
        x = x * torch.rsqrt(var + self.eps)
        return self.weight * x.to(input_dtype)


def rotate_half(x):
    """HF rotate_half: split the last dim into halves (x1, x2) and return cat(-x2, x1)."""
    half = x.shape[-1] // 2
    x1 = x[..., :half]
    x2 = x[..., half:]
    return torch.cat((-x2, x1), dim=-1)


def rope_cos_sin(positions, head_dim, theta, dtype):
    """cos/sin tables of shape [B, T, head_dim] for integer positions [B, T].

    The angles are computed in fp32 (as HF does) and then cast to ``dtype``.
    """
    exponent = torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim
    inv_freq = 1.0 / (theta ** exponent)  # [hd/2]
    freqs = positions.float()[..., None] * inv_freq  # [B, T, hd/2]
    emb = torch.cat((freqs, freqs), dim=-1)  # [B, T, hd]
    return emb.cos().to(dtype), emb.sin().to(dtype)


def apply_rope(x, cos, sin):
    """Rotate x [B, H, T, hd] with cos/sin [B, T, hd] (broadcast over heads)."""
    cos = cos[:, None, :, :]
    sin = sin[:, None, :, :]
    return x * cos + rotate_half(x) * sin


def attention_mask(batch, seq, device, doc_ids=None):
    """Boolean visibility mask [B, 1, T, T]: True where query i may attend key j.

    Causal (j <= i); with doc_ids [B, T] additionally doc_ids[j] == doc_ids[i].
    """
    causal = torch.ones(seq, seq, dtype=torch.bool, device=device).tril()
    mask = causal[None, :, :].expand(batch, seq, seq)
    if doc_ids is not None:
        same_doc = doc_ids[:, :, None] == doc_ids[:, None, :]  # [B, Tq, Tk]
        mask = mask & same_doc
    return mask[:, None, :, :]


class Attention(nn.Module):
    """Qwen3 grouped-query self-attention with per-head q/k RMSNorm and RoPE."""

    def __init__(self, cfg):
        super().__init__()
        d = cfg["hidden_size"]
        self.num_heads = cfg["num_attention_heads"]
        self.num_kv_heads = cfg["num_key_value_heads"]
        self.head_dim = cfg["head_dim"]
        self.rope_theta = cfg["rope_theta"]
        hd = self.head_dim
        self.q_proj = nn.Linear(d, self.num_heads * hd, bias=False)
        self.k_proj = nn.Linear(d, self.num_kv_heads * hd, bias=False)
        self.v_proj = nn.Linear(d, self.num_kv_heads * hd, bias=False)
        self.o_proj = nn.Linear(self.num_heads * hd, d, bias=False)
        # One head_dim weight each, shared across all heads.
        self.q_norm = RMSNorm(hd, cfg["rms_norm_eps"])
        self.k_norm = RMSNorm(hd, cfg["rms_norm_eps"])

    def forward(self, h, cos, sin, mask):
        bsz, seq, _ = h.shape
        hd = self.head_dim
        # Project, split heads, and normalise q/k over head_dim before RoPE.
        q = self.q_norm(self.q_proj(h).view(bsz, seq, self.num_heads, hd))
        k = self.k_norm(self.k_proj(h).view(bsz, seq, self.num_kv_heads, hd))
        v = self.v_proj(h).view(bsz, seq, self.num_kv_heads, hd)
        q = q.transpose(1, 2)  # [B, Hq, T, hd]
        k = k.transpose(1, 2)  # [B, Hkv, T, hd]
        v = v.transpose(1, 2)
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        # GQA: query head h reads KV head h // group.
        group = self.num_heads // self.num_kv_heads
        if group > 1:
            k = k.repeat_interleave(group, dim=1)
            v = v.repeat_interleave(group, dim=1)
        scores = torch.matmul(q, k.transpose(-1, -2)) * (hd ** -0.5)  # [B, Hq, T, T]
        scores = scores.masked_fill(~mask, float("-inf"))
        probs = torch.softmax(_at_least_fp32(scores), dim=-1).to(q.dtype)
        out = torch.matmul(probs, v)  # [B, Hq, T, hd]
        out = out.transpose(1, 2).reshape(bsz, seq, self.num_heads * hd)
        return self.o_proj(out)


class MLP(nn.Module):
    """SwiGLU feed-forward: down(silu(gate(x)) * up(x))."""

    def __init__(self, cfg):
        super().__init__()
        d, inter = cfg["hidden_size"], cfg["intermediate_size"]
        self.gate_proj = nn.Linear(d, inter, bias=False)
        self.up_proj = nn.Linear(d, inter, bias=False)
        self.down_proj = nn.Linear(inter, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, cfg):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x


class Qwen3Model(nn.Module):
    """The decoder stack (HF ``model.`` prefix): embeddings, layers, final norm."""

    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg["num_hidden_layers"]))
        self.norm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])


def causal_lm_loss(logits, labels, ignore_index=IGNORE_INDEX):
    """HF causal-LM loss: position t is scored against labels[t + 1].

    The last position is unscored; labels equal to ignore_index are skipped. The result
    is the mean over scored tokens (sum reduction divided by the scored count). With no
    scored tokens the sum (0) is divided by 1 to avoid NaN.
    """
    vocab = logits.shape[-1]
    shift_logits = _at_least_fp32(logits[:, :-1, :].reshape(-1, vocab))
    shift_labels = labels[:, 1:].reshape(-1).long()
    total = F.cross_entropy(shift_logits, shift_labels, ignore_index=ignore_index,
                            reduction="sum")
    count = int((shift_labels != ignore_index).sum().item())
    return total / max(count, 1)


class Qwen3Ref(nn.Module):
    """Qwen3ForCausalLM reference with Hugging Face parameter names."""

    def __init__(self, config):
        super().__init__()
        self.config = _normalise_config(config)
        cfg = self.config
        self.model = Qwen3Model(cfg)
        if cfg["tie_word_embeddings"]:
            self.lm_head = None  # logits use model.embed_tokens.weight
        else:
            self.lm_head = nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)

    def head_weight(self):
        """The [V, d] output projection (the embedding matrix when tied)."""
        if self.lm_head is None:
            return self.model.embed_tokens.weight
        return self.lm_head.weight

    def forward(self, input_ids, labels=None, positions=None, doc_ids=None):
        """Run the model.

        input_ids: [B, T] integer tokens.
        labels:    optional [B, T] (aligned with input_ids; shifted internally), -100 = ignore.
        positions: optional [B, T] integer RoPE positions; default arange(T) for every row.
        doc_ids:   optional [B, T]; restricts attention to keys in the same document.
        Returns (logits [B, T, V], loss scalar or None).
        """
        cfg = self.config
        input_ids = input_ids.long()
        bsz, seq = input_ids.shape
        device = input_ids.device
        if positions is None:
            positions = torch.arange(seq, device=device)[None, :].expand(bsz, seq)
        positions = positions.to(device).long()
        if doc_ids is not None:
            doc_ids = doc_ids.to(device).long()

        x = self.model.embed_tokens(input_ids)
        cos, sin = rope_cos_sin(positions, cfg["head_dim"], cfg["rope_theta"], x.dtype)
        mask = attention_mask(bsz, seq, device, doc_ids)
        for layer in self.model.layers:
            x = layer(x, cos, sin, mask)
        x = self.model.norm(x)
        logits = F.linear(x, self.head_weight())

        loss = None
        if labels is not None:
            loss = causal_lm_loss(logits, labels.to(device))
        return logits, loss


def read_layout(path):
    """Parse a layout TSV: one ``name<TAB>offset<TAB>d0,d1,...`` line per tensor.

    Offsets are in elements. Blank lines and lines starting with '#' are skipped.
    Returns a list of (name, offset, shape tuple) in file order.
    """
    layout = []
    with open(path, "r") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.rstrip("\r\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) != 3:
                raise ValueError("%s:%d: expected 3 tab-separated fields, got %r"
                                 % (path, lineno, line))
            name, offset, dims = fields
            shape = tuple(int(d) for d in dims.split(",") if d.strip())
            layout.append((name.strip(), int(offset), shape))
    return layout


def load_flat(model, flat, layout):
    """Copy every (name, offset, shape) tensor of ``flat`` into the model's parameters.

    ``flat`` is a 1-D float32 numpy array. Raises if a name is unknown, a shape does not
    match, a tensor runs past the end of ``flat``, or a model parameter is not covered.
    """
    params = dict(model.named_parameters())
    flat = np.asarray(flat).reshape(-1)
    seen = set()
    for name, offset, shape in layout:
        if name not in params:
            raise KeyError("layout tensor %r is not a parameter of the reference model" % name)
        param = params[name]
        if tuple(param.shape) != tuple(shape):
            raise ValueError("shape mismatch for %s: layout %s, reference %s"
                             % (name, tuple(shape), tuple(param.shape)))
        count = int(np.prod(shape)) if shape else 1
        if offset < 0 or offset + count > flat.size:
            raise ValueError("tensor %s [%d, %d) exceeds flat size %d"
                             % (name, offset, offset + count, flat.size))
        values = np.ascontiguousarray(flat[offset:offset + count], dtype=np.float32)
        with torch.no_grad():
            param.copy_(torch.from_numpy(values).reshape(shape).to(param.dtype))
        seen.add(name)
    missing = sorted(set(params) - seen)
    if missing:
        raise KeyError("layout does not cover reference parameters: %s" % ", ".join(missing))


def init_hf(model, std, seed):
    """HF-style initialisation: normal(0, std) for linear/embedding weights, ones for norms."""
    gen = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.fill_(1.0)
            else:
                sample = torch.empty(param.shape, dtype=torch.float32)
                sample.normal_(0.0, std, generator=gen)
                param.copy_(sample.to(param.dtype))
    return model
