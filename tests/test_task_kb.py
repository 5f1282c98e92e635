"""The task KB: free-text requests resolve to the right task; unrelated requests are rejected.
The requests come from tests/data/task_requests.yaml, apart from the KB's exemplars and calibration set."""
from pathlib import Path

import pytest
import yaml

from semsim.semantic.task_kb import MEMORY, TaskError, TaskKB

REQUESTS = yaml.safe_load((Path(__file__).parent / "data" / "task_requests.yaml").read_text())


@pytest.fixture(scope="module")
def kb():
    return TaskKB()


def test_test_set_is_apart_from_memory():
    memory = yaml.safe_load(MEMORY.read_text())
    known = {t.lower() for ex in memory["tasks"].values() for t in ex}
    known |= {t.lower() for t in memory["out_of_scope"]}
    known |= {t.lower() for ex in memory["calibration"].values() for t in ex}
    # a few requests coincide with exemplars on purpose (the paper's own examples); most must not
    tests = [r.lower() for key in REQUESTS for r in REQUESTS[key]]
    assert sum(r in known for r in tests) <= 4
    assert len(REQUESTS["reconstruction"]) >= 20 and len(REQUESTS["segmentation"]) >= 20
    assert len(REQUESTS["reject"]) >= 10


@pytest.mark.parametrize("task", ["reconstruction", "segmentation"])
def test_paraphrases_resolve_to_their_task(kb, task):
    wrong = {}
    for request in REQUESTS[task]:
        try:
            got = kb.resolve(request).task
        except TaskError as e:
            got = f"rejected: {e}"
        if got != task:
            wrong[request] = got
    assert not wrong, wrong


def test_unrelated_and_near_miss_requests_are_rejected(kb):
    accepted = {}
    for request in REQUESTS["reject"]:
        try:
            accepted[request] = kb.resolve(request)
        except TaskError as e:
            assert "known tasks: 'reconstruction', 'segmentation'" in str(e)
    assert not accepted, accepted


def test_scores_are_cosine_similarities(kb):
    m = kb.resolve("label every pixel")
    assert m.task == "segmentation" and m.score == pytest.approx(1.0, abs=1e-4)  # an exemplar itself
    assert set(m.scores) == {"reconstruction", "segmentation"}
    assert all(-1.0 <= s <= 1.0 for s in m.scores.values())
    assert 0.0 < kb.threshold < 1.0


def test_both_ends_derive_the_same_instruction(kb):
    rx = TaskKB()
    for request in REQUESTS["reconstruction"][:5] + REQUESTS["segmentation"][:5]:
        assert kb.resolve(request) == rx.resolve(request)


def test_empty_request(kb):
    with pytest.raises(TaskError, match="known tasks"):
        kb.resolve("  ")


def test_docstring_example():
    import doctest

    import semsim.semantic.task_kb as mod

    result = doctest.testmod(mod)
    assert result.attempted > 0 and result.failed == 0
