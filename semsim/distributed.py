"""This process's place in a ``torchrun`` launch, and the few collectives ``semsim train`` and
``semsim run`` need: any-rank flags, means of logged numbers, sums of confusion counts, barriers.

Launched alone (``WORLD_SIZE`` unset or 1) every call is a no-op on rank 0 of 1, so the same code
runs with and without ``torchrun``. ``torch.distributed`` is imported only under a launch.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from .config import set_device


@dataclass
class Dist:
    """This process's place in a ``torchrun`` launch (rank 0 of 1 when launched alone)."""

    rank: int = 0
    world: int = 1
    owns_group: bool = False

    @classmethod
    def setup(cls, device: str, backend: str | None = None, timeout=None) -> tuple["Dist", str]:
        """Join the launch: each rank on ``cuda:LOCAL_RANK`` (modulo the GPUs there are: ranks then
        share one, which only Gloo allows) with Sionna's device set to match, or on the CPU.

        :param backend: default NCCL on CUDA, Gloo on the CPU.
        :param timeout: of collectives (a ``datetime.timedelta``; default PyTorch's).
        """
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls(), device
        import torch.distributed as td

        local = int(os.environ.get("LOCAL_RANK", "0"))
        if device.startswith("cuda"):
            local %= max(torch.cuda.device_count(), 1)
            device = set_device(f"cuda:{local}")
            torch.cuda.set_device(local)
        owns = not td.is_initialized()
        if owns:
            td.init_process_group(backend or ("nccl" if device.startswith("cuda") else "gloo"),
                                  **({"timeout": timeout} if timeout is not None else {}))
        return cls(td.get_rank(), td.get_world_size(), owns), device

    @property
    def main(self) -> bool:
        return self.rank == 0

    def any(self, flag: bool, device: str) -> bool:
        """True on every rank if ``flag`` is true on some rank."""
        if self.world == 1:
            return flag
        import torch.distributed as td

        t = torch.tensor([float(flag)], device=device)
        td.all_reduce(t, op=td.ReduceOp.MAX)
        return bool(t.item())

    def mean(self, values: list[float], device: str) -> list[float]:
        """The mean of ``values`` over the ranks (float64 all-reduce)."""
        if self.world == 1:
            return values
        import torch.distributed as td

        t = torch.tensor(values, dtype=torch.float64, device=device)
        td.all_reduce(t)
        return (t / self.world).tolist()

    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` summed over the ranks, in place."""
        if self.world > 1:
            import torch.distributed as td

            td.all_reduce(t)
        return t

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as td

            td.barrier()

    def close(self) -> None:
        if self.owns_group:
            import torch.distributed as td

            td.destroy_process_group()
