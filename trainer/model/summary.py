"""Parameter counts per component, counting tied (shared) tensors once."""

from __future__ import annotations

from torch import nn

# component name -> attribute path prefixes of HRMMamba2LM's parameters
COMPONENTS = {
    "embedding": ("decoder.embedding.",),
    "decoder_layers": ("decoder.layers.",),
    "decoder_head": ("decoder.norm_f.", "decoder.lm_head."),
    "hrm_pool": ("pool.",),
    "hrm_core": ("core.",),
    "bridge": ("bridge.",),
    "halting": ("halting.",),
}


def parameter_summary(model: nn.Module) -> dict[str, int]:
    """{component: count, ..., "hrm_total": ..., "total": ...}; unmatched names go to "other"."""
    counts = dict.fromkeys(COMPONENTS, 0)
    seen: set[int] = set()
    for name, param in model.named_parameters():  # named_parameters already skips tied repeats
        if id(param) in seen:
            continue
        seen.add(id(param))
        part = next((c for c, prefixes in COMPONENTS.items() if name.startswith(prefixes)), "other")
        counts[part] = counts.get(part, 0) + param.numel()
    counts["hrm_total"] = sum(counts[c] for c in ("hrm_pool", "hrm_core", "bridge", "halting"))
    counts["total"] = sum(v for k, v in counts.items() if k != "hrm_total")
    return counts


def format_parameter_summary(counts: dict[str, int]) -> str:
    """A small aligned table for logs: one component per line, in millions."""
    width = max(len(k) for k in counts)
    return "\n".join(f"{k:<{width}}  {v / 1e6:9.3f}M" for k, v in counts.items())
