"""Kaggle access without the network: mounts, local folders, archives, and the text of every error."""
import io
import tarfile
import types
import zipfile

import pytest

from ganlib import kaggle_data
from ganlib.errors import DataError
from ganlib.kaggle_data import KAGGLE_DATASETS, extract_archive, fetch, find_mounted, kaggle_credentials

SLUG = "jessicali9530/celeba-dataset"


@pytest.fixture
def no_credentials(tmp_path, monkeypatch):
    """A HOME, config dir and environment with no Kaggle credentials anywhere."""
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_KERNEL_RUN_TYPE", "KAGGLE_API_V1_TOKEN_PATH"):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(home / "kaggle_config"))
    return home


def test_known_slugs_listed():
    assert {"jessicali9530/celeba-dataset", "badasstechie/celebahq-resized-256x256", "romaingraux/bitmojis",
            "minhquntntht/wrist-watch-128", "solesensei/solesensei_bdd100k",
            "electraawais/cityscape-dataset"} <= set(KAGGLE_DATASETS)
    assert all(isinstance(v, str) and v for v in KAGGLE_DATASETS.values())


def test_every_notebook_dataset_is_a_known_slug():
    from ganlib import runner

    for name in runner.available_notebooks():
        for slug in runner.notebook_info(name)["kaggle_datasets"]:
            assert slug in KAGGLE_DATASETS, (name, slug)


@pytest.mark.parametrize("layout", ["{name}", "datasets/{owner}/{name}", "{owner}/{name}"])
def test_find_mounted_every_layout(tmp_path, layout):
    mount = tmp_path / layout.format(owner="jessicali9530", name="celeba-dataset")
    (mount / "img_align_celeba").mkdir(parents=True)
    assert find_mounted(SLUG, input_root=tmp_path) == mount


def test_find_mounted_none_when_absent_or_empty(tmp_path):
    assert find_mounted(SLUG, input_root=tmp_path / "nothing") is None
    (tmp_path / "celeba-dataset").mkdir()  # an empty folder is not a mount
    assert find_mounted(SLUG, input_root=tmp_path) is None


def test_bad_slug_message():
    with pytest.raises(DataError, match=r"'celeba' is not a Kaggle dataset slug; write it as 'owner/name'"):
        find_mounted("celeba")


def test_fetch_prefers_mount_then_local_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(kaggle_data, "_download", lambda *a: pytest.fail("must not download"))
    local = tmp_path / "data" / "celeba-dataset"
    local.mkdir(parents=True)
    (local / "a.jpg").write_bytes(b"x")
    assert fetch(SLUG, data_dir=tmp_path / "data", input_root=tmp_path / "no_input") == local
    mount = tmp_path / "input" / "datasets" / "jessicali9530" / "celeba-dataset"
    mount.mkdir(parents=True)
    (mount / "b.jpg").write_bytes(b"x")
    assert fetch(SLUG, data_dir=tmp_path / "data", input_root=tmp_path / "input") == mount


def test_fetch_extracts_dropped_archive(tmp_path, monkeypatch):
    monkeypatch.setattr(kaggle_data, "_download", lambda *a: pytest.fail("must not download"))
    data = tmp_path / "data"
    data.mkdir()
    with zipfile.ZipFile(data / "bitmojis.zip", "w") as zf:
        zf.writestr("bitmojis/0.png", b"png")
    out = fetch("romaingraux/bitmojis", data_dir=data, input_root=tmp_path / "no_input")
    assert out == data / "bitmojis"
    assert (out / "bitmojis" / "0.png").read_bytes() == b"png"


