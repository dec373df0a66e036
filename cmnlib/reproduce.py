"""The headless batch run: execute the notebook sequence with papermill into ``reports/``.

``python -m cmnlib reproduce`` (and ``make reproduce``) runs ``notebooks/NN_*.ipynb``
through papermill's Python API with kernel ``python3`` and the notebooks' own folder as
working directory (as nbval and JupyterLab use), passing each notebook only the parameters
its ``parameters`` cell declares. Notebooks with a ``dataset`` parameter run once per data
set.

Before the first notebook, every run the notebooks will train (:mod:`cmnlib.runplan`) is
trained in one pool of worker processes, longest first (:func:`train_first`); the
notebooks then read the runs from the cache, as a second run does. Executed one at a time,
the notebooks would leave a core idle whenever one trains fewer runs than there are
workers, at the end of each pool and while a notebook draws its figures.

Two notebooks run at once where the runs train in a pool (the quick profile on two cores
or more; ``--jobs N`` sets it), each only after those it depends on (:data:`DEPENDS_ON`):
their outputs do not depend on the order, since every run they train or read is a function
of its spec and seed. Each kernel then gets its share of the cores (``OMP_NUM_THREADS``,
unless it is set): two kernels with one OpenMP thread per core each would spin on the core
the other needs. The report folder gets::

    notebooks/   executed copies          html/      one HTML export each
    figures/     every figure, as PNG     tables/    CSV, Markdown and LaTeX tables
    manifest.json                         index.html links everything

(the pages: :mod:`cmnlib.report_page`).

After the notebooks, the claims audit and the verdict are assembled from the rows the
studies saved (:func:`cmnlib.studies.audit.assemble`: one writer, whatever order the
notebooks ran in).

The report is built in a temporary folder and replaces the earlier report of the same
name only when every notebook succeeded; a failed build is kept beside it as
``<name>.failed`` with the failing notebook's error visible.
"""
from __future__ import annotations

import ast
import atexit
import functools
import importlib.metadata as md
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import papermill

from . import report_page, runplan, runs
from .atomic import write_bytes, write_json
from .config import PRECISIONS, cores_share, synthetic_datasets
from .data.sources import checkout, load_dataset, project_root, reports_dir
from .spec import PRECISION_ENV
from .studies import audit
from .train import run_dir

# A notebook is skipped when one it depends on failed.
DEPENDS_ON = {"06_tables": ["05_training"], "07_beyond_the_paper": ["05_training"],
              "08_alignment": ["05_training", "06_tables"]}
# The modalities a per-data-set notebook needs: the walkthroughs show language guiding
# audio (CMN L+A). On data without them the notebook is skipped with one line, not run.
NEEDS_MODALITIES = {"02_self_attention": ("text", "audio"), "03_guide_attention": ("text", "audio"),
                    "04_mua_and_cmn": ("text", "audio")}


def missing_modalities(job: "Job", available: dict) -> str | None:
    """Why ``job`` cannot serve its data set (one line), or None. ``available``: data set ->
    the modalities its data has (absent when it could not be read: the notebook then runs
    and reports its own error)."""
    dataset = job.parameters.get("dataset")
    needed = NEEDS_MODALITIES.get(job.notebook.stem, ())
    if dataset is None or dataset not in available:
        return None
    lacking = [m for m in needed if m not in available[dataset]]
    if not lacking:
        return None
    return (f"{job.notebook.stem[:2]} needs {' and '.join(needed)}; this {dataset} data has "
            f"{' and '.join(available[dataset]) or 'none'} only")


@dataclass
class Job:
    notebook: Path
    name: str                    # output name, e.g. 01_data-mosei
    parameters: dict = field(default_factory=dict)
    defaults: dict = field(default_factory=dict)  # the parameters cell's own values

    def effective_parameters(self) -> dict:
        """What the notebook will run with: its defaults, updated with what it is passed."""
        return {**self.defaults, **self.parameters}


def shipped_notebooks() -> Path:
    """The notebook sources that came with this package: the checkout's ``notebooks/`` in an
    editable install, ``cmnlib/notebooks`` inside a wheel."""
    root = checkout()
    return root / "notebooks" if root is not None else Path(__file__).resolve().parent / "notebooks"


def has_notebooks(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("[0-9][0-9]_*.ipynb"))


