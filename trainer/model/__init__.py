"""HRM x Mamba2 language model (DESIGN section 7).

    config.py    ModelConfig: sizes and switches, presets (demo, size_50m)
    ssd.py       SSD scan: chunked form and the step recurrence it must equal
    mamba2.py    Mamba2 mixer (full sequence + one-token step); kernels.py: optional mamba_ssm path
    decoder.py   embedding, residual Mamba2 layers, tied LM head
    pool.py      the HRM's input: attention pooling over prompt positions only
    hrm.py       H and L modules over latent slots, one-step gradient
    bridge.py    zero-initialised memory projection, gate head, where memory enters
    halting.py   per-cycle halting probabilities, distribution, penalty
    lm.py        HRMMamba2LM: forward with separate loss terms and diagnostics, generate()
"""

from trainer.model.config import ModelConfig
from trainer.model.lm import DecodeState, HRMMamba2LM, HRMReadout, ModelOutput
from trainer.model.summary import format_parameter_summary, parameter_summary

__all__ = ["ModelConfig", "HRMMamba2LM", "ModelOutput", "HRMReadout", "DecodeState",
           "parameter_summary", "format_parameter_summary"]
