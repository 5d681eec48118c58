"""Benchmark profiles: which sizes, implementations, modes and budgets `bench` sweeps.

    python -m harness bench --profile quick      # seconds: for tests and a smoke run
    python -m harness bench --profile default    # under 3 minutes on a 2-core laptop (`make bench`)
    python -m harness bench --profile full       # every mode on every size, float64 too
    python -m harness bench --profile gpu        # GPU sizes and modes (`make gpu`)
    python -m harness bench --profile scaling    # data-parallel engines at W = 1, 2 workers
    python -m harness smoke                      # the SMOKE profile: every GPU code path once

Each profile sweeps problem sizes from overhead-bound (the article's scale: a
couple of inputs, 8 hidden units, where per-call dispatch cost decides the
ranking) to compute-bound (thousands of hidden units, where matmul throughput
decides it), so the tables show where one framework overtakes another.
"""

from __future__ import annotations

from harness.bench.profile import RUN_KINDS, Entry, Profile, settings  # noqa: F401  (public)
from harness.config import preset
from harness.measure.spec import Size, Tta
from harness.measure.timing import Policy
from impls.contract import ContractError

# Targets: both presets reach them from the shared init in float32, moons (full
# batch, lr 1.0) in ~1500 epochs: 0.87 comes within 100 epochs and then plateaus,
# 0.95 needs the slow part of training, where step speed decides; breast cancer
# (batches of 32, lr 0.1) in ~10 epochs, where per-batch overhead decides.
MOONS = Tta(preset("moons"), target=0.95, max_epochs=4000, eval_every=10)
CANCER = Tta(preset("breast_cancer"), target=0.97, max_epochs=200, eval_every=1)

TINY = Size("tiny", 64, 2, 8)  # the article's scale: dispatch overhead is everything
SMALL = Size("small", 256, 16, 64)
MEDIUM = Size("medium", 1024, 64, 512)
LARGE = Size("large", 2048, 256, 2048)  # ~4.3 GFLOP a step: matmul-bound on a CPU
XLARGE = Size("xlarge", 4096, 512, 4096)  # ~34 GFLOP: too slow for a 2-core default run
HUGE = Size("huge", 16384, 1024, 8192)  # ~0.55 TFLOP: only a GPU makes this a benchmark

