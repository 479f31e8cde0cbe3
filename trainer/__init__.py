"""Trainer: the HRM x Mamba2 model, its training loop and evaluation."""
