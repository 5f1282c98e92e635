"""Metrics against independent computations."""
import math

import numpy as np
import pytest
import torch

from semsim.metrics import MS_SSIM_MIN_SIDE, ConfusionMatrix, miou_from_confusion, ms_ssim, psnr


def test_psnr_matches_definition():
    a = torch.rand(2, 3, 32, 48)
    b = (a + 0.05 * torch.randn_like(a)).clamp(0, 1)
    mse = ((a - b) ** 2).flatten(1).mean(1).double()
    assert torch.allclose(psnr(a, b), 10 * torch.log10(1 / mse))
    assert torch.isinf(psnr(a, a)).all()


def test_ms_ssim_nan_below_min_side_and_one_for_identical():
    small = torch.rand(2, 3, MS_SSIM_MIN_SIDE - 1, 300)
    assert torch.isnan(ms_ssim(small, small)).all()
    big = torch.rand(1, 3, MS_SSIM_MIN_SIDE, 200)
    assert ms_ssim(big, big).item() == pytest.approx(1.0, abs=1e-5)
    noisy = (big + 0.2 * torch.randn_like(big)).clamp(0, 1)
    assert ms_ssim(big, noisy).item() < 0.95


def test_miou_is_dataset_level_not_mean_of_images():
    # image 1: class 0 everywhere, predicted right; image 2: class 1 with half predicted as 0
    t1, p1 = torch.zeros(1, 4, 4, dtype=torch.long), torch.zeros(1, 4, 4, dtype=torch.long)
    t2 = torch.ones(1, 4, 4, dtype=torch.long)
    p2 = t2.clone()
    p2[..., :2] = 0
    cm = ConfusionMatrix(num_classes=3, ignore_index=2)
    cm.update(p1, t1)
    cm.update(p2, t2)
    # accumulated: class 0: tp 16, fp 8 -> 16/24; class 1: tp 8, fn 8 -> 8/16
    assert cm.miou() == pytest.approx((16 / 24 + 8 / 16) / 2)
    per_image = (1.0 + (0 / 8 + 8 / 16) / 2) / 2
    assert cm.miou() != pytest.approx(per_image)


def test_ignore_index_is_ignored():
    t = torch.tensor([[[0, 0, 255, 255]]])
    p = torch.tensor([[[0, 0, 1, 1]]])
    cm = ConfusionMatrix(num_classes=21, ignore_index=255)
    cm.update(p, t)
    assert cm.miou() == pytest.approx(1.0)


def test_miou_from_confusion_against_numpy():
    rng = np.random.default_rng(0)
    cm = rng.integers(0, 50, size=(5, 5))
    tp = np.diag(cm)
    iou = tp / (cm.sum(0) + cm.sum(1) - tp)
    assert miou_from_confusion(torch.tensor(cm)) == pytest.approx(iou.mean())
    assert math.isnan(miou_from_confusion(torch.zeros(3, 3)))