def notebooks_dir(announce: bool = False) -> Path:
    """The notebooks a run executes: ``<project root>/notebooks`` when it holds the sequence
    (a checkout, or copies written by ``cmn notebooks``), else those shipped in the package
    (``announce`` says so in one line)."""
    local = project_root() / "notebooks"
    if has_notebooks(local):
        return local
    shipped = shipped_notebooks()
    if announce:
        print(f"reproduce: no notebooks in {local}; running the ones shipped with cmnlib "
              f"({shipped}); `cmn notebooks --out {local}` writes copies you can edit")
    return shipped


def write_notebooks(out: str | Path) -> list[Path]:
    """Copy the shipped notebook sequence (executed ``.ipynb`` and their jupytext ``.py``
    sources, with the README and nbval's sanitize file) into ``out``. Refuses, before it
    writes anything, when any of them exists there: nothing of the user's is overwritten."""
    source, out = shipped_notebooks(), Path(out)
    names = sorted(p.name for p in source.iterdir()
                   if p.suffix in (".ipynb", ".py", ".md", ".cfg", ".toml") and p.name != "__init__.py")
    clash = [n for n in names if (out / n).exists()]
    if clash:
        raise FileExistsError(f"{out} already holds {', '.join(clash[:3])}{' ...' if len(clash) > 3 else ''}; "
                              "nothing was written: choose an empty folder or move those files")
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        write_bytes(out / name, (source / name).read_bytes())
    return [out / n for n in names]


def declared_parameters(path: Path) -> dict:
    """Names and defaults of the notebook's ``parameters`` cell (papermill's inspection):
    the value of each default that is a Python literal (``None``, ``4``, ``["mosei"]``),
    else its source text."""
    return {name: _literal(spec["default"]) for name, spec in papermill.inspect_notebook(str(path)).items()}


def _literal(source: str):
    try:
        return ast.literal_eval(source)
    except (ValueError, SyntaxError):  # an expression, not a literal: kept as written
        return source


def plan_jobs(profile: str = "quick", datasets: tuple[str, ...] | None = None,
              data: str | None = None, seeds: int | None = None, only: list[str] | None = None,
              out: Path | None = None, source_dir: Path | None = None) -> list[Job]:
    """Which notebooks run, in which order, with which parameters."""
    source_dir = source_dir or notebooks_dir()
    datasets = tuple(datasets or synthetic_datasets())
    paths = sorted(source_dir.glob("[0-9][0-9]_*.ipynb"))
    if only:
        paths = [p for p in paths if any(p.name.startswith(o) for o in only)]
        if not paths:
            raise ValueError(f"--only {only} matches no notebook in {source_dir}")
    offered = {"profile": profile, "datasets": list(datasets), "seeds": seeds}
    if data is not None:
        offered["source"] = data
    if out is not None:
        offered["figures_dir"] = str(out / "figures")
        offered["tables_dir"] = str(out / "tables")
    jobs = []
    for path in paths:
        declared = declared_parameters(path)
        params = {k: v for k, v in offered.items() if k in declared and v is not None}
        if profile != "quick" and "scale" in declared:
            params["scale"] = "paper"
        if "dataset" in declared:
            for dataset in datasets:
                jobs.append(Job(path, f"{path.stem}-{dataset}", {**params, "dataset": dataset}, declared))
        else:
            jobs.append(Job(path, path.stem, params, declared))
    return jobs


def _ipc_kernel_manager():
    """A kernel manager that talks to the kernel over local IPC sockets instead of TCP on
    localhost (the kernel then has no reason to warn that its TCP traffic is unencrypted);
    None (papermill's TCP default) where IPC sockets do not exist (Windows)."""
    if os.name == "nt":
        return None
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class IPCKernelManager(AsyncKernelManager):
        @default("transport")
        def _default_transport(self):
            return "ipc"

        @default("ip")
        def _default_ip(self):
            # a socket path of its own: jupyter_client's default ("kernel-ipc" in the working
            # folder, numbered by looking for free names) lets two kernels started at once
            # pick the same sockets and read each other's messages
            return os.path.join(_ipc_folder(), f"kernel-{uuid.uuid4().hex[:12]}")

        async def _async_interrupt_kernel(self):
            # jupyter_client sends SIGINT before every shutdown; a kernel still answering
            # papermill's last messages then logs "ERROR | KeyboardInterrupt caught in
            # kernel." for a run that succeeded. A finished notebook's kernel is idle: the
            # shutdown request alone ends it (and jupyter_client kills it if it does not).
            if not self.shutting_down:
                await super()._async_interrupt_kernel()

    return IPCKernelManager


