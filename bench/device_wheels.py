"""What `python -m bench.gpu_check` needs on the GPU machine that its image lacks, carried as wheels.

The GPU machine runs its own python3 (3.12) with torch 2.11 and transformers 5.17 and reaches no package
index. `prepare()` finds, from this environment, which of the project's own requirements the script imports
(its steps included), walks their requirements (environment markers evaluated for the device's Python 3.12
on Linux x86-64) and keeps those the device image does not hold (`DEVICE_PACKAGES`, the image's package list
as recorded in the device tool's KINDS.md, 2026-11-17): a requirement of a package the image already holds
is that package's business there, not ours. It downloads them for CPython 3.12 on x86-64 (the flags of the
device README) into `.whl/`, which the device copy takes (`carry: [".whl"]`), and prints the command to run
there.

`rehearse()` runs the script, before any GPU minute is spent, in a virtual environment under /tmp that holds
the image's versions of what the script uses (transformers 5.17, huggingface_hub 1.33, ...) and the carried
distributions at the carried versions, installed the way the device command installs them (`--target` a
folder on PYTHONPATH), with `--device cpu --emulate --quick`. It runs on this machine's Python 3.11 with its
torch 2.13 CPU build, the one on disk (a CPU torch for 3.12 cannot be had here), so it checks the packages'
versions and APIs, not the device's interpreter or torch.
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["DEVICE_PACKAGES", "DEVICE_VERSIONS", "device_command", "missing_on_device", "prepare", "rehearse"]

REPO_ROOT = Path(__file__).resolve().parents[1]

# The GPU image's packages (device tool, KINDS.md, "Python packages already there", read 2026-11-17).
DEVICE_PACKAGES = frozenset(
    """
    absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch
    build certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-
    bindings cuda-core cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops
    equinox etils execnet filelock flatbuffers flax fonttools formulaic frozenlist fsspec gpytorch
    grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna imageio iniconfig
    interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver lazy-
    loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown markdown-it-py
    markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict multipledispatch mypy-
    extensions nanobind narwhals networkx ninja numba numba-cuda numpy numpyro nvidia-ml-py onnx onnx-ir
    onnxruntime onnxscript opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-
    checkpoint packaging pandas pathspec patsy peft pillow pip pluggy portalocker prometheus-client
    propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments pyparsing pyproject-hooks pyre-
    extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist python-
    dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core
    scikit-image scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools shellingham
    simplejson six sortedcontainers statsmodels sympy tabulate tensorboard tensorboard-data-server
    tensorstore threadpoolctl tifffile tiktoken timm tokenizers toolz torch torchaudio torchdiffeq
    torch-geometric torchmetrics torchvision tqdm transformers treescope triton typer typing-extensions
    typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl zipp
    """.split()
)
# Versions the image reports for what the script uses (KINDS.md's pip list); the rest of the rehearsal
# environment takes this project's pins.
DEVICE_VERSIONS = {
    "transformers": "5.17.0",
    "huggingface-hub": "1.33.0",
    "accelerate": "1.15.0",
    "safetensors": "0.8.0",
    "tokenizers": "0.23.2",
    "sentence-transformers": "6.0.1",
}
PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
)
DEVICE_COMMAND = (
    "python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "
    ".whl/*.whl && export PYTHONPATH=/tmp/site || exit; python3 -m bench.gpu_check --out $OUT/gpu_check"
)


def _name(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def imported_distributions() -> set[str]:
    """Distributions whose modules the script and its steps import, read in a fresh interpreter here."""
    code = (
        "import sys, json, importlib.metadata as m; sys.path.insert(0, '.');"
        "import bench.gpu_check, trainers.pretrain, trainers.recipes;"
        "d = m.packages_distributions();"
        "print(json.dumps(sorted({x for name in list(sys.modules) for x in d.get(name.split('.')[0], [])})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    return {_name(d) for d in json.loads(done.stdout.strip().splitlines()[-1])} - {"rexbert"}


def _requirements(distribution: str) -> list[str]:
    """What `distribution` requires on the device (no extras; markers evaluated for Python 3.12)."""
    from packaging.requirements import Requirement

    environment = {"python_version": "3.12", "python_full_version": "3.12.3", "extra": ""}
    found = []
    for text in metadata.requires(distribution) or []:
        requirement = Requirement(text)
        if requirement.marker is None or requirement.marker.evaluate(environment):
            found.append(_name(requirement.name))
    return found


def missing_on_device() -> dict[str, str]:
    """{distribution: version here} for what the script needs and the device image lacks: the project's
    requirements it imports, and their requirements, not looking inside those the image holds."""
    pending = sorted(set(_requirements("rexbert")) & imported_distributions())
    seen, missing = set(), {}
    while pending:
        name = pending.pop()
        if name in seen or name in DEVICE_PACKAGES:
            continue
        seen.add(name)
        missing[name] = metadata.version(name)
        pending += _requirements(name)
    return dict(sorted(missing.items()))


def _download(requirements: list[str], folder: Path) -> None:
    platforms = [option for platform in PLATFORMS for option in ("--platform", platform)]
    command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
    command += ["--python-version", "3.12", "--implementation", "cp", *platforms, "-d", str(folder)]
    subprocess.run([*command, *requirements], check=True)


def prepare(folder: str | Path = REPO_ROOT / ".whl") -> dict:
    """Download what the device lacks into `folder`; returns {wheel file: bytes}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    missing = missing_on_device()
    _download([f"{name}=={version}" for name, version in missing.items()], folder)
    wheels = {p.name: p.stat().st_size for p in sorted(folder.glob("*.whl"))}
    print(f"{len(wheels)} wheels the device image lacks, {sum(wheels.values()) / 2**20:.1f} MiB in {folder}:")
    for name, size in wheels.items():
        print(f"  {name}  {size / 1024:.0f} KiB")
    print(f"device command (carry {folder.name}):\n  {DEVICE_COMMAND}")
    return wheels


def device_command() -> str:
    return DEVICE_COMMAND


def rehearse(folder: str | Path = REPO_ROOT / ".whl", venv: str | Path | None = None) -> int:
    """Run `gpu_check --device cpu --emulate --quick` with the image's package versions (see the module
    docstring); returns its exit status."""
    venv = Path(venv or tempfile.mkdtemp(prefix="rexbert-device-"))
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "torch==2.13.0"], check=True)
    image = [f"{name}=={version}" for name, version in DEVICE_VERSIONS.items()]
    shared = ["numpy", "pandas", "pyarrow", "psutil", "pyyaml", "filelock", "xxhash", "fsspec", "matplotlib"]
    subprocess.run([*pip, *image, *shared], check=True)
    # the carried distributions at the carried versions, for this interpreter (the device's are for 3.12),
    # installed as the device command installs them: --target a folder put on PYTHONPATH
    carried = [re.match(r"([^-]+)-([^-]+)-", p.name).groups() for p in sorted(Path(folder).glob("*.whl"))]
    site = venv / "carried"
    pins = [f"{name}=={version}" for name, version in carried]
    subprocess.run([*pip, "--no-deps", "--upgrade", "--target", str(site), *pins], check=True)
    command = [str(python), "-m", "bench.gpu_check", "--device", "cpu", "--emulate", "--quick"]
    command += ["--out", str(venv / "gpu_check")]
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    print(f"rehearsal in {venv}: {' '.join(command)}", flush=True)
    return subprocess.run(command, cwd=REPO_ROOT, env=env).returncode
