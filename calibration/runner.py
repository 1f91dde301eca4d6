"""Work units through joblib, each written atomically under the out-dir; finished units are
skipped when the same command runs again.

Layout under OUT: `grid.json` (the grid, refusing another grid's out-dir), `runs/` (logs in the
published layout, read by calibration.archives), `units/<unit id>.json` (a unit's done marker with
its manifest, written last and atomically: a unit without it is trained again, from its last
checkpoint where it has one: learner.checkpoint, every 2 minutes of training at a log point;
one that cannot be read is refused, not trained over),
`resource_tracker.log` (with loky: what loky's resource tracker, the process that removes the
semaphores of killed workers, has to say; kept off the terminal).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Callable

from advisor.errors import AdvisorError, printable
from calibration.grid import Grid, GridError, Unit, load_grid_dict
from calibration.outdir import check_out_dir, read_spec

# threads: the populations of a stage run as threads of this process, each on its own CUDA
# stream, so their GPU work overlaps (one CUDA context; processes sharing a GPU without MPS take
# turns on it); loky: one process per population (CPU runs, or GPUs with MPS).
BACKENDS = ("loky", "threads", "ray", "dask")
# Populations trained at once per GPU when --n-jobs is not given. Small populations leave a GPU
# mostly idle (launch- and latency-bound, and each also steps its environments on the CPU), so
# several share one; their GPU work is time-sliced, so this fills gaps rather than multiplying
# throughput. Capped at half the CPU cores (a population's process steps its envs itself).
JOBS_PER_GPU = 8


def _atomic_write(path: Path, text: str) -> None:
    from calibration.atomic import atomic_save as _atomic_save

    _atomic_save(path, text=text)


def _differs(old: dict, new: dict) -> str:
    """What differs between the grid.json an out-dir holds and this run's: 'env X there, Y
    here' or the grid's fields ('steps 400 there, 1000 here; seeds ...'), at most three."""
    if old.get("env_id") != new["env_id"]:
        return f"env {old.get('env_id')!r} there, {new['env_id']!r} here"
    there = old.get("grid") if isinstance(old.get("grid"), dict) else {}
    here = new["grid"]

    def show(value) -> str:
        text = json.dumps(value)
        return text if len(text) <= 40 else text[:37] + "..."

    diffs = [f"{key} {show(there.get(key))} there, {show(here.get(key))} here"
             for key in sorted(set(there) | set(here)) if there.get(key) != here.get(key)]
    if not diffs:
        return "its grid.json's digest does not match its grid; was it edited?"
    return "; ".join(diffs[:3]) + (f"; and {len(diffs) - 3} more" if len(diffs) > 3 else "")


def prepare_out_dir(out_dir: Path, grid: Grid, env_id: str) -> None:
    """Create OUT/grid.json, or check that an existing one is the same grid and env."""
    check_out_dir(out_dir)
    spec = {"env_id": env_id, "grid": grid.model_dump(mode="json"), "digest": grid.digest()}
    path = out_dir / "grid.json"
    if path.exists() or path.is_symlink():
        old = read_spec(path)
        if old.get("digest") != spec["digest"] or old.get("env_id") != env_id:
            try:
                load_grid_dict(old["grid"])
            except GridError as exc:  # no results could be resumed from it either
                raise GridError(f"{path} is not an out-dir's grid.json (its {exc}); use a new "
                                "--out-dir, or remove the file if nothing else is there"
                                ) from None
            raise GridError(f"{out_dir} holds results of a different calibration "
                            f"({_differs(old, spec)}); use a new --out-dir, or the same env, "
                            f"grid, --steps and --seeds to resume (--grid {path} runs the grid "
                            "it holds, even where a preset has changed since)")
        return
    left = [sub for sub in ("units", "runs") if (out_dir / sub).is_dir()
            and any((out_dir / sub).iterdir())]
    if left:  # whose grid they belong to is not known: never take them for this one's
        raise GridError(f"{out_dir} holds {' and '.join(left)} but no grid.json, so which "
                        "calibration wrote them is unknown; put back the grid.json it had, or "
                        "use a new --out-dir")
    _atomic_write(path, json.dumps(spec, indent=1))


def unit_done(out_dir: Path, unit: Unit) -> dict | None:
    """The done marker of `unit`, or None where there is none (the unit is then trained). A
    marker is written last and atomically, so one that cannot be read (not JSON, another
    unit, no manifest) was damaged after the fact: GridError, rather than training the unit
    again over the logs it finished."""
    from advisor.files import load_json, read_limited

    path = out_dir / "units" / f"{unit.id}.json"
    if not (path.exists() or path.is_symlink()):
        return None
    fix = (f"restore it, or remove it to train that population again (its logs in "
           f"{out_dir / 'runs' / unit.id} are then rewritten)")
    try:
        record = load_json(read_limited(path, "done marker", GridError), str(path), GridError)
    except GridError as exc:
        raise GridError(f"{exc}: not a done marker; {fix}") from None
    if not isinstance(record, dict) or not _same_unit(record.get("unit"), unit):
        raise GridError(f"{path} is not the done marker of unit {unit.id}; {fix}")
    if not _manifest_ok(record.get("manifest")):
        raise GridError(f"{path} has no usable manifest (device_name, versions, config.steps); "
                        f"{fix}")
    return record


def _same_unit(recorded, unit: Unit) -> bool:
    """Whether a done marker's unit is `unit`: the same members in any order (packed units
    listed theirs by batch size before they listed them by utd; markers written before units
    could pack batch sizes have no batch_sizes)."""
    if not isinstance(recorded, dict):
        return False
    try:
        return _members(Unit(**recorded)) == _members(unit)
    except (TypeError, ValueError):
        return False


def _members(unit: Unit) -> tuple:
    sizes = unit.member_batch_sizes
    return (unit.stage, unit.width, unit.batch_size,
            sorted(zip(unit.utds, unit.seeds, sizes, strict=True)))


def _manifest_ok(manifest) -> bool:
    try:
        return (isinstance(manifest["device_name"], str) and isinstance(manifest["versions"], dict)
                and int(manifest["config"]["steps"]) > 0)
    except (KeyError, TypeError, ValueError):
        return False


_PYTHON_FORMAT = warnings.formatwarning
_OURS = str(Path(__file__).resolve().parent)  # the calibration package


def one_line_warning(message, category, filename, lineno, line=None) -> str:
    """This package's warnings as the CLI prints its own lines: `warning: ...` on one line,
    without the file, line and source Python adds (a worker's warnings reach the user's
    terminal); any other package's as Python formats them (category and place kept)."""
    if not str(Path(filename).resolve()).startswith(_OURS):
        return _PYTHON_FORMAT(message, category, filename, lineno, line)
    return f"warning: {' '.join(str(message).split())}\n"