@functools.cache
def _ipc_folder() -> str:
    """One private temporary folder per process for the kernels' IPC sockets (removed at exit)."""
    folder = tempfile.mkdtemp(prefix="cmn-kernels-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


# How long a kernel may take to start: papermill's 60 s can pass on a 2-core machine that is
# training in other processes, and a slow start is not a failure.
KERNEL_START_TIMEOUT_S = 300


def _execute(job: Job, output: Path, cwd: Path, progress: bool = False) -> None:
    manager = _ipc_kernel_manager()
    papermill.execute_notebook(str(job.notebook), str(output), parameters=job.parameters,
                               kernel_name="python3", cwd=str(cwd), progress_bar=progress,
                               start_timeout=KERNEL_START_TIMEOUT_S, log_output=False,
                               **({"kernel_manager_class": manager} if manager else {}))


def _failure(error: papermill.PapermillExecutionError, job: Job) -> str:
    """Where and why a notebook failed, from papermill's exception, with the cell numbered
    as in the source notebook (papermill counts the parameters cell it injects)."""
    index = error.cell_index
    if job.parameters:
        tags = [cell.metadata.get("tags", []) for cell in nbformat.read(job.notebook, as_version=4).cells]
        if any("parameters" in t for t in tags[:index]):  # the injected cell follows that one
            index -= 1
    first_line = error.source.strip().splitlines()[0][:60] if error.source.strip() else ""
    return f"cell {index} ({error.ename}: {error.evalue[:200]}) starting {first_line!r}"


def _clean_metadata(path: Path) -> None:
    """Drop papermill's per-run metadata (timestamps) so committed notebooks diff cleanly."""
    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)


def _versions() -> dict:
    packages = ["cmnlib", "torch", "numpy", "pandas", "matplotlib", "scikit-learn", "h5py",
                "papermill", "nbval"]
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for name in packages:
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    return versions


def _git_commit() -> str | None:
    try:
        root = checkout()
        if root is None:  # an installed package: its version (in the manifest) names the code
            return None
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True,
                               text=True, timeout=10).stdout.strip()
        return result.stdout.strip() + ("+uncommitted" if dirty else "") if result.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _data_sources(datasets, data, profile) -> tuple[dict, dict]:
    """Each data set's record for the manifest, and the bundles that could be read (the
    notebooks load them as the runner does: ``source`` and ``scale``, data seed 0)."""
    sources, bundles = {}, {}
    for dataset in datasets:
        try:
            bundle = load_dataset(dataset, data or "synthetic", scale="paper" if profile == "paper" else "quick")
            sources[dataset] = {"label": bundle.source_label, "sha256": bundle.meta.get("source_hash"),
                                "modalities": list(bundle["train"].modalities)}
            bundles[dataset] = bundle
        except Exception as error:  # recorded, not fatal: the notebooks report their own errors
            sources[dataset] = {"error": str(error)}
    return sources, bundles


def train_first(jobs: list[Job], bundles: dict, profile: str, processes: int | None = None) -> dict | None:
    """Train every run the notebooks of ``jobs`` will ask for (:func:`cmnlib.runplan.sequence_runs`)
    in one pool of worker processes, longest first, before any notebook runs; the notebooks
    then read them from the cache. Only where the runs train in a pool (``processes``,
    default :func:`runs_first_processes`: for the quick profile on 2 cores or more, one per
    usable core as memory allows); a run already cached is not trained again. Returns the
    manifest's record (runs, seeds, seconds), or None when there is nothing to do. A
    failure is reported in one line and the notebooks go on (each trains what it still
    needs, and reports its own error)."""
    processes = runs_first_processes(profile) if processes is None else processes
    if processes < 2 or not bundles:
        return None
    precision = os.environ.get(PRECISION_ENV, "fp32")  # as the notebooks' kernels will see it
    planned = [(spec.with_training(precision=precision), bundle, seeds) for spec, bundle, seeds in
               runplan.sequence_runs([(job.notebook.stem, job.effective_parameters()) for job in jobs], bundles,
                                     profile)]
    if not planned:
        return None
    seeds = sum(len(s) for _, _, s in planned)
    print(f"reproduce: first the {len(planned)} runs the notebooks train ({seeds} seeds), "
          f"in one pool of {processes} worker processes", flush=True)
    t0 = time.time()
    record = {"runs": len(planned), "seeds": seeds}
    try:
        trained = runs.train_runs(planned, processes, desc="runs")
    except Exception as error:  # the notebook that needs the run trains it again and shows the error
        print(f"reproduce: training the runs first stopped ({type(error).__name__}: {error}); "
              "each notebook trains what it still needs", flush=True)
        return {**record, "error": f"{type(error).__name__}: {error}", "seconds": round(time.time() - t0, 1)}
    seconds = time.time() - t0
    print(f"  {'(the runs, trained first)':<28} ok     {seconds:6.1f} s  ({trained} seeds trained, "
          f"{seeds - trained} already cached)", flush=True)
    return {**record, "trained": trained, "seconds": round(seconds, 1),
            "folders": sorted(run_dir(spec, bundle).name for spec, bundle, _ in planned)}


