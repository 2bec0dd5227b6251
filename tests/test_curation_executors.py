"""The same curation step lists on datatrove's other executors give the same corpus as the local one.

Slurm: stub `sbatch`, `srun` and `scontrol` commands on PATH stand in for a cluster. The stub `sbatch`
runs each job array at once, task by task, with the environment Slurm would set (array index, job id,
`--export` variables), so the dependency chain datatrove submits runs in order and the last job writes the
report. Ray: a local Ray runtime (the `ray` extra), when installed.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curation.config import config_from_dict
from curation.run import run_pipeline
from rexbert_core.sample_corpus import write_sample_corpus

SBATCH = """
    import itertools, os, re, subprocess, sys
    args, script = sys.argv[1:-1], sys.argv[-1]
    text = open(script).read()
    array = re.search(r"#SBATCH --array=(\\d+)-(\\d+)", text)
    first, last = (int(array.group(1)), int(array.group(2))) if array else (0, 0)
    state = os.path.join(os.path.dirname(__file__), "job_counter")
    job = int(open(state).read()) + 1 if os.path.exists(state) else 1
    open(state, "w").write(str(job))
    env = dict(os.environ, SLURM_JOB_ID=str(job), SLURM_ARRAY_JOB_ID=str(job), SLURM_NODELIST="localhost")
    for arg in args:
        if arg.startswith("--export="):
            env.update(p.split("=", 1) for p in arg[len("--export="):].split(",") if "=" in p)
    with open(os.path.join(os.path.dirname(__file__), "jobs.log"), "a") as log:
        log.write(" ".join(args) + "\\n")
        for index in range(first, last + 1):
            env["SLURM_ARRAY_TASK_ID"] = str(index)
            done = subprocess.run(["bash", script], env=env, stdout=log, stderr=log)
            if done.returncode:
                sys.exit(f"stub sbatch: job {job} task {index} failed")
    print(f"Submitted batch job {job}")
"""
SRUN = """
    import os, sys
    args = sys.argv[1:]
    while args and args[0].startswith("-"):
        option = args.pop(0)
        if option in ("-n", "-N") and args:
            args.pop(0)
    os.execvp(args[0], args)
"""
SCONTROL = """
    import sys
    print("localhost")
"""
SQUEUE = """
    import os, sys
    queue = os.path.join(os.path.dirname(__file__), "queue")  # the job ids a test says are still queued
    print(open(queue).read() if os.path.exists(queue) else "", end="")