def run_unit(env_id: str, grid: Grid, unit: Unit, out_dir: str, device: str,
             parent: int | None = None, compile: bool | str = "none",
             env_threads: int = 1, spans: bool = True, eval_background: bool = False,
             run: str | None = None, bf16: bool = False) -> dict:
    """Train one population and mark it done. Runs in a worker process (or a thread, backend
    "threads"); `parent`: the pid of the calibration, whose death ends this process (no orphan
    trains on, no marker is written); `env_threads` > 1 steps its envs in that many threads."""
    watch = parent is not None and parent != os.getpid()  # n_jobs=1 runs in the parent itself
    if watch:
        _exit_with_parent(parent)
    warnings.formatwarning = one_line_warning  # a corrupt checkpoint set aside, a fallback
    import torch

    # One thread per worker: one worker per core on a CPU (and reproducible runs); on a GPU
    # the populations sharing it would otherwise oversubscribe the cores their envs step on.
    torch.set_num_threads(1)
    if threading.current_thread() is not threading.main_thread() and device.startswith("cuda"):
        # A population in a thread (backend "threads") works on a stream of its own.
        with torch.cuda.device(torch.device(device)):
            with torch.cuda.stream(torch.cuda.Stream()):
                return _train_unit(env_id, grid, unit, out_dir, device, parent, watch, compile,
                                   env_threads, spans, eval_background, run, bf16)
    return _train_unit(env_id, grid, unit, out_dir, device, parent, watch, compile, env_threads,
                       spans, eval_background, run, bf16)


