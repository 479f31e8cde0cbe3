"""The two public Mamba2 checkpoint layouts, read into our ``ModelConfig`` and parameter names.

    transformers  config.json {"model_type": "mamba2", hidden_size, num_hidden_layers, ...}
                  backbone.embeddings.weight, backbone.layers.N.{norm,mixer.*}, backbone.norm_f, lm_head
    mamba_ssm     config.json {"d_model", "n_layer", "ssm_cfg": {"layer": "Mamba2", ...}, ...}
                  backbone.embedding.weight, backbone.layers.N.{norm,mixer.*}, backbone.norm_f, lm_head

Our decoder *is* this Mamba2 (the mixer's parameter names follow mamba_ssm's), so the mapping is a
rename. What our model does not implement is refused in one line naming the config field: biases
in in_proj/out_proj, a finite dt limit, attention or MLP layers, another activation or norm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from corpus.errors import UserError

MIXER_KEYS = ("in_proj.weight", "conv1d.weight", "conv1d.bias", "dt_bias", "A_log", "D", "norm.weight",
              "out_proj.weight")


@dataclass(frozen=True)
class Layout:
    name: str  # "transformers" | "mamba_ssm"
    model: dict[str, Any]  # ModelConfig fields (decoder part)
    rename: Callable[[str], str | None]  # checkpoint key -> our key (None: not a parameter we keep)
    declared_vocab: int  # the config's vocab_size (mamba_ssm: before padding)


def detect(config: dict[str, Any], where: str) -> Layout:
    if config.get("model_type") == "mamba2":
        return _transformers(config, where)
    if "ssm_cfg" in config and "d_model" in config:
        return _mamba_ssm(config, where)
    kind = config.get("model_type") or config.get("architectures") or "unknown"
    raise UserError(f"{where}: not a Mamba2 checkpoint (model_type {kind!r}; expected transformers' "
                    f"Mamba2ForCausalLM or mamba_ssm's MambaLMHeadModel with ssm_cfg.layer = 'Mamba2')")


def _refuse(where: str, field: str, value: Any, why: str) -> None:
    raise UserError(f"{where}: {field} = {value!r}: {why}, which this model does not implement")


def _infinite_dt_limit(limit: Any) -> bool:
    """(0, inf): no clamp. transformers 5 writes inf as {"__float__": "Infinity"}."""
    def number(x: Any) -> float:
        return float(x["__float__"]) if isinstance(x, dict) and "__float__" in x else float(x)

    try:
        low, high = (number(x) for x in limit)
    except (TypeError, ValueError):
        return False
    return low == 0.0 and math.isinf(high)


def _transformers(c: dict[str, Any], where: str) -> Layout:
    if c.get("use_bias"):
        _refuse(where, "use_bias", c["use_bias"], "biases in in_proj/out_proj")
    if not _infinite_dt_limit(c.get("time_step_limit", (0.0, float("inf")))):
        _refuse(where, "time_step_limit", c.get("time_step_limit"), "a finite dt limit (clamped softplus(dt))")
    if c.get("hidden_act", "silu") != "silu":
        _refuse(where, "hidden_act", c["hidden_act"], "another activation than silu")
    if c.get("rms_norm", True) is False:
        _refuse(where, "rms_norm", False, "a mixer without the gated RMSNorm")
    d_model, expand, heads, headdim = (int(c["hidden_size"]), int(c.get("expand", 2)), int(c["num_heads"]),
                                       int(c["head_dim"]))
    if d_model * expand != heads * headdim:
        raise UserError(f"{where}: hidden_size * expand = {d_model * expand} != num_heads * head_dim = "
                        f"{heads * headdim}")
    model = dict(d_model=d_model, n_layers=int(c["num_hidden_layers"]), d_state=int(c["state_size"]),
                 d_conv=int(c.get("conv_kernel", 4)), expand=expand, headdim=headdim,
                 ngroups=int(c.get("n_groups", 1)), chunk_size=int(c.get("chunk_size", 256)),
                 norm_eps=float(c.get("layer_norm_epsilon", 1e-5)),
                 tie_embeddings=bool(c.get("tie_word_embeddings", False)),
                 vocab_size=int(c["vocab_size"]))

    def rename(key: str) -> str | None:
        if key == "backbone.embeddings.weight":
            return "decoder.embedding.weight"
        return _common(key)

    return Layout("transformers", model, rename, int(c["vocab_size"]))


def _mamba_ssm(c: dict[str, Any], where: str) -> Layout:
    ssm = dict(c.get("ssm_cfg") or {})
    if ssm.get("layer", "Mamba1") != "Mamba2":
        _refuse(where, "ssm_cfg.layer", ssm.get("layer", "Mamba1"), "a Mamba1 mixer")
    if c.get("attn_layer_idx"):
        _refuse(where, "attn_layer_idx", c["attn_layer_idx"], "attention layers")
    if int(c.get("d_intermediate", 0) or 0) > 0:
        _refuse(where, "d_intermediate", c["d_intermediate"], "MLP layers")
    if c.get("rms_norm", True) is False:
        _refuse(where, "rms_norm", False, "LayerNorm instead of RMSNorm")
    if ssm.get("bias"):
        _refuse(where, "ssm_cfg.bias", ssm["bias"], "biases in in_proj/out_proj")
    if ssm.get("conv_bias", True) is False:
        pass  # a conv without bias is ours with a zero bias (filled in by convert)
    if not _infinite_dt_limit(ssm.get("dt_limit", (0.0, float("inf")))):
        _refuse(where, "ssm_cfg.dt_limit", ssm.get("dt_limit"), "a finite dt limit (clamped softplus(dt))")
    if ssm.get("rmsnorm", True) is False:
        _refuse(where, "ssm_cfg.rmsnorm", False, "a mixer without the gated RMSNorm")
    if ssm.get("norm_before_gate", False):
        _refuse(where, "ssm_cfg.norm_before_gate", True, "normalising before the gate")
    if ssm.get("D_has_hdim", False):
        _refuse(where, "ssm_cfg.D_has_hdim", True, "a D per head dimension")
    vocab = int(c["vocab_size"])
    multiple = int(c.get("pad_vocab_size_multiple", 1) or 1)
    rows = vocab + (-vocab) % multiple  # MambaLMHeadModel pads the embedding to this many rows
    d_model, expand = int(c["d_model"]), int(ssm.get("expand", 2))
    model = dict(d_model=d_model, n_layers=int(c["n_layer"]), d_state=int(ssm.get("d_state", 128)),
                 d_conv=int(ssm.get("d_conv", 4)), expand=expand, headdim=int(ssm.get("headdim", 64)),
                 ngroups=int(ssm.get("ngroups", 1)), chunk_size=int(ssm.get("chunk_size", 256)),
                 norm_eps=float(c.get("norm_epsilon", 1e-5)), tie_embeddings=bool(c.get("tie_embeddings", True)),
                 vocab_size=rows)

    def rename(key: str) -> str | None:
        if key == "backbone.embedding.weight":
            return "decoder.embedding.weight"
        return _common(key)

    return Layout("mamba_ssm", model, rename, vocab)


def _common(key: str) -> str | None:
    if key == "backbone.norm_f.weight":
        return "decoder.norm_f.weight"
    if key == "lm_head.weight":
        return "decoder.lm_head.weight"
    parts = key.split(".")
    if len(parts) >= 5 and parts[:2] == ["backbone", "layers"] and parts[3] in ("mixer", "norm"):
        rest = ".".join(parts[3:])
        if rest == "norm.weight" or rest.removeprefix("mixer.") in MIXER_KEYS:
            return f"decoder.layers.{parts[2]}.{rest}"
    return None
