"""python -m harness bench --profile scaling  -- data-parallel step time at W = 1 and 2 workers.

    python -m harness bench --profile scaling --report      # `make scaling`: ~3-4 min, 2 cores
    python -m harness bench --profile scaling --impl numpy --size large

What: full-batch training steps of every data-parallel engine (impls/parallel/: numpy + MPI,
torch + gloo, jax over a Mesh as W processes or as W devices of one process) at W = 1 and 2
workers, ONE thread per worker, each worker pinned to a core of its own, at the article's tiny
size and at a compute-bound one (large: 2048 x 256 -> 2048, ~4.3 GFLOP a step). W = 1 starts
through the same launcher as W = 2 (mpiexec -n 1, torchrun with one process), so both pay the
same set-up and run under the same rules; jax's W = 1 (one process, one device) is the
baseline of both its W = 2 launches. The all-reduce is timed apart where the engine allows
(impls/parallel/scaling.py; the report says how for each engine).

How: ROUNDS rounds; in each, every launch (one engine at one W, all sizes in it: one start-up)
runs once, in a random order (seeded, recorded), so a slow minute of a shared machine hits
every configuration alike. A configuration's value in a round is the median of its plain
blocks; the rows (harness/bench/scaling_rows.py) give the median over rounds with a 95%
interval, and the speed-up t(W=1) / t(W) paired by round. After each round both tables are
rewritten atomically: an interrupted run keeps the rounds it finished (no --resume: start
again). A launch that fails marks its configuration "failed" with the error and is not
retried; an engine that cannot run here is "unavailable" with the reason.

GPUs (planned, untested: no machine with two GPUs has run it): where nvidia-smi lists GPUs,
W = 1, 2, 4, ... up to their count, torch + NCCL (one GPU per rank) at tiny and huge; the
numpy and jax engines' GPU rows say why they cannot run.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from dataclasses import dataclass

from harness.bench.profiles import HUGE, LARGE, TINY
from harness.bench.scaling_rows import launch_label, scaling_rows
from harness.codec import to_dict
from harness.config import Config
from harness.errors import UsageError
from harness.measure import machine
from harness.measure.launch import REPO
from harness.measure.spec import Size
from harness.store import (
    SCALING,
    SCALING_COLUMNS,
    SCALING_SAMPLE_COLUMNS,
    SCALING_SAMPLES,
    RunFolder,
    ScalingKey,
)
from impls import parallel
from impls.parallel.scaling import time_many

# (impl, mode, jax launch) of every engine; jax twice: W processes, and W devices in one.
ENGINES = (("numpy", "default", ""), ("torch", "eager", ""), ("jax", "jit", "processes"),
           ("jax", "jit", "devices"))


@dataclass(frozen=True)
class ScalingProfile:
    name: str = "scaling"
    sizes: tuple[Size, ...] = (TINY, LARGE)  # on the CPU: the article's, and compute-bound
    gpu_sizes: tuple[Size, ...] = (TINY, HUGE)  # on GPUs: huge is the matmul-bound one there
    cpu_workers: tuple[int, ...] = (1, 2)
    dtype: str = "float32"
    loss: str = "bce"
    lr: float = 0.01  # as the other profiles (profiles.py says why)
    seed: int = 0  # data, init, and the order of launches in each round
    rounds: int = 6  # 6 paired ratios: the interval [min, max] covers the median at 97%
    warmup_steps: int = 3
    blocks: int = 3  # plain blocks per size per launch (and as many profiled ones)
    # steps per block: ~5-15 ms of tiny steps for numpy at W = 1, ~0.2 s of large ones
    block_steps: tuple[tuple[str, int], ...] = (("tiny", 50), ("large", 3), ("huge", 10))
    threads_per_worker: int = 1
    time_limit_s: float = 180.0  # one launch, all its sizes


PROFILE = ScalingProfile()


def plan(profile: ScalingProfile, impls: list[str] | None, sizes: list[str] | None,
         devices: list[str] | None, gpu_count: int, usable_cores: int) -> list[dict]:
    """The configurations, as rows of scaling.csv before timing (status set where it is
    already known that one cannot run: "unavailable", with the reason)."""
    known = {name for name, _, _ in ENGINES}
    for flag, given, allowed in (("--impl", impls, known),
                                 ("--size", sizes, {s.name for s in (*profile.sizes,
                                                                     *profile.gpu_sizes)}),
                                 ("--device", devices, {"cpu", "gpu"})):
        if bad := sorted(set(given or ()) - allowed):
            raise UsageError(f"{flag} {bad[0]!r} is not in the scaling profile; "
                             f"expected one of {', '.join(sorted(allowed))}")
    configs = []
    for device in devices or ("cpu", "gpu"):
        if device == "gpu" and gpu_count == 0 and not devices:
            continue  # no GPU here: the CPU part only (meta.json records that none was seen)
        worker_counts = profile.cpu_workers if device == "cpu" else _powers_of_two(gpu_count)
        for size in profile.sizes if device == "cpu" else profile.gpu_sizes:
            if sizes and size.name not in sizes:
                continue
            for impl, mode, jax_launch in ENGINES:
                if impls and impl not in impls:
                    continue
                for w in worker_counts:
                    if impl == "jax" and w == 1 and jax_launch == "devices":
                        continue  # one W = 1 baseline for both jax launches
                    configs.append(_config(profile, impl, mode, jax_launch, device, size, w,
                                           gpu_count, usable_cores))
    if not configs:
        raise UsageError("the scaling profile has nothing to run with these options")
    return configs


def _powers_of_two(n: int) -> tuple[int, ...]:
    return tuple(2 ** i for i in range(n.bit_length())) or (1,)


def _config(profile, impl, mode, jax_launch, device, size, w, gpu_count, usable_cores) -> dict:
    row = {"impl": impl, "mode": mode, "launch": launch_label(impl, w, jax_launch),
           "device": device, "dtype": profile.dtype, "size": size.name, "workers": str(w),
           "n_samples": size.n_samples, "n_features": size.n_features,
           "n_hidden": size.n_hidden, "block_steps": dict(profile.block_steps)[size.name],
           "threads_per_worker": profile.threads_per_worker}
    if device == "cpu" and w > usable_cores:
        why = f"{w} workers need {w} usable cores (one thread each); {usable_cores} here"
    elif device == "gpu" and gpu_count == 0:
        why = "nvidia-smi lists no GPU"
    else:
        ok, why = parallel.available(impl, device, mode, w)
        why = "" if ok else why
    return {**row, "status": "unavailable", "reason": why} if why else row


def launches(configs: list[dict]) -> list[tuple]:
    """(impl, mode, launch, device, workers): one launch each, every size inside it."""
    runnable = [_launch_of(c) for c in configs if c.get("status") != "unavailable"]
    return list(dict.fromkeys(runnable))


def run(args, impls: list[str] | None, sizes: list[str] | None,
        devices: list[str] | None) -> RunFolder:
    """`bench --profile scaling`: a new run folder with scaling.csv and scaling_samples.csv
    (impls, sizes, devices: the command line's --impl, --size, --device lists, or None)."""
    for name in ("mode", "dtype", "threads", "time_limit", "wall_budget"):
        if getattr(args, name, None) not in (None, False):
            raise UsageError(f"--{name.replace('_', '-')} is not used by the scaling profile "
                             "(one thread per worker, float32, a fixed number of rounds)")
    gpus = machine.gpus()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    configs = plan(PROFILE, impls, sizes, devices, len(gpus),
                   usable or 1)
    order_seed = PROFILE.seed
    meta = {"kind": "scaling", "profile": to_dict(PROFILE), "options": {
        k: v for k, v in vars(args).items() if not k.startswith("_")},
        "settings": {"loss": PROFILE.loss, "lr": PROFILE.lr, "activation": "sigmoid",
                     "dtype": PROFILE.dtype, "rounds": PROFILE.rounds, "order_seed": order_seed,
                     "threads_per_worker": PROFILE.threads_per_worker, "pinned": True},
        "plan": configs, "machine": machine.collect(str(REPO)), "launches": {}, "runs": []}
    try:
        folder = RunFolder.create(args.out, PROFILE.name, meta, bench_tables=False)
    except PermissionError as exc:
        raise UsageError(f"--out {args.out}: cannot write there ({exc.strerror})") from None
    with folder.lock():
        _sweep(folder, configs, random.Random(order_seed))
    return folder


def _sweep(folder: RunFolder, configs: list[dict], rng: random.Random) -> None:
    started = time.time()
    folder.meta["runs"].append({"started_utc": machine.utc_now().isoformat(timespec="seconds")})
    todo, samples, failed = launches(configs), [], {}
    sizes = {c["size"]: c for c in configs if c.get("status") != "unavailable"}
    problems = {size: _problem(c) for size, c in sizes.items()}  # once per size
    print(f"run folder: {folder.path}  ({len(todo)} launches x {PROFILE.rounds} rounds)")
    try:
        for r in range(PROFILE.rounds):
            order = [x for x in rng.sample(todo, len(todo)) if x not in failed]
            for position, launch in enumerate(order):
                mine = [c for c in configs if _launch_of(c) == launch]
                try:
                    results = _time(launch, mine, problems)
                except (parallel.WorkerError, parallel.Unavailable, OSError) as exc:
                    failed[launch] = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
                    print(f"round {r + 1}: {_name(launch)} failed: {failed[launch]}")
                    continue
                for c, res in zip(mine, results, strict=True):
                    samples += _samples(c, res, r, position)
                    folder.meta["launches"].setdefault(_name(launch), _used(res))
            _write(folder, configs, samples, failed)
            print(f"round {r + 1}/{PROFILE.rounds} done ({time.time() - started:.0f} s)", flush=True)
    except KeyboardInterrupt:
        print(f"\ninterrupted: {folder.path} keeps the rounds it finished")
        raise
    finally:
        folder.meta["runs"][-1].update(
            finished_utc=machine.utc_now().isoformat(timespec="seconds"),
            seconds=round(time.time() - started, 1))
        with contextlib.suppress(OSError):
            folder.save_meta()
    print(f"done in {time.time() - started:.0f} s: {folder.path}")


def _launch_of(c: dict) -> tuple:
    return (c["impl"], c["mode"], c["launch"], c["device"], int(c["workers"]))


def _name(launch: tuple) -> str:
    impl, mode, how, device, w = launch
    return f"{impl}/{mode} {how} {device} W={w}"


def _problem(c: dict):
    cfg = Config(dataset="teacher", n_samples=c["n_samples"], n_features=c["n_features"],
                 n_hidden=c["n_hidden"], n_outputs=1, loss=PROFILE.loss, lr=PROFILE.lr,
                 seed=PROFILE.seed, dtype=PROFILE.dtype)
    return cfg.problem()


def _time(launch: tuple, mine: list[dict], problems: dict) -> list[dict]:
    impl, mode, how, device, workers = launch
    jobs = [(problems[c["size"]][1], problems[c["size"]][2], problems[c["size"]][0],
             c["block_steps"]) for c in mine]
    return time_many(
        impl, mode, device, workers, jobs, loss=PROFILE.loss, lr=PROFILE.lr,
        dtype=PROFILE.dtype, warmup_steps=PROFILE.warmup_steps, blocks=PROFILE.blocks,
        threads_per_worker=PROFILE.threads_per_worker, pin=True,
        jax_launch=how if impl == "jax" and workers > 1 else None,
        timeout_s=PROFILE.time_limit_s)


def _samples(c: dict, res: dict, r: int, position: int) -> list[dict]:
    key = ScalingKey.of(c)._asdict()
    phases = {p: res[p] for p in ("compute_s", "wait_s", "comm_s", "update_s")}
    rows = []
    for b, step in enumerate(res["step_s"]):
        row = {**key, "round": r, "position": position, "block": b, "seconds_per_step": step,
               "cpu_per_wall": res["cpu_per_wall"][b]}
        # a profiled block's phases beside the plain block of the same index
        row.update({p: v[b] if b < len(v) else None for p, v in phases.items()})
        rows.append(row)
    return rows


def _used(res: dict) -> dict:
    used = res["used"]
    return {"launcher": used.get("launcher"), "engine": used.get("engine"),
            "processes": used.get("processes"), "threads_per_worker": used.get("threads_per_worker"),
            "pinned": used.get("pinned"), "comm_method": res.get("comm_method"),
            "cores": [w.get("cores") for w in used.get("worker_info") or []],
            "worker_threads": [w.get("threads") for w in used.get("worker_info") or []]}


def _write(folder: RunFolder, configs: list[dict], samples: list[dict], failed: dict) -> None:
    """Samples first, scaling.csv (the rows readers use) last; both atomically."""
    by_key = {ScalingKey.of(c): failed[_launch_of(c)] for c in configs
              if _launch_of(c) in failed}
    rows = scaling_rows(configs, samples, by_key)
    for row in rows:
        used = folder.meta["launches"].get(_name(_launch_of(row)), {})
        row.update(processes=used.get("processes"), launcher=used.get("launcher"),
                   comm_method=used.get("comm_method"),
                   cores=" ".join(",".join(map(str, c or [])) for c in used.get("cores", [])))
    folder.write_table(SCALING_SAMPLES, SCALING_SAMPLE_COLUMNS, samples)
    folder.write_table(SCALING, SCALING_COLUMNS, rows)
    folder.save_meta()
