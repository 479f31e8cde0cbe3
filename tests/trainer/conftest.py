"""Trainer tests run on one CPU thread: the machine is shared and exactness is per thread count."""

from __future__ import annotations

import torch

torch.set_num_threads(1)