def _train_unit(env_id: str, grid: Grid, unit: Unit, out_dir: str, device: str,
                parent: int | None, watch: bool, compile: bool | str, env_threads: int,
                spans: bool = True, eval_background: bool = False,
                run: str | None = None, bf16: bool = False) -> dict:
    from calibration.learner.trainer import TrainConfig, train_population

    cfg = TrainConfig(env_id=env_id, steps=grid.steps, utds=list(unit.utds),
                      seeds=list(unit.seeds), width=unit.width, batch_size=unit.batch_size,
                      batch_sizes=list(unit.batch_sizes) if unit.batch_sizes else None,
                      quantiles=grid.quantiles, actor_width=grid.actor_width,
                      random_steps=grid.random_steps, eval_every=grid.eval_every,
                      eval_episodes=grid.eval_episodes, device=device, name=f"runs/{unit.id}",
                      vector_env="threads" if env_threads > 1 else "sync",
                      env_threads=env_threads, compile=compile, spans=spans,
                      eval_background=eval_background, bf16=bf16)
    out = Path(out_dir)
    _tracker_output_to(out / TRACKER_LOG)  # a worker's compile pools start their own
    try:
        manifest = train_population(cfg, out)
    except AdvisorError:
        raise
    except Exception as exc:  # an env's own error mid-run (a simulator's), a bug, a GPU's OOM
        raise _failed(unit, exc, out) from None
    if watch and os.getppid() != parent:
        os._exit(1)
    (out / "errors" / f"{unit.id}.txt").unlink(missing_ok=True)  # an earlier attempt's
    record = {"unit": unit.model_dump(mode="json"), "manifest": manifest}
    if run is not None:  # which run of the command trained it (stage summaries)
        record["run"] = run
    _atomic_write(out / "units" / f"{unit.id}.json", json.dumps(record, indent=1))
    return record


class PopulationFailed(GridError):
    """A population stopped at an error of its own (its env's, or the learner's): one line
    naming it and where it was raised; the whole traceback is kept in the out-dir."""


