"""The transmitter's source knowledge base (paper, Sec. III-B, Fig. 2).

Feature extraction: three Swin-Transformer stages from ``timm`` (no pretrained weights): patch 4,
window 7, embedding 96, 3 heads in the first stage (6 and 12 after each patch merging). The stage
outputs are the low-, mid- and high-level features ``f1`` (``H/4``, 96 channels), ``f2`` (``H/8``,
192) and ``f3`` (``H/16``, 384); stages 2 and 3 start with timm's patch merging.

Feature selection: learned 1x1 projections bring each to ``feature_dim`` channels on the ``H/4``
grid (bilinear upsampling), then ``f_R = f1 + f2 + f3`` for reconstruction and ``f_S = f2 + f3``
for segmentation (the paper's selection; the task instruction comes from
:class:`~semsim.semantic.task_kb.TaskKB`).

Any ``H x W`` works: the image is padded (reflect) to a multiple of 16, and the features cover the
padded grid; :func:`pad_to_multiple` returns what to crop back.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

TASKS = ("reconstruction", "segmentation")
#: which of (f1, f2, f3) each task uses
SELECTION = {"reconstruction": (0, 1, 2), "segmentation": (1, 2)}


def ceil_to(value: int, multiple: int) -> int:
    """``value`` rounded up to a multiple of ``multiple``: a side's length after :func:`pad_to_multiple`."""
    return -(-value // multiple) * multiple


def pad_to_multiple(images: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad ``[B, C, H, W]`` on the bottom and right to multiples of ``multiple``.

    :returns: the padded tensor and the original ``(H, W)`` to crop back to.
    """
    h, w = images.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        images = F.pad(images, (0, pw, 0, ph), mode=mode)
    return images, (h, w)


class TxSourceKB(nn.Module):
    """Swin feature extraction + task-dependent feature selection.

    :param embed_dim: channels of the first stage (Table I: 96).
    :param depths: Swin blocks per stage (Table I gives none; ``paper`` preset (2, 2, 6) as Swin-T).
    :param num_heads: attention heads per stage (Table I: 3 in the first stage).
    :param window_size: attention window (Table I: 7).
    :param patch_size: patch embedding size (Table I: 4).
    :param feature_dim: channels of the selected feature ``f``.

    :input images: ``[B, 3, H, W]`` float in [0, 1], any ``H, W``.
    :input task: ``"reconstruction"`` or ``"segmentation"``.
    :output f: ``[B, feature_dim, ceil(H/16)*4, ceil(W/16)*4]`` float32, the selected feature on the
        ``H/4`` grid of the padded image.
    """

    MULTIPLE = 16  # patch 4 x two patch mergings

    def __init__(self, embed_dim: int = 96, depths: tuple[int, ...] = (2, 2, 6),
                 num_heads: tuple[int, ...] = (3, 6, 12), window_size: int = 7, patch_size: int = 4,
                 feature_dim: int = 128):
        super().__init__()
        from timm.models.swin_transformer import SwinTransformer

        if len(depths) != 3 or len(num_heads) != 3:
            raise ValueError("the source KB has three Swin stages: give three depths and three head counts")
        self.swin = SwinTransformer(img_size=224, patch_size=patch_size, in_chans=3, num_classes=0,
                                    embed_dim=embed_dim, depths=tuple(depths), num_heads=tuple(num_heads),
                                    window_size=window_size, dynamic_img_size=True)
        dims = [embed_dim * 2**i for i in range(3)]
        self.project = nn.ModuleList(nn.Conv2d(d, feature_dim, 1) for d in dims)
        self.feature_dim = feature_dim

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """``[f1, f2, f3]`` in NCHW at ``H/4``, ``H/8``, ``H/16`` of the padded image."""
        x, _ = pad_to_multiple(images, self.MULTIPLE)
        return self.swin.forward_intermediates(x, indices=3, intermediates_only=True)

    def forward(self, images: torch.Tensor, task: str) -> torch.Tensor:
        if task not in SELECTION:
            raise ValueError(f"unknown task {task!r}; valid choices: {', '.join(map(repr, TASKS))}")
        feats = self.features(images)
        grid = feats[0].shape[-2:]
        out = 0
        for i in SELECTION[task]:
            f = self.project[i](feats[i])
            out = out + (f if f.shape[-2:] == grid else F.interpolate(f, size=grid, mode="bilinear",
                                                                          align_corners=False))
        return out