PROFILES: dict[str, Profile] = {
    # For tests and a smoke run: two sizes, short budgets, no compile modes
    # (a cold torch.compile alone takes longer than the whole profile should).
    "quick": Profile(
        name="quick", sizes=(TINY, SMALL),
        entries=(Entry("numpy", "default"), Entry("sklearn", "default"),
                 Entry("torch", "eager"), Entry("jax", "jit")),
        policy=Policy(warmup_steps=3, sample_s=0.005, samples_per_block=2, rounds=5),
        time_limit_s=60.0, peak_n=512,
        tta=(Tta(preset("moons"), target=0.85, max_epochs=500, eval_every=10),),
        tta_entries=(Entry("numpy", "default"),),
    ),
    # `make bench`: must finish in under 3 minutes on 2 cores, check and report included.
    # Every framework's default mode at all four sizes. A cold torch.compile costs
    # 15-35 s per cell on 2 cores, so it runs at the two ends only: the article's size,
    # where removing dispatch overhead is what compiling could buy, and the largest,
    # where fusing the elementwise work is; never with a (second-compile) memory pass.
    # jax nojit only at tiny: it exists to show dispatch overhead; at larger sizes it
    # runs jit's matmuls. Memory at the largest size, where arrays, not the framework's
    # own footprint, dominate (one process per series: the 3-minute budget). TTA for each
    # framework's default mode.
    "default": Profile(
        name="default", sizes=(TINY, SMALL, MEDIUM, LARGE),
        entries=(Entry("numpy", "default"), Entry("sklearn", "default"),
                 Entry("torch", "eager"), Entry("torch", "compile", sizes=("tiny", "large")),
                 Entry("jax", "jit"), Entry("jax", "nojit", sizes=("tiny",))),
        # Blocks of one 10 ms sample, each next to NumPy's: many short pairs (docs/timing.md);
        # 10 rounds, then more for the series still wider than +-5%, up to 60 rounds or 20 s
        # of rounds per size.
        policy=Policy(warmup_steps=10, sample_s=0.010, samples_per_block=1, rounds=10,
                      max_rounds=60, target=0.05, rounds_s=20.0),
        time_limit_s=120.0, peak_n=2048,
        tta=(MOONS, CANCER),
        tta_entries=(Entry("numpy", "default"), Entry("sklearn", "default"),
                     Entry("torch", "eager"), Entry("jax", "jit")),
    ),
    # Everything on the CPU: all modes, all sizes, float64 beside float32, longer budgets.
    "full": Profile(
        name="full", sizes=(TINY, SMALL, MEDIUM, LARGE, XLARGE),
        entries=(Entry("numpy", "default"), Entry("sklearn", "default"),
                 Entry("torch", "eager"), Entry("torch", "compile"),
                 Entry("jax", "jit"), Entry("jax", "jit-async"), Entry("jax", "nojit")),
        dtypes=("float32", "float64"),
        # default's design (docs/timing.md), with more rounds: 15, then up to 80 or 40 s.
        policy=Policy(warmup_steps=20, sample_s=0.010, samples_per_block=1, rounds=15,
                      max_rounds=80, target=0.05, rounds_s=40.0),
        time_limit_s=300.0, peak_n=4096,
        tta=(MOONS, CANCER),
        tta_entries=(Entry("numpy", "default"), Entry("sklearn", "default"),
                     Entry("torch", "eager"), Entry("torch", "compile"),
                     Entry("jax", "jit"), Entry("jax", "nojit")),
    ),
    # `make gpu` on the GPU machine (one H100/H200, 16 cores): check on every device, this
    # profile and the report in about 6 minutes, first try, on a fresh machine (cold caches).
    # Four sizes from dispatch-bound (tiny) to a ~0.55 TFLOP step (huge: ~2 GB of float32,
    # nothing beside an H200's ~141 GB). NumPy is the CPU reference row up to large (~4.3
    # GFLOP: tens of ms on 16 cores; seconds at huge), so every GPU cell there has a speed-up
    # paired by round; scikit-learn, the peer, at the two ends only. Costly modes only where
    # they answer a question: torch.compile and CUDA graphs at tiny (dispatch overhead is what
    # they remove; at huge a step is ~10 ms of matmuls), TF32 at huge (the one matmul-bound
    # size: at large a GPU step is ~0.1 ms, mostly launches), jax nojit at tiny. Every timed
    # cell reads its memory peak in its worker. Time to accuracy on moons.
    #
    # Sizes in this order: tiny first (its compile and CUDA-graph cells are the rarest paths,
    # run nowhere else), then huge, large, medium: what a spent budget cuts is time to
    # accuracy, then medium. The GPU's TF32 peak (peak.peak_job(..., "tf32")) is a second
    # peak worker timed in huge's rounds, beside the float32 one: TF32 cells are held against
    # it (bench/rows.py, peak.held_against).
    #
    # Estimate (tests/test_profiles.py recomputes it from plan()): 22 cells, each a worker
    # started once (python, import, CUDA init, first call, warm-up), then 10 rounds of one
    # block per worker and per peak; 4 time-to-accuracy processes; the check as parallel
    # parts beside the probe (harness/bench/checkrun.py: one float32/bce/sigmoid, so each
    # compiled part compiles two functions once). Seconds, pessimistic (likely): a torch/jax
    # GPU worker 6 (4), CuPy 9 (5: its kernels compile cold, NVRTC), a cold torch.compile
    # or CUDA-graph worker 35 (20), a CPU worker 3 (2), the peak workers 8 + 8 + 3 (5 + 5 +
    # 2: GPU float32, GPU TF32, CPU); a block 0.1 (0.06) on the GPU, 0.35 (0.2) on the CPU
    # (OpenBLAS spins ~0.2 s after a large GEMM: waited out), 0.3 (0.2) for a peak; time to
    # accuracy 7 (5) on the GPU, 2 (1) on the CPU; the check 60 (40); start-up 3 (2),
    # report 10 (8). Total: ~360 s pessimistic, ~230 s likely, of which the sweep (after the
    # check) ~290 s pessimistic. wall_budget_s (300 s, counted from the end of the check,
    # which has its own 120 s: harness/bench/cells.py) bounds the sweep whatever happens:
    # past it no job starts and a running one is killed, so `make gpu` ends by ~7 minutes
    # at worst (120 + 300 + start-up and report). A worker step (start, block, stop) is
    # killed after 60 s, the check after 120 s: a hang costs a row and a minute, never the
    # run.
    "gpu": Profile(
        name="gpu", sizes=(TINY, HUGE, LARGE, MEDIUM), devices=("gpu",),
        entries=(Entry("numpy", "default", sizes=("tiny", "medium", "large"), devices=("cpu",)),
                 Entry("sklearn", "default", sizes=("tiny", "large"), devices=("cpu",)),
                 Entry("torch", "eager"),
                 Entry("torch", "compile", sizes=("tiny",)),
                 Entry("torch", "reduce-overhead", sizes=("tiny",)),
                 Entry("torch", "eager-tf32", sizes=("huge",)),
                 Entry("jax", "jit"),
                 Entry("jax", "nojit", sizes=("tiny",)),
                 Entry("jax", "jit-tf32", sizes=("huge",)),
                 Entry("cupy", "default")),
        policy=Policy(warmup_steps=10, sample_s=0.010, samples_per_block=3, rounds=10),
        time_limit_s=60.0, peak_n=8192, peak_n_cpu=4096,
        check_timeout_s=120.0, wall_budget_s=300.0,
        tta=(MOONS,),
        tta_entries=(Entry("numpy", "default", devices=("cpu",)), Entry("torch", "eager"),
                     Entry("jax", "jit"), Entry("cupy", "default")),
    ),
}


