import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from ganlib import training
from ganlib.errors import DataError, GanlibError, NonFiniteLossError

RESUME_SCRIPT = Path(__file__).with_name("resume_script.py")
TOTAL_STEPS = 10  # checkpoints after steps 2, 5, 8 and 9


# ---------------------------------------------------------------------------- exact resume

def _run_resume_script(out_dir: str, kill_at: int | None) -> None:
    # Runs in a forked child: torch is already imported, so each run costs a fraction of a second
    # instead of a fresh interpreter's import time. os._exit in the script kills it like a crash.
    import contextlib
    import importlib.util

    os.environ.pop("RESUME_KILL_AT", None)
    if kill_at is not None:
        os.environ["RESUME_KILL_AT"] = str(kill_at)
    spec = importlib.util.spec_from_file_location("resume_script", RESUME_SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(out_dir) / "stdout.txt", "w", buffering=1) as log, contextlib.redirect_stdout(log):
        script.main(Path(out_dir), TOTAL_STEPS)


def _start_script(out_dir: Path, kill_at: int | None = None):
    """Start tests/resume_script.py in a child process (forked where possible, else a fresh one)."""
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    proc = ctx.Process(target=_run_resume_script, args=(str(out_dir), kill_at))
    proc.start()
    return proc, out_dir


def _finish(started) -> tuple[int, str]:
    proc, out_dir = started
    proc.join(timeout=120)
    return proc.exitcode, (out_dir / "stdout.txt").read_text()


