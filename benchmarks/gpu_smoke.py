"""GPU smoke check: run the test suite's device-aware tests on CUDA (CI never has a GPU).

Tests that take the ``device`` fixture are parametrised with ``cuda:0`` when ``SEMSIM_TEST_CUDA=1``;
this script sets it and runs only those CUDA variants. Usage::

    python benchmarks/gpu_smoke.py            # exits 0 with a note when no CUDA device exists
"""
import os
import subprocess
import sys

import torch


def main() -> int:
    if not torch.cuda.is_available():
        print("gpu_smoke: no CUDA device here; nothing to run")
        return 0
    print(f"gpu_smoke: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    env = dict(os.environ, SEMSIM_TEST_CUDA="1")
    return subprocess.call([sys.executable, "-m", "pytest", "-q", "-k", "cuda", "tests"], env=env)


if __name__ == "__main__":
    sys.exit(main())