def runs_first_processes(profile: str) -> int:
    """Worker processes of the pool that trains the runs first (:func:`train_first`): the
    pool has the machine to itself, so :func:`cmnlib.runs.machine_processes`, one per usable
    core in the quick profile, or ``$CMN_POOL_WORKERS`` (a malformed value: ValueError)."""
    return runs.machine_processes(profile)


def _data_and_runs(jobs: list[Job], datasets, data, profile) -> tuple[dict, dict, dict | None]:
    """Read the data sets (:func:`_data_sources`) and train the runs of the jobs that will
    run on them (:func:`train_first`): the sources, the modalities each data set has, and
    the record of the runs."""
    sources, bundles = _data_sources(datasets, data, profile)
    available = {d: tuple(s["modalities"]) for d, s in sources.items() if "modalities" in s}
    first = train_first([job for job in jobs if missing_modalities(job, available) is None], bundles, profile)
    return sources, available, first


def caller_path(path: str | Path) -> str:
    """``path`` as an absolute path, a relative one read against the current folder (the
    caller's), with ``~`` expanded; the synthetic default ('synthetic') is left as it is."""
    if str(path) == "synthetic":
        return str(path)
    return str(Path(path).expanduser().absolute())


def reproduce(profile: str = "quick", datasets: tuple[str, ...] | None = None,
              data: str | None = None, seeds: int | None = None, only: list[str] | None = None,
              out: str | Path | None = None, in_place: bool = False,
              source_dir: Path | None = None, precision: str = "fp32", workers: int | None = None,
              runs_only: bool = False) -> int:
    """Run the sequence; return 0 when every notebook succeeded, 1 otherwise. ``precision``
    reaches every training run of the notebooks through ``$CMN_PRECISION`` (their kernels
    inherit the environment); it is recorded in each run's hash and summary. ``workers``:
    notebooks at once (default :func:`default_workers`; ``--in-place`` runs one at a time).
    The runs the notebooks train are trained first, in one pool (:func:`train_first`);
    ``runs_only`` stops there (0 when every run is trained or cached) and runs no notebook."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    # paths are the caller's: the notebooks run in notebooks/, so a relative path is made
    # absolute here, against the folder the command was given in
    data = caller_path(data) if data is not None else None
    workers = default_workers(profile) if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers (--jobs) must be 1 or more, got {workers}")
    with environment(CMN_PRECISION=precision):  # the kernels inherit it
        return _reproduce(profile, tuple(datasets or synthetic_datasets()), data, seeds, only, out, in_place,
                          source_dir, workers, runs_only)


def default_workers(profile: str) -> int:
    """Notebooks run at once by default: :func:`cmnlib.runs.default_processes`, 2 for the
    quick profile on two usable cores or more, whose notebooks read runs trained first; else
    1, as a paper-profile notebook trains its own runs with every core."""
    return runs.default_processes(profile)


def kernel_threads(workers: int) -> str:
    """``OMP_NUM_THREADS`` for each of ``workers`` kernels running at once
    (:func:`cmnlib.config.cores_share`): with the default of one thread per core each, two
    notebooks at once took as long as one after the other (docs/performance.md)."""
    return str(cores_share(workers))


@contextmanager
def environment(**values: str | None):
    """Within the block, ``os.environ`` has ``values`` (None: leave that variable as it is);
    afterwards this process gets its own environment back (processes started inside keep
    what they inherited)."""
    before = {name: os.environ.get(name) for name in values}
    for name, value in values.items():
        if value is not None:
            os.environ[name] = value
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _run_one(job: Job, build: Path, source_dir: Path) -> dict:
    """Execute one notebook into the build folder (and its HTML); its manifest record."""
    target = build / "notebooks" / f"{job.name}.ipynb"
    t0 = time.time()
    status, detail = "ok", ""
    try:
        _execute(job, target, source_dir)
    except papermill.PapermillExecutionError as error:  # raised on the first failing cell
        status, detail = "failed", _failure(error, job)
    except Exception as error:  # the kernel died, the notebook could not be read, ...
        status, detail = "failed", f"{type(error).__name__}: {error}"
    seconds = time.time() - t0
    if target.exists():
        report_page.export_html(target, build / "html" / f"{job.name}.html")
    print(f"  {job.name:<28} {status:<6} {seconds:6.1f} s" + (f"  failed at {detail}" if detail else ""),
          flush=True)
    return {"notebook": job.name, "status": status, "seconds": round(seconds, 1), "parameters": job.parameters,
            **({"error": detail} if detail else {})}


def run_jobs(jobs: list[Job], build: Path, source_dir: Path, available: dict,
             workers: int = 1) -> tuple[list[dict], set]:
    """Execute ``jobs``, ``workers`` at a time, each only once every notebook it depends on
    (:data:`DEPENDS_ON`) has finished; a job whose data lacks its modalities, or whose
    dependency failed, is skipped with one line. With one worker the jobs run in plan order;
    with more, the notebooks others depend on start first, then the other notebooks of the
    whole sequence, and the per-data-set walkthroughs run beside them and fill the end,
    each kernel with its share of the cores
    (:func:`kernel_threads`, unless ``OMP_NUM_THREADS`` is set). Returns the manifest
    records, in plan order, and the notebooks (stems) that failed or were skipped for a
    failure."""
    workers = max(1, min(workers, len(jobs)))  # each kernel's share of the cores counts those that run
    stems = [job.notebook.stem for job in jobs]
    left_of = Counter(stems)  # jobs not yet finished, per notebook
    needed = {d for deps in DEPENDS_ON.values() for d in deps}
    # several at a time: the notebooks others depend on, then those of the whole sequence
    # (one kernel each, the longest), then the per-data-set walkthroughs, which fill the end
    order = list(range(len(jobs))) if workers <= 1 else sorted(
        range(len(jobs)), key=lambda i: (stems[i] not in needed, "dataset" in jobs[i].parameters, i))
    records: dict[int, dict] = {}
    failed: set = set()

    def finish(i: int, record: dict) -> None:
        records[i] = record
        left_of[stems[i]] -= 1
        if record["status"] == "failed" or record.get("reason", "").startswith("depends on failed"):
            failed.add(stems[i])

    def ready(i: int) -> bool:
        return all(left_of[d] == 0 for d in DEPENDS_ON.get(stems[i], []))

    def skipped(i: int) -> bool:
        """Record job i as skipped, with one line, when its data lacks its modalities or a
        notebook it depends on failed."""
        job = jobs[i]
        reason = missing_modalities(job, available)
        blocked = [d for d in DEPENDS_ON.get(stems[i], []) if d in failed]
        if blocked:
            reason = f"depends on failed {', '.join(blocked)}"
        if reason:
            print(f"  {job.name:<28} skipped ({reason})", flush=True)
            finish(i, {"notebook": job.name, "status": "skipped", "parameters": job.parameters, "reason": reason})
        return bool(reason)

    if workers <= 1:  # in this thread, so that Ctrl-C stops the notebook at once
        for i in order:
            if not skipped(i):
                finish(i, _run_one(jobs[i], build, source_dir))
        return [records[i] for i in range(len(jobs))], failed
    running: dict = {}
    threads = None if "OMP_NUM_THREADS" in os.environ else kernel_threads(workers)  # a user's setting stands
    with environment(OMP_NUM_THREADS=threads), ThreadPoolExecutor(workers) as pool:
        while order or running:
            while len(running) < workers:
                i = next((i for i in order if ready(i)), None)
                if i is None:
                    break
                order.remove(i)
                if not skipped(i):
                    running[pool.submit(_run_one, jobs[i], build, source_dir)] = i
            if not running:
                if order:  # cannot happen with DEPENDS_ON's order; never wait forever
                    raise RuntimeError(f"notebooks waiting on each other: {[jobs[i].name for i in order]}")
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                finish(running.pop(future), future.result())
    return [records[i] for i in range(len(jobs))], failed


def _reproduce(profile, datasets, data, seeds, only, out, in_place, source_dir, workers, runs_only=False) -> int:
    if in_place:
        return _reproduce_in_place(profile, only, source_dir, runs_only)
    if runs_only:
        jobs = plan_jobs(profile, tuple(datasets), data, seeds, only, None, source_dir or notebooks_dir())
        sources, _, first = _data_and_runs(jobs, datasets, data, profile)
        for dataset, source in sources.items():
            if "error" in source:
                print(f"reproduce: {dataset}: {source['error']}")
        return 1 if (first and "error" in first) or any("error" in s for s in sources.values()) else 0
    out = Path(caller_path(out)) if out is not None else reports_dir() / profile
    out.parent.mkdir(parents=True, exist_ok=True)
    build = out.parent / f".{out.name}.building"
    if build.exists():
        shutil.rmtree(build)
    for sub in ("notebooks", "html", "figures", "tables"):
        (build / sub).mkdir(parents=True)
    source_dir = source_dir or notebooks_dir(announce=True)
    jobs = plan_jobs(profile, tuple(datasets), data, seeds, only, build, source_dir)
    print(f"reproduce: {len(jobs)} notebooks, profile={profile}, datasets={','.join(datasets)}"
          + (f", {workers} at a time" if workers > 1 and len(jobs) > 1 else "") + f" -> {out}")
    started = time.time()
    sources, available, first = _data_and_runs(jobs, datasets, data, profile)
    notebooks_started = time.time()
    records, failed = run_jobs(jobs, build, source_dir, available, workers)
    finished = time.time()
    runs_seconds = (first or {}).get("seconds", 0.0)
    # where the time went: reading (or writing) the data, the runs trained first, the notebooks
    phases = {"data": round(notebooks_started - started - runs_seconds, 1), "runs": runs_seconds,
              "notebooks": round(finished - notebooks_started, 1)}
    manifest = {"profile": profile, "datasets": list(datasets), "data": data or "synthetic",
                "seeds": seeds, "workers": workers, "runs_first": first, "notebooks": records,
                "total_seconds": round(finished - started, 1), "phase_seconds": phases,
                "git_commit": _git_commit(), "versions": _versions(),
                "data_sources": sources,
                "command": " ".join(sys.argv)}
    write_json(build / "manifest.json", manifest)
    audit.assemble(build / "tables")
    report_page.write_index(build, manifest)
    if failed:
        destination = out.parent / f"{out.name}.failed"
        if destination.exists():
            shutil.rmtree(destination)
        build.rename(destination)
        earlier = (f"the earlier report in {out} is untouched" if out.exists()
                   else f"there was no earlier report in {out}")
        print(f"reproduce: FAILED ({', '.join(sorted(failed))}); {earlier}; this run is in {destination}")
        return 1
    if out.exists():
        old = out.parent / f".{out.name}.old"
        if old.exists():
            shutil.rmtree(old)
        out.rename(old)
        build.rename(out)
        shutil.rmtree(old)
    else:
        build.rename(out)
    print(f"reproduce: done in {manifest['total_seconds']:.0f} s (the data {phases['data']:.0f} s, the runs "
          f"{phases['runs']:.0f} s, the notebooks {phases['notebooks']:.0f} s) -> {out / 'index.html'}")
    return 0


def _reproduce_in_place(profile: str, only, source_dir, runs_only: bool = False) -> int:
    """Re-execute the notebooks in notebooks/ with their defaults and write them back
    (``runs_only``: train the runs they will read, as nbval runs them, and stop there)."""
    source_dir = source_dir or notebooks_dir()
    paths = sorted(source_dir.glob("[0-9][0-9]_*.ipynb"))
    paths = [p for p in paths if not only or any(p.name.startswith(o) for o in only)]
    jobs = [Job(path, path.stem, {}, declared_parameters(path)) for path in paths]
    datasets = sorted({d for job in jobs for d in job.effective_parameters().get("datasets", [])}
                      | {job.effective_parameters()["dataset"] for job in jobs if "dataset" in job.defaults})
    _, _, first = _data_and_runs(jobs, datasets, None, profile)
    if runs_only:
        return 1 if first and "error" in first else 0
    status = 0
    for job in jobs:
        t0 = time.time()
        tmp = job.notebook.with_suffix(".running.ipynb")
        try:
            _execute(job, tmp, source_dir)
        except Exception as error:
            where = _failure(error, job) if isinstance(error, papermill.PapermillExecutionError) else repr(error)
            print(f"  {job.notebook.name:<28} FAILED at {where}; kept the committed copy")
            tmp.unlink(missing_ok=True)
            status = 1
            continue
        _clean_metadata(tmp)
        tmp.replace(job.notebook)
        print(f"  {job.notebook.name:<28} ok {time.time() - t0:6.1f} s", flush=True)
    return status
