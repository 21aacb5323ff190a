"""Where torch work runs: the device a setting names, and the CPU thread count."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# torch is imported where it is used: every command imports this module, and the jobs that
# need no torch (select, the reports, the index) then start about 2 s sooner.


def resolve_device(device: str | torch.device = "cpu") -> torch.device:
    """``auto`` is CUDA when present; anything else is taken as torch spells it.

    Only model jobs (which declare a GPU) pass ``auto``; every other stage runs
    on the CPU unless a setting asks for CUDA, so results do not depend on
    which machine a job landed on.
    """
    import torch

    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def set_threads(threads: int | None) -> None:
    """Torch CPU threads: the setting, else MMCONCEPTS_THREADS, else torch's own choice."""
    threads = threads or int(os.environ.get("MMCONCEPTS_THREADS", "0") or 0)
    if not threads:
        return
    # Torch (and the BLAS of numpy, once loaded) read this when first imported; a torch already
    # imported is told directly. Jobs that never import torch do not pay for importing it.
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