def test_no_credentials_message(tmp_path, monkeypatch, no_credentials):
    monkeypatch.setattr(kaggle_data, "_download", lambda *a: pytest.fail("must not try to download"))
    assert kaggle_credentials() is None
    with pytest.raises(DataError) as info:
        fetch(SLUG, data_dir=tmp_path / "data", input_root=tmp_path / "no_input")
    text = str(info.value)
    assert "Cannot download jessicali9530/celeba-dataset: no Kaggle API credentials found" in text
    assert "put kaggle.json in ~/.kaggle/ (chmod 600 ~/.kaggle/kaggle.json)" in text
    assert "KAGGLE_USERNAME and KAGGLE_KEY" in text and "kaggle.com > Settings > API" in text
    assert f"kaggle datasets download -d {SLUG} -p {tmp_path / 'data' / 'celeba-dataset'} --unzip" in text
    assert not (tmp_path / "data" / "celeba-dataset").exists()


def test_credentials_lookup(tmp_path, monkeypatch, no_credentials):
    config = no_credentials / "kaggle_config"
    config.mkdir()
    (config / "kaggle.json").write_text('{"username": "u", "key": "k"}')
    assert kaggle_credentials() == str(config / "kaggle.json")
    monkeypatch.setenv("KAGGLE_USERNAME", "u")
    monkeypatch.setenv("KAGGLE_KEY", "k")
    assert kaggle_credentials() == "env KAGGLE_USERNAME/KAGGLE_KEY"
    monkeypatch.setenv("KAGGLE_API_TOKEN", "t")
    assert kaggle_credentials() == "env KAGGLE_API_TOKEN"


def test_access_token_file_counts(no_credentials):
    (no_credentials / ".kaggle").mkdir()
    (no_credentials / ".kaggle" / "access_token").write_text("KGAT_x")
    assert kaggle_credentials() == str(no_credentials / ".kaggle" / "access_token")


def test_no_network_message_with_real_kaggle_api(tmp_path, monkeypatch, no_credentials):
    # Legacy key credentials authenticate offline; the download call is what meets the dead network.
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "0" * 32)
    import requests
    from kaggle.api.kaggle_api_extended import KaggleApi

    calls = []

    def offline(self, dataset, path=None, **kwargs):
        calls.append((dataset, path, kwargs.get("unzip")))
        raise requests.exceptions.ConnectionError("Failed to resolve 'www.kaggle.com'")

    monkeypatch.setattr(KaggleApi, "dataset_download_files", offline)
    with pytest.raises(DataError) as info:
        fetch(SLUG, data_dir=tmp_path / "data", input_root=tmp_path / "no_input")
    text = str(info.value)
    assert calls == [(SLUG, str(tmp_path / "data" / "celeba-dataset"), True)]
    assert text.startswith("Cannot download jessicali9530/celeba-dataset: no network connection to kaggle.com "
                           "(ConnectionError: Failed to resolve 'www.kaggle.com')")
    assert f"run `kaggle datasets download -d {SLUG} -p {tmp_path / 'data' / 'celeba-dataset'} --unzip`" in text
    assert not (tmp_path / "data" / "celeba-dataset").exists()  # no empty folder left to fool the next call


def test_kaggle_exit_on_authenticate_becomes_credentials_error(tmp_path, monkeypatch, no_credentials):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "bad")
    from kaggle.api.kaggle_api_extended import KaggleApi

    def exits(self):
        raise SystemExit(1)

    monkeypatch.setattr(KaggleApi, "authenticate", exits)
    with pytest.raises(DataError, match=r"no Kaggle API credentials found \(kaggle rejected or could not find them\)"):
        fetch(SLUG, data_dir=tmp_path / "data", input_root=tmp_path / "no_input")


def _http_error(status):
    err = OSError(f"{status} Client Error")
    err.response = types.SimpleNamespace(status_code=status)
    return err


def test_forbidden_and_not_found_messages(tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "u")
    monkeypatch.setenv("KAGGLE_KEY", "k")
    for status, expected in [(403, "Kaggle refused the download of jessicali9530/celeba-dataset (HTTP 403)"),
                             (404, "Kaggle has no dataset jessicali9530/celeba-dataset (HTTP 404); check the slug")]:
        def fail(slug, dest, status=status):
            raise _http_error(status)
        monkeypatch.setattr(kaggle_data, "_download", fail)
        with pytest.raises(DataError) as info:
            fetch(SLUG, data_dir=tmp_path / "data", input_root=tmp_path / "no_input")
        assert str(info.value).startswith(expected)


