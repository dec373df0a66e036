"""Faults injected into the files the program made and into the disk it writes to. A broken
derived file (data cache, checkpoint, run result) is set aside with one warning and rebuilt,
and the rebuilt result equals a clean run's bit for bit; a checkpoint that would run code is
never loaded; a full disk or a read-only folder is one line, and nothing is half-written."""
from __future__ import annotations

import errno
import os
import shutil

import numpy as np
import pytest
import torch

from cmnlib import cli
from cmnlib.atomic import DerivedFileWarning
from cmnlib.data import load_dataset
from cmnlib.spec import RunSpec
from cmnlib.train import train_seeds

TINY_LSTM = dict(model="lstm_l", dataset="iemocap", modalities="L", profile="quick")


def _spec():
    return RunSpec(**TINY_LSTM).with_training(epochs=2)


@pytest.fixture()
def bundle(tiny_iemocap_dir, data_home):
    return load_dataset("iemocap", tiny_iemocap_dir / "iemocap_data.pkl")


@pytest.fixture()
def clean(bundle, tmp_path):
    """A clean run of two seeds, trained once, to compare every healed run with."""
    return train_seeds(_spec(), bundle, 2, root=tmp_path / "clean", progress=False)


def _messages(stderr: str) -> list[str]:
    """The lines a user reads in stderr, progress bars (carriage returns) left out."""
    return [line for line in stderr.replace("\r", "\n").splitlines() if line.startswith(("error:", "warning:"))]


def _outputs(result):
    return [m.outputs["test"] for m in result.members]


def test_a_truncated_data_cache_is_set_aside_and_rebuilt(tiny_iemocap_dir, data_home):
    first = load_dataset("iemocap", tiny_iemocap_dir / "iemocap_data.pkl")
    cache = next((data_home / "cache").glob("iemocap-*.h5"))
    cache.write_bytes(cache.read_bytes()[:200])  # a crash of another tool, a copy cut short
    with pytest.warns(DerivedFileWarning, match=rf"{cache.name}: unreadable data cache .* set aside as "
                                                rf"{cache.name}.broken and rebuilt"):
        again = load_dataset("iemocap", tiny_iemocap_dir / "iemocap_data.pkl")
    assert (cache.parent / (cache.name + ".broken")).stat().st_size == 200  # kept, not deleted
    for split in ("train", "valid", "test"):
        np.testing.assert_array_equal(again[split].labels, first[split].labels)
        np.testing.assert_array_equal(again[split].features["text"], first[split].features["text"])
    load_dataset("iemocap", tiny_iemocap_dir / "iemocap_data.pkl")  # the rebuilt cache reads


