import json
import math
import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image

from ganlib import tracking
from ganlib.errors import GanlibError
from ganlib.tracking import Tracker, write_metrics


@pytest.fixture
def no_wandb(monkeypatch):
    # None in sys.modules makes `import wandb` raise: any import in disabled mode would fail the test.
    monkeypatch.setitem(sys.modules, "wandb", None)


def test_disabled_tracker_writes_jsonl_and_never_imports_wandb(tmp_path, no_wandb):
    with Tracker(tmp_path, config={"lr": 2e-4}) as t:
        t.log(0, loss_D=torch.tensor(1.5), loss_G=np.float32(0.25))
        t.log(1, loss_D=1.0)
        t.log(1, fid=30.0)
        history = t.history()
    assert t.mode == "disabled" and t.run is None
    assert history["step"] == [0, 1, 1] and history["loss_D"][:2] == [1.5, 1.0] and math.isnan(history["loss_D"][2])
    assert history["loss_G"][0] == 0.25 and math.isnan(history["loss_G"][1])
    assert math.isnan(history["fid"][0]) and history["fid"][2] == 30.0
    assert json.loads((tmp_path / "log.jsonl").read_text().splitlines()[0]) == {"step": 0, "loss_D": 1.5, "loss_G": 0.25}
    assert json.loads((tmp_path / "config.json").read_text()) == {"lr": 0.0002}


def test_resume_drops_rows_from_the_resume_step_on(tmp_path, no_wandb):
    with Tracker(tmp_path) as t:
        for step in range(10):
            t.log(step, loss=float(step))
    with open(tmp_path / "log.jsonl", "a") as f:
        f.write('{"step": 10, "lo')   # a crash mid-line
    with Tracker(tmp_path, resume_step=6) as t:
        assert t.history()["step"] == [0, 1, 2, 3, 4, 5]
        t.log(6, loss=60.0)
        assert t.history()["loss"][-2:] == [5.0, 60.0]
    with Tracker(tmp_path) as t:   # not a resume: a fresh log
        assert t.history() == {"step": []}


def test_named_logs_keep_separate_files_and_resume_independently(tmp_path, no_wandb):
    with Tracker(tmp_path, log_name="dcgan", config={"method": "dcgan"}) as t:
        for step in range(4):
            t.log(step, loss=float(step))
    with Tracker(tmp_path, log_name="wgan_gp") as t:
        t.log(0, loss=-1.0)
    with Tracker(tmp_path, log_name="dcgan", resume_step=2) as t:  # resuming one leaves the other alone
        assert t.history()["step"] == [0, 1]
    assert [json.loads(l)["loss"] for l in (tmp_path / "wgan_gp.jsonl").read_text().splitlines()] == [-1.0]
    assert json.loads((tmp_path / "dcgan.config.json").read_text()) == {"method": "dcgan"}
    assert not (tmp_path / "log.jsonl").exists()
    assert t.history()["step"] == [0, 1]  # still readable after close


def test_log_rejects_non_scalars(tmp_path, no_wandb):
    with Tracker(tmp_path) as t, pytest.raises(GanlibError, match=r"loss has shape \(2,\); log one number per name"):
        t.log(0, loss=torch.zeros(2))


def test_log_images_writes_a_png_grid(tmp_path, no_wandb):
    with Tracker(tmp_path) as t:
        path = t.log_images(120, "samples", torch.zeros(3, 3, 4, 4))
    assert path == tmp_path / "samples" / "samples_00000120.png"
    # 3 images of 4x4 in one row, 2-pixel padding: (2 + 4 + 2) x (2 + 3*(4 + 2))
    assert Image.open(path).size == (20, 8)


def test_online_without_api_key_falls_back_to_offline(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("NETRC", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))   # no ~/.netrc
    calls = []
    fake = types.ModuleType("wandb")
    fake.util = types.SimpleNamespace(generate_id=lambda: "run123")
    fake.Settings = lambda **kw: kw
    fake.init = lambda **kw: calls.append(kw) or types.SimpleNamespace(log=lambda *a, **k: None, finish=lambda: None)
    monkeypatch.setitem(sys.modules, "wandb", fake)

    t = Tracker(tmp_path / "run", mode="online", name="dcgan")
    t.close()
    assert "no API key found" in capsys.readouterr().out
    assert t.mode == "offline"
    assert len(calls) == 1 and calls[0]["mode"] == "offline" and calls[0]["id"] == "run123"
    assert calls[0]["settings"] == {"init_timeout": tracking.WANDB_INIT_TIMEOUT}
    assert calls[0]["dir"] == str(tmp_path / "run")


def test_resolve_mode_finds_key_in_env_or_netrc(tmp_path, monkeypatch):
    monkeypatch.delenv("NETRC", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert tracking.resolve_mode("online") == "online"
    monkeypatch.delenv("WANDB_API_KEY")
    netrc_file = tmp_path / ".netrc"
    netrc_file.write_text("machine api.wandb.ai\n  login user\n  password " + "y" * 40 + "\n")
    netrc_file.chmod(0o600)
    assert tracking.resolve_mode("online") == "online"
    assert tracking.resolve_mode("disabled") == "disabled"
    with pytest.raises(GanlibError, match="not one of"):
        tracking.resolve_mode("on")


def test_write_metrics_merges_rounds_and_sorts(tmp_path):
    write_metrics(tmp_path, {"fid": torch.tensor(31.234567891), "is": 2.0, "dcgan": {"steps": 100}})
    merged = write_metrics(tmp_path, {"dcgan": {"fid": np.float64(1 / 3)}, "fid": 29.5, "bad": float("nan")})
    assert merged == {"bad": None, "dcgan": {"fid": 0.333333, "steps": 100}, "fid": 29.5, "is": 2.0}
    text = (tmp_path / "metrics.json").read_text()
    assert json.loads(text) == merged
    assert list(json.loads(text)) == ["bad", "dcgan", "fid", "is"]
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]   # no temp file left