"""


def write_stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(0o755)


def sample_config(root: Path, output: str, **extra) -> dict:
    corpus = root / "data"
    if not corpus.is_dir():
        write_sample_corpus(corpus)
    return {
        "output_dir": str(root / output),
        "tasks": 2,
        "workers": 1,
        "progress": False,
        "sources": [
            {"name": n, "path": str(corpus / f"{n}.jsonl")} for n in ("listing", "review", "general")
        ],
        "stages": {"classifier": {"enabled": False}, "language": {"enabled": False}},
        **extra,
    }


def corpus_rows(output: Path) -> list[tuple]:
    rows = []
    for shard in sorted((output / "corpus").glob("*.parquet")):
        rows += [(r["id"], r["text"], r["source"]) for r in pq.read_table(shard).to_pylist()]
    return sorted(rows)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("executors")
    report = run_pipeline(config_from_dict(sample_config(root, "local")))
    assert report["totals"]["docs_kept"] > 100
    return root


def test_slurm_executor_with_stub_commands(local_run, monkeypatch):
    stubs = local_run / "stub-bin"
    stubs.mkdir()
    write_stub(stubs, "sbatch", SBATCH)
    write_stub(stubs, "srun", SRUN)
    write_stub(stubs, "scontrol", SCONTROL)
    write_stub(stubs, "squeue", SQUEUE)
    monkeypatch.setenv(
        "PATH", f"{stubs}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    )
    config = config_from_dict(
        sample_config(
            local_run,
            "slurm",
            executor={"kind": "slurm", "options": {"partition": "cpu", "time": "01:00:00"}},
        )
    )
    assert run_pipeline(config) is None  # submitted, not waited for
    jobs = (stubs / "jobs.log").read_text().splitlines()
    launched = [line for line in jobs if "RUN_OFFSET" in line]
    assert len(launched) == 8  # filter, exact find/filter, minhash buckets/cluster/filter, id check, report
    assert all("--dependency=afterok:" in line for line in launched[1:])  # each waits for the one before
    slurm, local = local_run / "slurm", local_run / "local"
    assert corpus_rows(slurm) == corpus_rows(local)
    reports = [json.loads((out / "report" / "report.json").read_text()) for out in (slurm, local)]
    assert reports[0]["totals"] == reports[1]["totals"] and reports[0]["stages"] == reports[1]["stages"]
    assert (slurm / "logs" / "filter" / "launch_script.slurm").read_text().count(
        "launch_pickled_pipeline"
    ) == 1

    # the jobs hold the directory's lock: refused while squeue lists one of them, free once none is listed
    from rexbert_core.safe_outputs import DirectoryBusyError

    held = json.loads((slurm / ".rexbert.lock").read_text())
    assert len(held["slurm_jobs"]) == 8  # one job array per step list
    last = held["slurm_jobs"][-1]
    (stubs / "queue").write_text(f"{last}\n12345\n")
    with pytest.raises(
        DirectoryBusyError, match=rf"is in use by Slurm job\(s\) {last} .*wait for them or scancel"
    ):
        run_pipeline(config)
    (stubs / "queue").write_text("")
    assert run_pipeline(config) is None  # the jobs are over: taken over, resubmitted (finished tasks skipped)


def test_slurm_executor_needs_partition_and_time(local_run):
    from rexbert_core.typed_config import ConfigError

    with pytest.raises(ConfigError, match=r"executor.options: the slurm executor needs \['time'\]"):
        config_from_dict(
            sample_config(local_run, "x", executor={"kind": "slurm", "options": {"partition": "cpu"}})
        )


def test_ray_executor_on_a_local_runtime(local_run):
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        config = config_from_dict(
            sample_config(local_run, "ray", executor={"kind": "ray", "options": {"mem_per_cpu_gb": 0.5}})
        )
        report = run_pipeline(config)
    finally:
        ray.shutdown()
    local = json.loads((local_run / "local" / "report" / "report.json").read_text())
    assert report["totals"] == local["totals"] and report["stages"] == local["stages"]
    assert corpus_rows(local_run / "ray") == corpus_rows(local_run / "local")


def test_tokenize_on_slurm_equals_tokenize_here(local_run, monkeypatch):
    """`rexbert tokenize --executor {kind: slurm, ...}`: one job array per source and the manifest job,
    submitted through the stub commands; the shards equal those of the local executor."""
    from modeling_rexbert.tokenization import train_bpe_tokenizer
    from rexbert.cli import main as rexbert
    from rexbert_core.token_shards import ShardsManifest, SourceTokens

    stubs = local_run / "stub-bin-tokenize"
    stubs.mkdir()
    for name, body in (("sbatch", SBATCH), ("srun", SRUN), ("scontrol", SCONTROL)):
        write_stub(stubs, name, body)
    texts = [row[1] for row in corpus_rows(local_run / "local")]
    train_bpe_tokenizer(texts, vocab_size=500).save_pretrained(local_run / "tokenizer")
    command = [
        "tokenize",
        "--tokenizer",
        str(local_run / "tokenizer"),
        "--source",
        f"ecom={local_run}/local/corpus/*.parquet",
    ]
    assert rexbert([*command, "--output", str(local_run / "tokens-here"), "--workers", "2"]) == 0
    monkeypatch.setenv(
        "PATH", f"{stubs}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    )
    slurm = "{kind: slurm, options: {partition: cpu, time: '01:00:00'}}"
    assert rexbert([*command, "--output", str(local_run / "tokens-slurm"), "--executor", slurm]) == 0
    launched = [line for line in (stubs / "jobs.log").read_text().splitlines() if "RUN_OFFSET" in line]
    assert len(launched) == 2 and "--dependency=afterok:" in launched[1]  # the source, then the manifest
    here, there = (ShardsManifest.load(local_run / d) for d in ("tokens-here", "tokens-slurm"))
    assert here.sources["ecom"].documents == there.sources["ecom"].documents > 100
    total = here.sources["ecom"].tokens
    ids = [SourceTokens(local_run / d, "ecom").tokens(0, total) for d in ("tokens-here", "tokens-slurm")]
    assert total == there.sources["ecom"].tokens and (ids[0] == ids[1]).all()


def test_a_lock_handed_to_slurm_jobs_without_squeue_is_refused(tmp_path, monkeypatch):
    """Where squeue cannot say whether the jobs still run (not on the cluster), the directory stays theirs."""
    from rexbert_core.safe_outputs import DirectoryBusyError, DirectoryLock

    (tmp_path / ".rexbert.lock").write_text(json.dumps({"slurm_jobs": ["41", "42"], "started": "earlier"}))
    monkeypatch.setenv("PATH", str(tmp_path / "no-commands"))
    with pytest.raises(
        DirectoryBusyError, match=r"handed to Slurm job\(s\) 41, 42 on earlier, and squeue cannot"
    ):
        DirectoryLock(tmp_path).acquire()
    assert json.loads((tmp_path / ".rexbert.lock").read_text())["slurm_jobs"] == ["41", "42"]