def _failed(unit: Unit, exc: Exception, out: Path) -> PopulationFailed:
    """The one-line error for `exc`, raised while training `unit`; its traceback written to
    OUT/errors/UNIT.txt (atomically: the next failure of the unit replaces it)."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({frames[-1].filename}:{frames[-1].lineno}, in {frames[-1].name})" if frames else ""
    log = out / "errors" / f"{unit.id}.txt"
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(log, "".join(traceback.format_exception(exc)))
        said = f"; its traceback is in {log}"
    except OSError:
        said = ""
    what = printable(" ".join(str(exc).split())) or "(no message)"
    if len(what) > 300:
        what = what[:300] + "..."
    return PopulationFailed(f"population {unit.id} stopped at an error in training: "
                            f"{type(exc).__name__}: {what}{where}{said}")


def run_units(env_id: str, grid: Grid, units: list[Unit], out_dir: Path, *, device: str,
              backend: str = "loky", n_jobs: int | None = None, quiet: bool = False,
              echo: Callable[[str], None] | None = None,
              compile: bool | str = "none", spans: bool = True,
              eval_background: bool = False, bf16: bool = False) -> list[dict]:
    """Run the units not yet done; returns the records of all units. `compile`: what of each
    population's update goes through torch.compile (TrainConfig.compile); `spans`: False
    updates every member in every round, masked (TrainConfig.spans; for benchmarks);
    `eval_background`: evaluation episodes in a thread beside training
    (TrainConfig.eval_background; for benchmarks); `bf16`: bf16 weight copies and activations
    (TrainConfig.bf16; `advisor calibrate --bf16`)."""
    if backend not in BACKENDS:
        raise GridError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    echo = echo or (lambda s: print(s, file=sys.stderr, flush=True))
    done = {u.id: unit_done(out_dir, u) for u in units}
    todo = [u for u in units if done[u.id] is None]
    if not todo:
        return [done[u.id] for u in units]
    from joblib import Parallel, delayed, parallel_config

    if n_jobs is None:
        n_jobs = _default_jobs(device)
    n_jobs = min(n_jobs, len(todo))
    context = _backend_context(backend)
    if not quiet and backend == "loky" and device != "cpu" and n_jobs > 1 and not mps_running():
        echo(f"note: {n_jobs} populations share the GPU in turns: no CUDA MPS control daemon "
             "found. Started first (`nvidia-cuda-mps-control -d`), it lets their kernels run at "
             "once: about 1.5-2x faster per population on an H100 (docs/throughput.md)")
    if not quiet and backend == "threads" and device == "cpu" and n_jobs > 1:
        echo("note: on the CPU, populations as threads share one Python interpreter (the same "
             "runs, more slowly); --backend loky runs them in parallel")
    if backend in ("loky", "threads"):  # processes of this machine: ours to start
        with sigint_deferred():
            _tracker_output_to(Path(out_dir) / TRACKER_LOG)
    threads = env_threads_per_population(device, n_jobs)
    progress = _Progress(len(units), len(units) - len(todo), todo, grid, quiet, echo, n_jobs,
                         out_dir=Path(out_dir),
                         earlier_steps=sum(len(u.seeds) * grid.steps for u in units
                                           if done[u.id] is not None))
    stop = threading.Event()
    run = f"{os.getpid()}-{time.time():.3f}"  # this run of run_units, in each done marker
    if not quiet:  # a line every POLL_S from the populations' logs, before any unit ends
        threading.Thread(target=_poll, args=(progress, stop), name="progress",
                         daemon=True).start()
    # Ray's joblib backend returns lists only: unit lines then come at the end.
    order = "generator_unordered" if backend in ("loky", "threads") else "list"
    # loky workers are our children: they stop when we die (ray and dask own theirs).
    parent = os.getpid() if backend == "loky" else None
    parallels = []  # the running Parallel, made under parallel_config (which picks its backend)

    def consume():
        with context:
            with parallel_config(backend="threading" if backend == "threads" else backend,
                                 n_jobs=n_jobs):
                parallels.append(Parallel(return_as=order))
                results = parallels[0](
                    delayed(run_unit)(env_id, grid, u, str(out_dir), _unit_device(device, i),
                                      parent, compile, threads, spans, eval_background,
                                      run, bf16)
                    for i, u in enumerate(todo))
                for record in results:
                    done[Unit(**record["unit"]).id] = record
                    progress.update(record)

    try:
        if backend == "threads":
            THREADS_TRAINING.set()
        if backend == "loky" and n_jobs > 1:
            _consume_interruptibly(consume, parallels)
        else:
            consume()
        THREADS_TRAINING.clear()  # not on an exception: its threads may train on (cli.py)
    finally:
        stop.set()
    progress.close()
    return [done[u.id] for u in units]


@contextlib.contextmanager
def sigint_deferred():
    """SIGINT blocked in this thread for the block, then delivered if one came: processes
    started meanwhile (glfw's library probe when MuJoCo envs are made, the resource trackers)
    inherit the block and never see a terminal's Ctrl-C, which goes to the whole process
    group; they printed tracebacks under our one-line error when it caught them starting."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


#: Set while populations train as threads of this process (backend "threads") and left set
#: when that ends in an exception: those threads may still be running, and an interpreter
#: torn down under them aborts, so the CLI then exits at once (cli.Interrupted.show).
THREADS_TRAINING = threading.Event()


def _consume_interruptibly(consume: Callable[[], None], parallels: list) -> None:
    """Run `consume` (which drives the worker processes) in a thread, while this one only
    waits: a Ctrl-C or SIGTERM then lands here, never inside joblib or loky code (where, landing
    between a semaphore's unlink and its unregistering, it left loky's resource tracker warning
    of a leaked semaphore at exit). On one, stop the workers as joblib does on an error, then
    raise it."""
    failure: list[BaseException] = []

    def run():
        if hasattr(signal, "pthread_sigmask"):
            # Worker processes started from this thread (and from the executor's own threads,
            # which it starts) inherit its blocked SIGINT: a Ctrl-C at a terminal, sent to the
            # whole process group, then reaches only this process, which stops them. Before,
            # workers caught mid-import or idle printed tracebacks under the one-line error.
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            consume()
        except BaseException as exc:  # re-raised in the calling thread
            failure.append(exc)

    thread = threading.Thread(target=run, name="units", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.2)
    except KeyboardInterrupt:
        # joblib's own stop on an error: kills the workers.
        abort = getattr(parallels[0], "_abort", None) if parallels else None
        if abort is not None:
            try:
                abort()
            except Exception:
                pass
        thread.join(30.0)
        # joblib, at exit, on the temporary folder of the workers it just killed
        warnings.filterwarnings("ignore", message="Failed to delete temporary folder")
        raise
    if failure:
        raise failure[0]


TRACKER_LOG = "resource_tracker.log"


def _tracker_output_to(path: Path) -> None:
    """Start the resource trackers (once per process: loky's, and the standard library's that
    torch.compile's worker pools use) with their stderr on `path`. A tracker outlives its
    process by a moment and removes whatever semaphores a stopped run left. After a Ctrl-C or
    SIGTERM it may find one that a daemon thread unlinked just before the interpreter froze it,
    and warns of a "leaked semlock" that is already gone. That warning belongs in the out-dir,
    not under our one-line message. A tracker already running is left as it is."""
    from multiprocessing import resource_tracker as stdlib_tracker

    from joblib.externals.loky.backend import resource_tracker as loky_tracker

    for module in (loky_tracker, stdlib_tracker):
        if getattr(module._resource_tracker, "_fd", None) is not None:
            continue
        sys.stderr.flush()
        try:
            log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError:
            return  # the trackers then write to our stderr, as they do by default
        saved = os.dup(2)
        try:
            os.dup2(log, 2)
            module.ensure_running()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(log)


_watching: int | None = None


def _exit_with_parent(parent: int, every: float = 0.25) -> None:
    """Start (once per process) a thread that ends this worker as soon as its parent, the
    calibration, is gone (re-parented: its ppid changes), even after kill -9 of the parent."""
    global _watching
    if _watching == parent:
        return
    _watching = parent
    if os.getppid() != parent:
        os._exit(1)

    def watch():
        while True:
            time.sleep(every)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def mps_running() -> bool:
    """Whether a CUDA MPS control daemon is there to join: its control pipe, in
    CUDA_MPS_PIPE_DIRECTORY or the default /tmp/nvidia-mps."""
    pipe_dir = os.environ.get("CUDA_MPS_PIPE_DIRECTORY") or "/tmp/nvidia-mps"
    return Path(pipe_dir, "control").exists()


ENV_THREADS_MAX = 4


def env_threads_per_population(device: str, n_jobs: int) -> int:
    """Threads that step each population's envs: on a GPU, the cores the populations running
    at once leave (at most 4 each; MuJoCo simulates without the GIL, and a GPU-bound loop
    steps its envs while the device works); on the CPU 1 (the populations already use every
    core). Same results either way (ThreadedEnvs)."""
    if not device.startswith("cuda"):
        return 1
    return max(1, min(ENV_THREADS_MAX, (os.cpu_count() or 1) // max(1, n_jobs)))


def _default_jobs(device: str) -> int:
    import torch

    if device != "cpu" and torch.cuda.is_available():
        return max(1, min(torch.cuda.device_count() * JOBS_PER_GPU, (os.cpu_count() or 2) // 2))
    return os.cpu_count() or 1


def _unit_device(device: str, index: int) -> str:
    """Spread units over the visible GPUs round-robin ('cuda' alone would put all on GPU 0)."""
    if device != "cuda":
        return device
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return f"cuda:{index % count}" if count > 1 else device


def _backend_context(backend: str):
    import contextlib

    if backend == "ray":
        try:
            from ray.util.joblib import register_ray
        except ImportError:
            raise GridError("backend 'ray' needs ray: pip install 'ray[default]'") from None
        register_ray()
    elif backend == "dask":
        try:
            import dask.distributed  # noqa: F401
        except ImportError:
            raise GridError("backend 'dask' needs dask.distributed: pip install "
                            "'dask[distributed]'") from None
    return contextlib.nullcontext()


POLL_S = 30.0  # seconds between progress lines read from the populations' logs


def _poll(progress: "_Progress", stop: threading.Event) -> None:
    while not stop.wait(POLL_S):
        try:
            progress.poll()
        except Exception:  # a progress line is never worth a failed calibration
            pass


def logged_step(run_dir: Path) -> int:
    """The last env step a population has logged under `run_dir` (0 if none yet): the step
    column of its `return` logs, written atomically at each evaluation."""
    import numpy as np

    last = 0
    for path in run_dir.glob("*/*/*/return/*.npy"):
        try:
            steps = np.load(path, allow_pickle=False)[:, 0]
        except (OSError, ValueError, IndexError):
            continue
        if steps.size:
            last = max(last, int(steps[-1]))
    return last


def checkpoint_step(run_dir: Path) -> int | None:
    """The env step an unfinished population resumes from: its checkpoint's (None without a
    readable one: it starts over, whatever its logs reached). Reads the checkpoint's metadata
    only."""
    import numpy as np

    from calibration.learner.checkpoint import FILE

    path = run_dir / FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return int(json.loads(str(z["meta"]))["step"])
    except Exception:  # torn or foreign: the trainer sets it aside and starts over
        return None


class _Progress:
    """A line per finished unit, and every POLL_S from the logs of the running ones: units, env
    steps/s, time left (and the share of env steps done once the logs show it).

    Time left: each running unit that has logged twice goes on at its own rate; the others are
    laid out on `n_jobs` workers in the order they were handed out, each lasting its
    member-steps times the time per member-step measured on the finished units (which ran
    alongside the others, so sharing is priced in), or else on the running ones. Finished units
    take the time they took. Until a unit ends or has logged twice there is no estimate."""

    def __init__(self, total: int, done: int, todo: list[Unit], grid: Grid, quiet: bool, echo,
                 n_jobs: int = 1, out_dir: Path | None = None, earlier_steps: int = 0):
        self.total, self.done, self.quiet, self.echo = total, done, quiet, echo
        # member-steps of the units an earlier run finished: in the share, as the units count
        # is (not in the rate: this run did not take them)
        self.earlier_steps = earlier_steps
        self.steps = grid.steps
        self.members = {u.id: len(u.seeds) for u in todo}
        self.member_steps = {u.id: len(u.seeds) * grid.steps for u in todo}
        self.order = [u.id for u in todo]
        self.n_jobs = max(1, n_jobs)
        self.out_dir = out_dir
        self.finished: dict[str, float] = {}  # unit id -> its train time
        # unit id -> the step it resumes from: a unit an earlier run left unfinished resumes
        # from its checkpoint, whose steps are done, but not by this run; one without starts
        # over, whatever its logs had reached (they counted as done: a share of 50% for 20%)
        self.restored = {u: (checkpoint_step(out_dir / "runs" / u) or 0)
                         if out_dir is not None else 0 for u in self.order}
        # unit id -> the step an earlier attempt's logs reached past that: not this run's work
        # (nor a rate) until the unit's logs are rewritten
        logged = {u: logged_step(out_dir / "runs" / u) if out_dir is not None else 0
                  for u in self.order}
        self.stale = {u: step for u, step in logged.items() if step > self.restored[u]}
        self.new_done = 0  # member-steps this run trained, of the finished units
        # unit id -> (first time, first step, last time, last step) seen in its logs
        self.seen: dict[str, tuple[float, int, float, int]] = {}
        self.steps_left = sum(self.member_steps.values())
        self.steps_done = 0
        self.lock = threading.Lock()
        self.t0 = time.perf_counter()
        self._show()

    def update(self, record: dict) -> None:
        with self.lock:
            self.done += 1
            unit_id = Unit(**record["unit"]).id
            steps = len(record["unit"]["seeds"]) * record["manifest"]["config"]["steps"]
            self.steps_done += steps
            self.new_done += steps - self.restored.get(unit_id, 0) * self.members.get(unit_id, 0)
            self.finished[unit_id] = float(record["manifest"].get("wall_time_s") or 0.0)
            self._show()

    def observe(self, unit_id: str, step: int, now: float) -> None:
        """A running unit's last logged step, seen at `now` (seconds since the start)."""
        first = self.seen.get(unit_id)
        if first is None:
            self.seen[unit_id] = (now, step, now, step)
        elif step > first[3]:
            self.seen[unit_id] = (first[0], first[1], now, step)

    def poll(self) -> None:
        """Read the running units' logs and show a line if any has moved on."""
        if self.out_dir is None:
            return
        with self.lock:
            before = dict(self.seen)
            now = time.perf_counter() - self.t0
            for u in self.order:
                if u not in self.finished:
                    step = logged_step(self.out_dir / "runs" / u)
                    if self.stale.get(u) == step:
                        continue  # an earlier attempt's logs, not rewritten yet
                    self.stale.pop(u, None)
                    if step:
                        self.observe(u, step, now)
            if self.seen != before:
                self._show()

    def _rates(self) -> dict[str, float]:
        """Env steps per second of each running unit that has logged twice."""
        return {u: (s1 - s0) / (t1 - t0) for u, (t0, s0, t1, s1) in self.seen.items()
                if u not in self.finished and s1 > s0 and t1 > t0}

    def time_left(self, elapsed: float) -> float | None:
        done = [u for u in self.order if u in self.finished]
        spent = sum(self.finished[u] for u in done)
        rates = self._rates()
        if done and spent > 0 and sum(self.member_steps_left(u) for u in done) > 0:
            per_step = spent / sum(self.member_steps_left(u) for u in done)
        elif rates:
            per_step = statistics.median(1.0 / (r * self.members[u]) for u, r in rates.items())
        else:
            return None
        free = [0.0] * self.n_jobs  # when each worker is next free
        for u in self.order:
            j = free.index(min(free))
            if u in self.finished:
                free[j] += self.finished[u]
            elif u in rates:  # running: this run's share of its steps at the rate it logs
                free[j] += (self.steps - self.restored[u]) / rates[u]
            else:
                free[j] += self.member_steps_left(u) * per_step
        return max(max(free) - elapsed, 0.0)

    def member_steps_left(self, u: str) -> int:
        """Member-steps of unit `u` that this run trains (all, less what it resumes from)."""
        return self.member_steps[u] - self.restored[u] * self.members[u]

    def _show(self) -> None:
        if self.quiet:
            return
        dt = time.perf_counter() - self.t0
        running = [u for u in self.order if u not in self.finished]
        reached = {u: max(self.seen[u][3] if u in self.seen else 0, self.restored[u])
                   for u in running}
        done = self.steps_done + sum(reached[u] * self.members[u] for u in running)
        # the rate counts only what this run trained (not the steps a unit resumed from)
        new = self.new_done + sum(max(0, reached[u] - self.restored[u]) * self.members[u]
                                  for u in running)
        rate = new / dt if dt > 0 and new else 0.0
        left = self.time_left(dt)
        eta = (f"about {left / 60:.1f} min left" if left is not None
               else "time left: once a unit has ended or logged twice")
        whole = self.earlier_steps + self.steps_left
        share = (f", {100 * (self.earlier_steps + done) / whole:.0f}% of env steps"
                 if done or self.earlier_steps else "")
        self.echo(f"[{self.done}/{self.total} units{share}] {rate:,.0f} env steps/s, {eta}")

    def close(self) -> None:
        if not self.quiet:
            self.echo(f"units done in {(time.perf_counter() - self.t0) / 60:.1f} min")