@pytest.mark.parametrize("fault, file, expected", [
    ("truncate", "checkpoint.pt", "checkpoint.pt unreadable"),
    ("foreign", "checkpoint.pt", "checkpoint.pt unreadable"),
    ("other model", "checkpoint.pt", "checkpoint.pt does not fit this run"),
    ("payload", "checkpoint.pt", "checkpoint.pt refused: loading it would run code"),
    ("truncate", "result.json", "result.json unreadable"),
    ("truncate", "outputs.pt", "outputs.pt unreadable"),
    ("payload", "outputs.pt", "outputs.pt refused: loading it would run code"),
])
def test_a_broken_run_file_is_set_aside_and_the_seed_retrained_bit_for_bit(fault, file, expected, bundle, clean,
                                                                            tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(clean.folder, root / clean.folder.name)
    seed_dir = root / clean.folder.name / "seed1"
    if file == "checkpoint.pt":  # an unfinished seed: its result is not there yet, its checkpoint is
        (seed_dir / "result.json").unlink()
        (seed_dir / "outputs.pt").unlink()
    path = seed_dir / file
    marker = tmp_path / "payload-ran"
    if fault == "truncate":
        path.write_bytes(path.read_bytes()[: max(1, path.stat().st_size // 2)])
    elif fault == "foreign":
        path.write_bytes(b"not a checkpoint at all")
    elif fault == "other model":
        torch.save({"model": {"weight": torch.zeros(2)}, "optimizer": {}, "state": {}}, path)
    else:
        class Payload:
            def __reduce__(self):
                return (open, (str(marker), "w"))
        torch.save({"model": Payload()}, path)
    with pytest.warns(DerivedFileWarning, match=expected):
        healed = train_seeds(_spec(), bundle, 2, root=root, progress=False)
    assert not marker.exists()  # the payload never ran
    assert (seed_dir / (file + ".broken")).exists()  # set aside, not deleted
    for a, b in zip(_outputs(healed), _outputs(clean)):
        np.testing.assert_array_equal(a, b)  # the retrained seed is the clean one, bit for bit


def test_a_full_disk_is_one_line_and_leaves_nothing_half_written(tiny_iemocap_dir, tmp_path, monkeypatch, capsys,
                                                                 data_home):
    """ENOSPC injected at the first write of a checkpoint: one line naming the file and the
    free space, exit 2, no temporary file left; the same command then finishes the run."""
    import cmnlib.atomic as atomic
    real_replace = os.replace
    calls = {"n": 0}

    def full(src, dst):
        if str(dst).endswith("checkpoint.pt") and calls["n"] == 0:
            calls["n"] += 1
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", full)
    args = ["train", "--dataset", "iemocap", "--data", str(tiny_iemocap_dir / "iemocap_data.pkl"), "--model",
            "lstm_l", "--epochs", "2", "--seeds", "1", "--out", str(tmp_path / "runs")]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    (line,) = _messages(err)
    assert line.startswith("error: no space left on the device while writing ")
    assert "checkpoint.pt" in line and "MB free" in line and "Traceback" not in err
    assert not list((tmp_path / "runs").rglob("*.tmp"))
    assert cli.main(args) == 0  # space again: the run continues
    assert "seed 0: best epoch" in capsys.readouterr().out


def test_ctrl_c_is_one_line_and_the_rerun_finishes_the_run(tiny_iemocap_dir, tmp_path, monkeypatch, capsys,
                                                          data_home):
    """Ctrl-C (a KeyboardInterrupt) while the second checkpoint is saved: one line, exit
    130 as a shell reports SIGINT, no temporary file left; the same command then finishes
    the run from the first checkpoint, with the result of a run never interrupted."""
    import json

    import cmnlib.atomic as atomic
    real_replace = os.replace
    saved = {"n": 0}

    def interrupted(src, dst):
        if str(dst).endswith("checkpoint.pt"):
            saved["n"] += 1
            if saved["n"] == 2:
                raise KeyboardInterrupt
        return real_replace(src, dst)

    def train(out):
        return cli.main(["train", "--dataset", "iemocap", "--data", str(tiny_iemocap_dir / "iemocap_data.pkl"),
                         "--model", "lstm_l", "--epochs", "3", "--seeds", "1", "--out", str(out)])

    monkeypatch.setattr(atomic.os, "replace", interrupted)
    assert train(tmp_path / "cut") == 130
    err = capsys.readouterr().err
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("interrupted")]
    assert lines == ["interrupted: what was saved is kept (a rerun resumes the runs and rebuilds the report)"]
    assert "Traceback" not in err and not _messages(err)
    assert not list((tmp_path / "cut").rglob("*.tmp"))
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    assert train(tmp_path / "cut") == 0 and train(tmp_path / "whole") == 0

    def result(out):
        (path,) = out.rglob("result.json")
        return {k: v for k, v in json.loads(path.read_text()).items() if k in ("test", "valid", "best_epoch")}
    assert result(tmp_path / "cut") == result(tmp_path / "whole") != {}


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_one_line(tiny_iemocap_dir, tmp_path, capsys, data_home):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert cli.main(["train", "--dataset", "iemocap", "--data", str(tiny_iemocap_dir / "iemocap_data.pkl"),
                         "--model", "lstm_l", "--epochs", "1", "--seeds", "1", "--out", str(locked / "runs")]) == 2
    finally:
        locked.chmod(0o700)
    (line,) = _messages(capsys.readouterr().err)
    assert line.startswith("error: cannot write ")


def test_a_read_only_folder_is_one_line_as_root_too(tiny_iemocap_dir, tmp_path, monkeypatch, capsys, data_home):
    """The same, with EROFS injected (a read-only mount), which root cannot write either."""
    real_mkdir = os.mkdir

    def read_only(path, *args, **kwargs):
        if "locked" in str(path):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", read_only)
    assert cli.main(["train", "--dataset", "iemocap", "--data", str(tiny_iemocap_dir / "iemocap_data.pkl"),
                     "--model", "lstm_l", "--epochs", "1", "--seeds", "1", "--out",
                     str(tmp_path / "locked" / "runs")]) == 2
    err = capsys.readouterr().err
    (line,) = _messages(err)
    assert line.startswith("error: cannot write ") and "read-only file system" in line and "Traceback" not in err


def test_a_second_trainer_waits_for_the_first_and_a_dead_owners_lock_is_taken_over(tmp_path, capsys):
    import subprocess
    import threading

    from cmnlib.train import LOCK_FILE, seed_lock
    folder = tmp_path / "seed0"
    folder.mkdir()
    lock = folder / LOCK_FILE
    # a live owner (a sleeping child process): wait, say so once, go on when it lets go
    owner = subprocess.Popen(["sleep", "30"])
    try:
        lock.write_text(f"{owner.pid}\n")
        threading.Timer(0.5, lambda: lock.unlink()).start()
        with seed_lock(folder, wait_s=20, poll_s=0.05):
            assert lock.read_text().split()[0] == str(os.getpid())
        assert not lock.exists()  # released
        assert capsys.readouterr().out.count(f"waiting for process {owner.pid} to finish training") == 1
        # an owner that never lets go: a time-out that says what to do
        lock.write_text(f"{owner.pid}\n")
        with pytest.raises(TimeoutError, match="delete the lock file and run again"):
            with seed_lock(folder, wait_s=0.2, poll_s=0.05):
                pass
    finally:
        owner.kill()
        owner.wait()
    # the owner is gone (killed, like a trainer hit by kill -9): its lock is taken over
    with pytest.warns(UserWarning, match=f"left by process {owner.pid}, which no longer runs; taken over"):
        with seed_lock(folder, wait_s=5, poll_s=0.05):
            pass
    assert not lock.exists()


def test_a_finished_seed_is_read_while_another_process_holds_its_lock(bundle, clean, tmp_path, capsys):
    """Two notebooks reading one cached run do not wait on each other: a finished seed is
    read without the lock (its result.json is written last, atomically)."""
    import subprocess

    from cmnlib.train import LOCK_FILE, run_dir, train_one
    folder = run_dir(_spec(), bundle, tmp_path / "clean") / "seed0"
    owner = subprocess.Popen(["sleep", "30"])  # a live process that holds the seed's lock
    try:
        (folder / LOCK_FILE).write_text(f"{owner.pid}\n")
        result = train_one(_spec(), bundle, 0, folder, progress=False)
    finally:
        owner.kill()
        owner.wait()
    assert np.array_equal(result.outputs["test"], clean.members[0].outputs["test"])
    assert "waiting for process" not in capsys.readouterr().out
    assert (folder / LOCK_FILE).read_text().split()[0] == str(owner.pid)  # another process's lock: left alone


def test_two_processes_training_the_same_run_give_one_result(tiny_iemocap_dir, tmp_path):
    """Started together, both end well with the same numbers and no lock is left behind."""
    import subprocess
    import sys
    args = [sys.executable, "-m", "cmnlib", "train", "--dataset", "iemocap", "--data",
            str(tiny_iemocap_dir / "iemocap_data.pkl"), "--model", "lstm_l", "--epochs", "3", "--seeds", "1",
            "--out", str(tmp_path / "runs")]
    env = {**os.environ, "CMN_DATA_DIR": str(tmp_path / "data")}
    first, second = (subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                     for _ in range(2))
    out = [p.communicate(timeout=300) for p in (first, second)]
    assert first.returncode == second.returncode == 0, out
    lines = [[line for line in o.splitlines() if line.startswith("  seed 0")] for o, _ in out]
    assert lines[0] == lines[1] and lines[0]
    assert not list((tmp_path / "runs").rglob("train.lock"))


def test_an_atomic_write_gives_the_permissions_a_plain_write_would(tmp_path):
    """Files written whole-or-nothing are readable like any other file (not mkstemp's 0600):
    a new one gets 0666 less the umask, a replaced one keeps its own mode."""
    import os
    import stat

    from cmnlib.atomic import write_text
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    new = write_text(tmp_path / "new.txt", "y")
    assert stat.S_IMODE(new.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)
    os.chmod(new, 0o640)
    write_text(new, "z")
    assert stat.S_IMODE(new.stat().st_mode) == 0o640 and new.read_text() == "z"
