"""The README's commands are the ones CI runs, and the docstring examples run."""
import doctest
import re

from conftest import REPO


def _code_blocks(text):
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def test_ci_runs_exactly_the_readme_setup_and_test_commands():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    blocks = _code_blocks(readme)
    setup, test, main_job = (b.strip() for b in blocks[:3])
    assert setup.startswith("python3 -m venv") and "torch==2.14.1 torchvision==0.29.1" in setup
    assert test == "python -m pytest"
    assert main_job == "semsim run scenarios/quickstart.yaml"
    ci_lines = [line.strip() for line in ci.splitlines() if line.strip() and not line.startswith("#")]
    assert setup in ci_lines and test in ci_lines


def test_docstring_examples_run():
    import semsim.channels

    result = doctest.testmod(semsim.channels, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