def _assert_bitwise_equal(a, b, where="final"):
    if torch.is_tensor(a):
        assert torch.is_tensor(b) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_bitwise_equal(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_bitwise_equal(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


@pytest.mark.slow
def test_killed_and_resumed_run_is_bitwise_equal_to_uninterrupted(tmp_path):
    """The key test. One run goes straight through; the other is killed (os._exit(3), no cleanup)
    after step 1 (before any checkpoint), after step 4 (newest checkpoint: step 2) and after step 7
    (newest: step 5), restarted each time, then finished. Both processes run side by side."""
    straight_dir, killed_dir = tmp_path / "straight", tmp_path / "killed"
    # Building an optimizer imports torch._dynamo (seconds); do it once here, before forking.
    torch.optim.Adam([nn.Parameter(torch.zeros(1))])
    straight = _start_script(straight_dir)
    resumed_from = []
    for kill_at in (1, 4, 7):
        rc, out = _finish(_start_script(killed_dir, kill_at=kill_at))
        assert rc == 3, out
        assert not (killed_dir / "final.pt").exists()
        resumed_from.append(out.strip())
    rc, out = _finish(_start_script(killed_dir))
    assert rc == 0, out
    resumed_from.append(out.strip())
    assert resumed_from == ["",  # killed after step 1: nothing saved yet, so the rerun starts afresh
                            "",
                            f"Resuming from {killed_dir / 'checkpoints' / 'step_00000002.pt'} (step 2)",
                            f"Resuming from {killed_dir / 'checkpoints' / 'step_00000005.pt'} (step 5)"]
    rc, out = _finish(straight)
    assert rc == 0, out

    expected = torch.load(straight_dir / "final.pt", weights_only=False)
    got = torch.load(killed_dir / "final.pt", weights_only=False)
    assert set(got) == {"G", "D", "opt_G", "opt_D", "sched", "ema", "pool", "amp", "rng"}
    _assert_bitwise_equal(expected, got)
    # The tracker dropped the rows the killed runs logged after their last checkpoint.
    assert (killed_dir / "log.jsonl").read_text() == (straight_dir / "log.jsonl").read_text()


# ---------------------------------------------------------------------------- checkpoints

class Counter:
    """A stateful object that is not a module: anything with state_dict/load_state_dict goes in."""

    def __init__(self):
        self.n = 0

    def state_dict(self):
        return {"n": self.n}

    def load_state_dict(self, state):
        self.n = state["n"]


def _state():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    return dict(model=model, opt=torch.optim.Adam(model.parameters(), lr=0.1), counter=Counter())


def test_save_keeps_last_n_and_restore_loads_newest(tmp_path, capsys):
    state = _state()
    ckpt = training.Checkpointer(tmp_path / "ckpt", keep=2)
    for step in range(5):
        state["counter"].n = step
        with torch.no_grad():
            state["model"].weight.fill_(step)
        ckpt.save(step, state, epoch=step // 2, extra={"best": step * 10})
    assert [p.name for p in ckpt.paths()] == ["step_00000003.pt", "step_00000004.pt"]
    assert ckpt.latest() == tmp_path / "ckpt" / "step_00000004.pt"
    assert not [p for p in (tmp_path / "ckpt").iterdir() if p.name.startswith(".")]  # no temp files left

    fresh = _state()
    start = training.Checkpointer(tmp_path / "ckpt").restore(fresh)
    assert start["step"] == 4 and start["next_step"] == 5 and start["epoch"] == 2 and start["extra"] == {"best": 40}
    assert fresh["counter"].n == 4
    assert torch.equal(fresh["model"].weight, torch.full((2, 3), 4.0))
    assert "Resuming from" in capsys.readouterr().out


def test_restore_without_checkpoints_returns_none(tmp_path):
    assert training.Checkpointer(tmp_path / "none").restore(_state()) is None


def test_latest_skips_temp_and_truncated_files_with_a_warning(tmp_path, capsys):
    state = _state()
    ckpt = training.Checkpointer(tmp_path, keep=5)
    ckpt.save(1, state)
    good = ckpt.save(2, state)
    # A crash mid-write leaves a temp file; a disk-full or copy accident leaves a truncated newest file.
    (tmp_path / ".step_00000003.pt.tmp-999").write_bytes(good.read_bytes()[:100])
    (tmp_path / "step_00000004.pt").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    capsys.readouterr()
    assert ckpt.latest() == good
    out = capsys.readouterr().out
    assert "skipping unreadable checkpoint" in out and "step_00000004.pt" in out
    assert ckpt.restore(_state())["step"] == 2


def test_restore_brings_back_every_rng_state(tmp_path):
    state = _state()
    ckpt = training.Checkpointer(tmp_path)
    training.seed_everything(123)
    ckpt.save(0, state)
    expected = (random.random(), np.random.rand(), torch.rand(3))
    random.random(), np.random.rand(), torch.rand(3)  # move every stream on
    ckpt.restore(state)
    got = (random.random(), np.random.rand(), torch.rand(3))
    assert got[0] == expected[0] and got[1] == expected[1] and torch.equal(got[2], expected[2])


def test_restore_names_mismatched_keys(tmp_path):
    ckpt = training.Checkpointer(tmp_path)
    ckpt.save(0, _state())
    other = _state()
    other["ema"] = Counter()
    del other["counter"]
    with pytest.raises(GanlibError, match=r"missing \['ema'\], not used \['counter'\]"):
        ckpt.restore(other)


def test_save_rejects_objects_without_state_dict(tmp_path):
    with pytest.raises(GanlibError, match=r"state\['names'\] is a list.*extra="):
        training.Checkpointer(tmp_path).save(0, dict(names=["a"]))


def test_due_every_n_and_at_the_end():
    ckpt = training.Checkpointer("unused")
    assert [s for s in range(10) if ckpt.due(s, every=3, total_steps=10)] == [2, 5, 8, 9]
    assert [s for s in range(10) if ckpt.due(s, every=4)] == [3, 7]


# ---------------------------------------------------------------------------- check_finite

def test_check_finite_returns_floats():
    assert training.check_finite(3, a=torch.tensor(1.5), b=2) == {"a": 1.5, "b": 2.0}


def test_check_finite_names_loss_step_and_last_good_checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ckpt = training.Checkpointer("checkpoints")
    ckpt.save(5, _state())
    with pytest.raises(NonFiniteLossError) as err:
        training.check_finite(123, ckpt=ckpt, loss_G=torch.tensor(0.3), loss_D=torch.tensor(float("nan")))
    assert str(err.value) == (
        "loss_D became nan at step 123. Training stopped; the last good checkpoint is kept in "
        f"{Path('checkpoints/step_00000005.pt')} (resume re-runs from it). "
        "Try a lower learning rate, disabling AMP, or gradient clipping.")
    # Never save after a non-finite loss: the weights may already hold NaN.
    with pytest.raises(GanlibError, match="Not saving a checkpoint at step 124.*non-finite at step 123"):
        ckpt.save(124, _state())
    assert [p.name for p in ckpt.paths()] == ["step_00000005.pt"]


def test_check_finite_without_checkpoint():
    with pytest.raises(NonFiniteLossError, match=r"^loss became inf at step 0\. Training stopped; no checkpoint"):
        training.check_finite(0, loss=float("inf"))


# ---------------------------------------------------------------------------- StepLoader

class IndexDataset(torch.utils.data.Dataset):
    def __init__(self, n):
        self.n = n
        self.epochs = []

    def set_epoch(self, epoch):
        self.epochs.append(epoch)

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return torch.tensor(i)


def test_step_loader_order_is_the_seeded_permutation_per_epoch():
    data = IndexDataset(10)
    loader = training.StepLoader(data, batch_size=3, seed=5)
    assert loader.steps_per_epoch == 3 and len(loader) == 3  # drop_last: item 10th of each epoch unused
    batches = dict(loader.iterate(0, 7))
    for epoch in range(3):
        perm = torch.randperm(10, generator=torch.Generator().manual_seed(5 * 100003 + epoch))
        for position in range(3):
            step = epoch * 3 + position
            if step < 7:
                assert torch.equal(batches[step], perm[position * 3:position * 3 + 3])
    assert data.epochs == [0, 1, 2]


def test_step_loader_resumes_mid_epoch_with_the_same_batches():
    loader = training.StepLoader(IndexDataset(10), batch_size=4, seed=1, drop_last=False)
    assert loader.steps_per_epoch == 3
    full = list(loader.iterate(0, 8))
    tail = list(loader.iterate(5, 8))
    assert [s for s, _ in tail] == [5, 6, 7]
    for (s1, b1), (s2, b2) in zip(full[5:], tail):
        assert s1 == s2 and torch.equal(b1, b2)
    assert len(full[2][1]) == 2  # drop_last=False keeps the short last batch


def test_step_loader_leaves_global_rng_alone_and_matches_with_workers():
    loader = training.StepLoader(IndexDataset(8), batch_size=2, seed=0, num_workers=1)
    before = torch.get_rng_state()
    with_worker = [b for _, b in loader.iterate(2, 6)]
    assert torch.equal(before, torch.get_rng_state())
    loader.num_workers = 0
    in_process = [b for _, b in loader.iterate(2, 6)]
    assert all(torch.equal(a, b) for a, b in zip(with_worker, in_process))


def test_step_loader_rejects_bad_sizes():
    with pytest.raises(DataError, match="is empty"):
        training.StepLoader(IndexDataset(0), batch_size=1)
    with pytest.raises(DataError, match=r"batch_size=8 is larger than the dataset \(5 items\).*batch_size <= 5"):
        training.StepLoader(IndexDataset(5), batch_size=8)


# ---------------------------------------------------------------------------- EMA, pool, schedule

def test_ema_with_decay_matches_hand_computed_values():
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = training.EMA(model, decay=0.75)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)   # 0.75 * 0 + 0.25 * 1
    assert ema.shadow.weight.item() == 0.25
    ema.update(model)   # 0.75 * 0.25 + 0.25 * 1
    assert ema.shadow.weight.item() == 0.4375
    assert not ema.shadow.training and not ema.shadow.weight.requires_grad


def test_ema_half_life_rampup_and_buffers():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = training.EMA(model, half_life_images=8, batch_size=4)
    assert ema.beta() == 0.5 ** 0.5   # after 8 images (2 updates) old weights weigh 0.5
    with torch.no_grad():
        model[1].running_mean.fill_(3.0)
    ema.update(model)
    assert torch.equal(ema.shadow[1].running_mean, torch.full((2,), 3.0))  # buffers copied, not averaged

    ramped = training.EMA(model, half_life_images=1000, batch_size=4, rampup=0.5)
    assert ramped.beta() == 0.0          # nothing seen yet: the first update copies the weights
    ramped.update(model)
    assert ramped.beta() == 0.5 ** (4 / 2)   # half-life capped at 0.5 * 4 images seen

    restored = training.EMA(model, half_life_images=1000, batch_size=4, rampup=0.5)
    restored.load_state_dict(ramped.state_dict())
    assert restored.num_updates == 1 and restored.beta() == ramped.beta()


def test_ema_needs_exactly_one_rate():
    with pytest.raises(GanlibError, match="exactly one of decay"):
        training.EMA(nn.Linear(1, 1))
    with pytest.raises(GanlibError, match="needs batch_size"):
        training.EMA(nn.Linear(1, 1), half_life_images=10)


def test_image_pool_fills_first_then_swaps_with_probability_half():
    pool = training.ImagePool(size=3)
    first = torch.arange(3.0).reshape(3, 1, 1, 1)
    assert torch.equal(pool(first), first)       # until full: returned unchanged, stored
    assert len(pool) == 3

    new = torch.full((4, 1, 1, 1), 10.0) + torch.arange(4.0).reshape(4, 1, 1, 1)
    torch.manual_seed(0)
    out = pool(new)
    # Replay the same draws by hand.
    torch.manual_seed(0)
    stored, expected = [0.0, 1.0, 2.0], []
    for value in new.flatten().tolist():
        if torch.rand(()).item() < 0.5:
            k = int(torch.randint(0, 3, ()).item())
            expected.append(stored[k])
            stored[k] = value
        else:
            expected.append(value)
    assert out.flatten().tolist() == expected
    assert [t.item() for t in pool.images] == stored
    assert expected != new.flatten().tolist()     # seed 0 does swap at least once

    again = training.ImagePool(size=3)
    again.load_state_dict(pool.state_dict())
    torch.manual_seed(1)
    a = pool(new)
    torch.manual_seed(1)
    assert torch.equal(again(new), a)


def test_linear_decay_values_and_exact_resume():
    param = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    sched = training.linear_decay(opt, total_steps=10, decay_start=4)
    lrs = [sched.get_last_lr()[0]]
    for _ in range(10):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    assert lrs[:5] == [1.0] * 5
    assert lrs[5] == pytest.approx(5 / 6) and lrs[7] == pytest.approx(3 / 6) and lrs[10] == 0.0

    # Resume after 7 steps: the restored pair continues exactly.
    opt_a = torch.optim.SGD([param], lr=1.0)
    sched_a = training.linear_decay(opt_a, total_steps=10, decay_start=4)
    for _ in range(7):
        opt_a.step()
        sched_a.step()
    opt_b = torch.optim.SGD([param], lr=1.0)
    sched_b = training.linear_decay(opt_b, total_steps=10, decay_start=4)
    opt_b.load_state_dict(opt_a.state_dict())
    sched_b.load_state_dict(sched_a.state_dict())
    assert sched_b.last_epoch == 7 and opt_b.param_groups[0]["lr"] == lrs[7]
    sched_a.step()
    sched_b.step()
    assert opt_b.param_groups[0]["lr"] == opt_a.param_groups[0]["lr"] == lrs[8]


# ---------------------------------------------------------------------------- small helpers

def test_seed_everything_repeats_all_streams():
    training.seed_everything(42)
    a = (random.random(), np.random.rand(), torch.rand(2))
    training.seed_everything(42)
    b = (random.random(), np.random.rand(), torch.rand(2))
    assert a[:2] == b[:2] and torch.equal(a[2], b[2])


def test_pick_device_and_amp_on_cpu(capsys):
    dev = training.pick_device("cpu")
    assert dev == torch.device("cpu") and capsys.readouterr().out == "Device: cpu\n"
    if not torch.cuda.is_available():
        with pytest.raises(GanlibError, match="CUDA is not available.*device='auto'"):
            training.pick_device("cuda")
    amp = training.Amp(dev, enabled=True, dtype="fp16")
    assert not amp.enabled and amp.state_dict() == {}     # AMP is CUDA-only
    assert training.setup_backends(dev, channels_last=True) == torch.contiguous_format
    with pytest.raises(GanlibError, match="Use 'bf16' or 'fp16'"):
        training.Amp(dev, dtype="fp8")


def test_count_parameters_and_summary_is_deterministic_and_side_effect_free():
    model = nn.Sequential()
    model.add_module("fc", nn.Linear(4, 8))
    model.add_module("bn", nn.BatchNorm1d(8))
    model.add_module("drop", nn.Dropout(0.5))
    assert training.count_parameters(model) == 4 * 8 + 8 + 16
    model.bn.weight.requires_grad_(False)
    assert training.count_parameters(model, trainable_only=True) == 4 * 8 + 8 + 8
    model.train()
    rng = torch.get_rng_state()
    text = training.summary(model, (2, 4))
    assert text == training.summary(model, torch.zeros(2, 4))
    assert text.splitlines() == [
        "layer   type         output shape  params",
        "-----------------------------------------",
        "fc      Linear       2x8               40",
        "bn      BatchNorm1d  2x8               16",
        "drop    Dropout      2x8                0",
        "output               2x8",
        "Sequential: 56 parameters (48 trainable)",
    ]
    assert model.training and torch.equal(model.bn.running_mean, torch.zeros(8))
    assert torch.equal(rng, torch.get_rng_state())


def test_progress_is_quiet_when_not_a_terminal():
    bar = training.progress(range(3), total=5, initial=2, desc="train", file=open(os.devnull, "w"))
    assert list(bar) == [0, 1, 2]
    assert bar.mininterval == 10.0 and bar.total == 5 and bar.n == 5
