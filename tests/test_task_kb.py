"""The task KB: free-text requests resolve to the right task or are refused, never confidently wrong;
unrelated requests are rejected; a request within the margin is a question, not a guess.
The requests come from tests/data/task_requests.yaml, apart from the KB's exemplars and calibration set."""
from pathlib import Path

import pytest
import yaml

from semsim.errors import ConfigError
from semsim.semantic.task_kb import MEMORY, AmbiguousTaskError, TaskError, TaskKB

REQUESTS = yaml.safe_load((Path(__file__).parent / "data" / "task_requests.yaml").read_text())
SETS = REQUESTS["sets"]
TASKS = ("reconstruction", "segmentation")
AMBIGUOUS = "work on the image"  # scores 0.555 / 0.550: well inside the margin
# Accuracy (resolved to the right task; a refusal counts as a miss) measured with the shipped memory:
# issue12 43/45 and 41/45, all sets pooled 76/80 and 74/80. The bound leaves 2-4 requests per task
# of slack for other CPUs or library versions nudging near-margin requests across it, and fails when
# more than about one request in seven needs a question: past that, typing the task name is easier.
MIN_ACCURACY = 0.85


@pytest.fixture(scope="module")
def kb():
    return TaskKB()


@pytest.fixture(scope="module")
def outcomes(kb):
    """``{(set, task): [(request, TaskMatch or TaskError)]}``, all requests embedded in one batch."""
    keys = [(name, task) for name in SETS for task in TASKS]
    flat = [r for key in keys for r in SETS[key[0]][key[1]]]
    results = iter(kb.resolve_many(flat, errors=False))
    return {key: [(r, next(results)) for r in SETS[key[0]][key[1]]] for key in keys}


def test_test_set_is_apart_from_memory():
    memory = yaml.safe_load(MEMORY.read_text())
    known = {t.lower() for ex in memory["tasks"].values() for t in ex}
    known |= {t.lower() for t in memory["out_of_scope"]}
    known |= {t.lower() for ex in memory["calibration"].values() for t in ex}
    mine = [r.lower() for name in ("issue12", "fresh") for task in TASKS for r in SETS[name][task]]
    assert not [r for r in mine if r in known]
    # the earlier set repeats a few exemplars on purpose (the paper's own examples)
    earlier = [r.lower() for task in TASKS for r in SETS["earlier"][task]] + [r.lower() for r in REQUESTS["reject"]]
    assert sum(r in known for r in earlier) <= 4
    assert all(len(SETS["issue12"][task]) >= 40 for task in TASKS)
    assert len(REQUESTS["reject"]) >= 10


@pytest.mark.parametrize("name", list(SETS))
@pytest.mark.parametrize("task", TASKS)
def test_no_confident_wrong_answer(outcomes, name, task):
    """Every request resolves to its own task or is refused: a wrong best task must be within the margin."""
    wrong = {r: (m.task, round(m.margin, 3)) for r, m in outcomes[name, task]
             if not isinstance(m, TaskError) and m.task != task}
    assert not wrong, wrong


@pytest.mark.parametrize("task", TASKS)
def test_accuracy(outcomes, task):
    for names in (["issue12"], list(SETS)):
        results = [m for name in names for _, m in outcomes[name, task]]
        right = sum(not isinstance(m, TaskError) and m.task == task for m in results)
        assert right / len(results) >= MIN_ACCURACY, (names, right, len(results))


def test_unrelated_and_near_miss_requests_are_rejected(kb):
    accepted = {}
    for request, m in zip(REQUESTS["reject"], kb.resolve_many(REQUESTS["reject"], errors=False)):
        if isinstance(m, TaskError):
            assert "known tasks: 'reconstruction', 'segmentation'" in str(m)
        else:
            accepted[request] = m
    assert not accepted, accepted


def test_margin_is_fitted_on_the_calibration_set(kb):
    """The value the docstring and docs/design.md state, and the calibration set passes both rules."""
    assert kb.margin == pytest.approx(0.061, abs=0.001)
    calibration = kb.calibration
    for task in TASKS:
        assert all(m.task == task and m.margin > kb.margin for m in kb.resolve_many(calibration[task]))
    assert all(isinstance(m, TaskError) for m in kb.resolve_many(calibration["reject"], errors=False))
    assert TaskKB(margin=0.0).margin == 0.0


def test_ambiguous_request_names_both_tasks(kb):
    scores = kb.scores(AMBIGUOUS)
    assert abs(scores["reconstruction"] - scores["segmentation"]) < kb.margin / 2
    with pytest.raises(AmbiguousTaskError) as e:
        kb.resolve(AMBIGUOUS, force="--task {task}")
    msg = str(e.value)
    assert isinstance(e.value, ConfigError) and isinstance(e.value, TaskError) and "\n" not in msg
    for task in TASKS:
        assert f"{task} {scores[task]:.3f}" in msg and f"'--task {task}'" in msg
    assert f"margin {kb.margin:.3f}" in msg
    assert {t for t, _ in e.value.candidates} == set(TASKS)
    with pytest.raises(AmbiguousTaskError, match="'task: segmentation'"):  # the scenario key by default
        kb.resolve(AMBIGUOUS)


def test_scenario_request_gets_the_same_refusal_and_a_task_name_bypasses_it():
    import semsim

    budget = semsim.Budget("cbr", 1 / 16)
    with pytest.raises(ConfigError, match="is ambiguous: .*'task: reconstruction' or 'task: segmentation'|"
                                          "is ambiguous: .*'task: segmentation' or 'task: reconstruction'"):
        semsim.build_codec({"name": "semantic", "request": AMBIGUOUS, "meta": True}, budget=budget)
    codec = semsim.build_codec({"name": "semantic", "request": "Segmentation", "meta": True}, budget=budget)
    assert codec.task.value == "segmentation"


def test_scores_are_cosine_similarities(kb):
    m = kb.resolve("label every pixel")
    assert m.task == "segmentation" and m.score == pytest.approx(1.0, abs=1e-4)  # an exemplar itself
    assert set(m.scores) == {"reconstruction", "segmentation"}
    assert all(-1.0 <= s <= 1.0 for s in m.scores.values())
    assert m.margin == pytest.approx(m.scores["segmentation"] - m.scores["reconstruction"])
    assert 0.0 < kb.threshold < 1.0
    assert kb.resolve_many(["label every pixel"]) == [m]


def test_both_ends_derive_the_same_instruction(kb):
    rx = TaskKB()
    requests = SETS["issue12"]["reconstruction"][:5] + SETS["issue12"]["segmentation"][:5]
    def decisions(ends):
        return [str(m) if isinstance(m, TaskError) else m for m in ends.resolve_many(requests, errors=False)]

    assert decisions(kb) == decisions(rx)


def test_empty_request(kb):
    with pytest.raises(TaskError, match="known tasks"):
        kb.resolve("  ")
    assert isinstance(kb.resolve_many(["", "label every pixel"], errors=False)[0], TaskError)


def test_docstring_example():
    import doctest

    import semsim.semantic.task_kb as mod

    result = doctest.testmod(mod)
    assert result.attempted > 0 and result.failed == 0
