"""What a ``semsim train`` run draws and scores on: step ``k``'s batch of each task (random crops
from :class:`~semsim.data.ImagePool` and SNRs, a function of the seed of ``(k, task)`` only, so every
method of a scenario sees the same batches), the validation sets in batches of one size, the
content hashes of the training data, and a training-time estimate.
"""
from __future__ import annotations

from collections.abc import Callable
import torch

from . import registry
from .codec import Task
from .data import ImagePool, batches_by_size, content_hash, image_sizes, stack
from .scenario import Scenario, build_train_codec

#: a training step (forward, backward, optimiser) costs about this many transmissions of its pixels
TRAIN_COST_FACTOR = 3.0


class TrainData:
    """The training and validation data of a ``kind: train`` scenario, for one rank.

    :param sc: the scenario (``sc.train`` its training settings).
    :param share: images per task and step on this rank (``batch_size / WORLD_SIZE``).
    :param seed: ``seed(*key)`` → this rank's seed of ``key`` (from the scenario seed).
    :param device: where batches go.
    """

    def __init__(self, sc: Scenario, share: int, seed: Callable[..., int], device: str):
        self.sc, self.st, self.share, self.seed, self.device = sc, sc.train, share, seed, device
        self._pools: dict[Task, ImagePool] = {}
        self._validation: dict[Task, list[tuple[torch.Tensor, torch.Tensor | None]]] = {}
        self._sha256: dict[str, list[str]] | None = None

    def draw(self, tasks: tuple[Task, ...], k: int) -> dict[Task, tuple]:
        """Step ``k``'s batch of each task: ``(images [b,3,c,c] float, labels [b,c,c] int64 | None,
        snr_db [b] float32)`` on the device; the same for every method (common random numbers)."""
        low, high = self.st.snr_db
        batches = {}
        for task in tasks:
            gen = torch.Generator().manual_seed(self.seed("step", k, task.value))
            if task not in self._pools:
                self._pools[task] = ImagePool(self.st.data[task.value])
            images, labels = self._pools[task].draw(gen, self.share, self.st.crop)
            snr = low + (high - low) * torch.rand(self.share, generator=gen)
            images = images.to(self.device, non_blocking=True).float().div_(255)
            if task is Task.SEGMENTATION:
                labels = labels.to(self.device, non_blocking=True)
            else:
                labels = None
            batches[task] = (images, labels, snr.to(self.device))
        return batches

    def validation_batches(self, task: Task) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """The validation set of ``task`` (``validation.data``) in batches of one image size."""
        if task not in self._validation:
            ds = registry.build("dataset", self.st.validation_data[task.value])
            self._validation[task] = [stack(b)[:2] for b in batches_by_size(ds, self.sc.batch_size)]
        return self._validation[task]

    def sha256(self) -> dict[str, list[str]]:
        """Content hashes of the training data per task (:func:`semsim.data.content_hash`): a
        checkpoint is not resumed on data that changed since (the run says so and asks for --fresh)."""
        if self._sha256 is None:
            self._sha256 = {task: [content_hash(registry.build("dataset", spec)) for spec in specs]
                            for task, specs in self.st.data.items()}
        return self._sha256


def estimate_seconds(sc: Scenario) -> float:
    """A rough training-time estimate on a 2-core CPU from each codec's ``cost_s_per_mpixel``:
    the training crops (``TRAIN_COST_FACTOR`` x a transmission) plus the validations."""
    st = sc.train
    val_mpix = {t: sum(h * w for h, w in image_sizes(registry.build("dataset", v))) / 1e6
                for t, v in st.validation_data.items()}
    validations = st.steps // st.validation_every + 2
    total = 0.0
    for spec in sc.methods:
        codec = build_train_codec(spec, sc.budgets[0], st)
        tasks, cost = len(codec.tasks), codec.cost_s_per_mpixel
        total += cost * (tasks * TRAIN_COST_FACTOR * st.steps * sc.batch_size * st.crop ** 2 / 1e6
                         + validations * len(st.validation_snr_db) * sum(val_mpix[t.value] for t in codec.tasks))
    return total