# `bench --profile scaling` (`make bench PROFILE=scaling`, harness/bench/scaling.py): full-batch
# training steps of every data-parallel engine (dataparallel/: numpy + MPI, torch + gloo, jax
# over a Mesh as W processes or as W devices of one process) at W = 1 and 2 workers, ONE
# thread per worker, each pinned to a core of its own, at the article's tiny size and at a
# compute-bound one; on GPUs (where nvidia-smi lists them) W = 1, 2, 4, ... at tiny and huge.
# A round launches each engine at each W once (every size in one launch: one start-up).
# 6 rounds: 6 paired ratios, whose interval [min, max] covers the median at 97%. Per launch:
# 3 warm-up steps, then 3 plain blocks and as many profiled ones per size; steps per block
# ~5-15 ms of tiny steps for numpy at W = 1, ~0.2 s of large ones. A launch (all its sizes)
# longer than 180 s of work is killed; its start-up (imports, rendezvous) has 300 s.
PROFILES["scaling"] = Profile(
    name="scaling", kind="scaling", sizes=(TINY, LARGE), gpu_sizes=(TINY, HUGE),
    entries=(Entry("numpy", "default"), Entry("torch", "eager"),
             Entry("jax", "jit", launch="processes"), Entry("jax", "jit", launch="devices")),
    devices=("cpu", "gpu"), workers=(1, 2), threads=1,
    policy=Policy(warmup_steps=3, samples_per_block=3, rounds=6,
                  block_steps=(("tiny", 50), ("large", 3), ("huge", 10))),
    time_limit_s=180.0, start_limit_s=300.0)

# `smoke` (`make gpu-smoke`, harness/bench/smoke.py): every GPU implementation and mode once at
# the article's size, before the run that counts; not a `bench` profile. Limits: a cold
# torch.compile is the slowest honest start (10-35 s), anything past 60 s is a hang; a block of
# two 2 ms samples or a stop past 15 s is one; the grads check (a process of its own) 60 s;
# 80 s for everything (--budget).
SMOKE = Profile(
    name="smoke", kind="smoke", sizes=(Size("smoke", 64, 2, 8),), entries=(),
    devices=("gpu",), threads=2,
    policy=Policy(warmup_steps=2, sample_s=0.002, samples_per_block=2, rounds=1,
                  warmup_max_s=1.0),
    time_limit_s=15.0, start_limit_s=60.0, peak_n=256, check_timeout_s=60.0,
    wall_budget_s=80.0)


def get(name: str) -> Profile:
    """The `bench` profile called `name`; ContractError listing the known ones."""
    if name not in PROFILES:
        raise ContractError(f"unknown profile {name!r}; expected one of {', '.join(PROFILES)}")
    return PROFILES[name]