def test_empty_download_and_successful_download(tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "u")
    monkeypatch.setenv("KAGGLE_KEY", "k")
    monkeypatch.setattr(kaggle_data, "_download", lambda slug, dest: None)
    with pytest.raises(DataError, match=r"Downloading jessicali9530/celeba-dataset gave no files in .*celeba-dataset; "
                                        r"the dataset may be private or removed"):
        fetch(SLUG, data_dir=tmp_path / "data", input_root=tmp_path / "no_input")

    def writes(slug, dest):
        (dest / "000001.jpg").write_bytes(b"x")

    monkeypatch.setattr(kaggle_data, "_download", writes)
    assert fetch(SLUG, data_dir=tmp_path / "data", input_root=tmp_path / "no_input") == tmp_path / "data" / "celeba-dataset"


# ---------------------------------------------------------------------------------------------- archives


def _tar_bytes(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for info, payload in members:
            tf.addfile(info, io.BytesIO(payload) if payload is not None else None)
    return buf.getvalue()


def _file_info(name, payload):
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    return info, payload


def test_extract_zip_and_tar_gz(tmp_path):
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as zf:
        zf.writestr("celeba/img/000001.jpg", b"one")
    assert extract_archive(tmp_path / "a.zip", tmp_path / "out_zip") == tmp_path / "out_zip"
    assert (tmp_path / "out_zip" / "celeba" / "img" / "000001.jpg").read_bytes() == b"one"

    (tmp_path / "b.tar.gz").write_bytes(_tar_bytes([_file_info("watches/w1.png", b"two")]))
    extract_archive(tmp_path / "b.tar.gz", tmp_path / "out_tar")
    assert (tmp_path / "out_tar" / "watches" / "w1.png").read_bytes() == b"two"


def test_extract_refuses_escaping_paths(tmp_path):
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as zf:
        zf.writestr("ok.txt", b"fine")
        zf.writestr("../escaped.txt", b"bad")
    with pytest.raises(DataError, match=r"evil.zip has an entry '../escaped.txt' that would be written outside .*out; "
                                        r"refusing to extract"):
        extract_archive(tmp_path / "evil.zip", tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "out" / "ok.txt").exists()

    link = tarfile.TarInfo("data/link")
    link.type, link.linkname = tarfile.SYMTYPE, "../../outside"
    (tmp_path / "evil.tar.gz").write_bytes(_tar_bytes([(link, None)]))
    with pytest.raises(DataError, match=r"has a link 'data/link' -> '../../outside' pointing outside"):
        extract_archive(tmp_path / "evil.tar.gz", tmp_path / "out2")

    (tmp_path / "abs.tar.gz").write_bytes(_tar_bytes([_file_info("/etc/evil", b"x")]))
    with pytest.raises(DataError, match=r"entry '/etc/evil' that would be written outside"):
        extract_archive(tmp_path / "abs.tar.gz", tmp_path / "out3")


def test_extract_errors_for_corrupt_and_unsupported(tmp_path):
    (tmp_path / "cut.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataError, match=r"cut.zip is not a readable archive .*delete it and download it again"):
        extract_archive(tmp_path / "cut.zip", tmp_path / "out")
    (tmp_path / "x.rar").write_bytes(b"Rar!")
    with pytest.raises(DataError, match=r"Cannot extract x.rar: unsupported archive type; use a .zip, .tar, .tar.gz or .tgz"):
        extract_archive(tmp_path / "x.rar", tmp_path / "out")
    with pytest.raises(DataError, match=r"Archive .*missing.zip does not exist"):
        extract_archive(tmp_path / "missing.zip", tmp_path / "out")
