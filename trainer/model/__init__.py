"""HRM x Mamba2 language model (DESIGN section 7).

    input_ids -> embed -> Mamba2 layers [0, k) -> h_k ---------------> + gate * memory -> layers [k, n) -> logits
                                                  |                      (t >= prompt_len - 1)
                                                  +-> pool(prompt only) -> HRM (H, L over slots) -> memory, gate, halting

Files, one concept each:
    config.py    ModelConfig: sizes and switches, presets (demo, size_50m)
    ssd.py       SSD scan: chunked form and the step recurrence it must equal
    mamba2.py    Mamba2 mixer (full sequence + one-token step); kernels.py: optional mamba_ssm path
    decoder.py   embedding, residual Mamba2 layers, tied LM head
    pool.py      the HRM's input: attention pooling over prompt positions only
    hrm.py       H and L modules over latent slots, one-step gradient; the shared H x L schedule
    token_hrm.py hrm_design = "per_token": a latent per answer position re-reading the prompt
    bridge.py    zero-initialised memory projection, gate head, where memory enters
    halting.py   per-cycle halting probabilities, distribution, penalty
    sampling.py  greedy / temperature / top-k / top-p
    lm.py        HRMMamba2LM: forward (separate loss terms + diagnostics), prefill/step, generate()
    summary.py   parameter counts per component

Designs (``hrm_design``): "pooled" (default, the diagram above: one memory vector per sequence)
and "per_token" (token_hrm.py: the HRM runs once per position t >= prompt_len - 1 from that
position's bridge-layer state, re-reading the prompt by cross-attention in every block, and adds
its own memory there). Both keep the gate, halting, deep supervision and the gradient rule below.

Decisions the trainer relies on:
* Memory enters at positions t >= prompt_len - 1 and is a function of prompt tokens only, so no
  position ever sees the token it predicts (tests change target tokens and compare).
* ``gate_scale == 0`` skips the addition: logits are bit-identical to ``hrm_enabled=False`` with
  the same decoder weights; the HRM runs without grad (diagnostics only) and deep supervision and
  the halting penalty are zero. HRM parameters then get no gradient (``grad`` stays None; the
  trainer's all-reduce keeps it None, so AdamW neither decays nor counts them; under DDP use
  ``find_unused_parameters=True``, also needed when halting is off: its head is unused).
* One-step gradient: only the last L and the last H update carry gradient (``hrm_bptt_steps`` > 1
  for more). With deep supervision or halting every cycle's output is used, and each cycle is a
  gradient segment of its own (HRM's deep-supervision rule), states detached between cycles
  unless the BPTT tail reaches back across the boundary (tests/model/test_hrm_segments.py).
* Deep supervision scores only labelled positions that receive memory (t >= prompt_len - 1);
  ``lm_mem_loss`` is the main loss on the same positions.
* Halting weights the memory: memory = sum_c p_c * memory_c with ACT's p; halt sum = sum_c lambda_c
  pulled to ``halt_target``; penalty = halting_weight * mean gate (detached) * mean (sum - target)^2,
  read from detached states so it trains the halting head only.
  In eval mode with ``halt_epsilon > 0`` the cycles stop once every sample is halted within eps.
* Switches and cycle counts create no parameters: a checkpoint loads strictly under any of them,
  and ``set_cycles`` changes h_cycles / l_steps between runs of the same weights.
* ``generate`` takes equal-length prompts [b, p] (bucket ragged prompts by length) and returns
  prompt + new tokens; after ``eos_id`` a row is filled with ``eos_id``.
* Mixed precision: the scan, softplus(dt), exp(A_log), norms, gate/halting sigmoids and the loss
  run in fp32 under bf16 autocast; the residual stream stays in the parameters' dtype.
"""

from trainer.model.config import ModelConfig

__all__ = ["ModelConfig", "HRMMamba2LM", "ModelOutput", "HRMReadout", "DecodeState",
           "parameter_summary", "format_parameter_summary"]

_LAZY = {"HRMMamba2LM": "lm", "ModelOutput": "lm", "HRMReadout": "lm", "DecodeState": "lm",
         "parameter_summary": "summary", "format_parameter_summary": "summary"}


def __getattr__(name: str):
    """The model code (torch) loads on first use, so the config and ``--help`` stay light."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"trainer.model.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'trainer.model' has no attribute {name!r}")
