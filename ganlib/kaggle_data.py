"""Getting the real datasets: Kaggle mounts, the local data/ folder, the kaggle API, archives.

`fetch(slug)` looks in that order:
1. a Kaggle notebook's input mount (`/kaggle/input/...`, old and new layouts),
2. `data/<name>` when it already holds files (a previous download, or one done by hand),
3. an archive `data/<name>.zip` / `.tar` / `.tar.gz` / `.tgz` dropped there by an offline user,
4. a download with the kaggle package (needs an API token and the network).

Every failure is a DataError that says what is missing and gives the manual command.
The kaggle package is imported only at step 4: importing it runs its own authentication.
"""
from __future__ import annotations

import os
import tarfile
import zipfile
from pathlib import Path

from ganlib.errors import DataError

# The datasets the notebooks use, slug -> what it is. Kept as plain data on purpose.
KAGGLE_DATASETS = {
    "jessicali9530/celeba-dataset": "CelebA: 202,599 aligned celebrity faces, 178x218 JPEG (DCGAN, WGAN-GP)",
    "badasstechie/celebahq-resized-256x256": "CelebA-HQ: 30,000 high-quality faces resized to 256x256",
    "romaingraux/bitmojis": "Bitmoji avatars, RGBA PNG on a transparent background (Domain Transfer Network)",
    "minhquntntht/wrist-watch-128": "wrist-watch product photos at 128x128 (StyleGAN2)",
    "solesensei/solesensei_bdd100k": "BDD100K driving images 1280x720 with time-of-day labels (CycleGAN night->day)",
    "electraawais/cityscape-dataset": "Cityscapes street photos with colour label maps, input/label folders (pix2pix, SPADE)",
    "awsaf49/coco-2017-dataset": "COCO 2017 photos (colorization; about 25 GB off Kaggle, mounted on Kaggle)",
}

ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")


def _split_slug(slug: str) -> tuple[str, str]:
    owner, _, name = slug.partition("/")
    if not owner or not name or "/" in name:
        raise DataError(f"{slug!r} is not a Kaggle dataset slug; write it as 'owner/name', e.g. 'jessicali9530/celeba-dataset'")
    return owner, name


def manual_command(slug: str, data_dir: str | os.PathLike = "data") -> str:
    """The shell command that downloads `slug` by hand into data_dir/<name>."""
    _, name = _split_slug(slug)
    return f"kaggle datasets download -d {slug} -p {Path(data_dir) / name} --unzip"


def fetch_hint(slug: str, data_dir: str | os.PathLike = "data") -> str:
    """One line for error messages: how to get `slug`."""
    return (f"Get it with ganlib.kaggle_data.fetch({slug!r}) (on Kaggle: Add Input > {slug}), "
            f"or by hand: {manual_command(slug, data_dir)}")


def _non_empty_dir(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


def find_mounted(slug: str, input_root: str | os.PathLike = "/kaggle/input") -> Path | None:
    """The folder where a Kaggle notebook mounted dataset `owner/name`, or None when not mounted.

    Kaggle has used three layouts: /kaggle/input/<name> (classic), /kaggle/input/datasets/<owner>/<name>
    (newer) and /kaggle/input/<owner>/<name>. An empty folder does not count as mounted.
    """
    owner, name = _split_slug(slug)
    root = Path(input_root)
    for candidate in (root / name, root / "datasets" / owner / name, root / owner / name):
        if _non_empty_dir(candidate):
            return candidate
    return None


def kaggle_credentials() -> str | None:
    """Where the kaggle package would find credentials, or None when there are none.

    Mirrors kaggle 2.x's lookup without importing it: env KAGGLE_API_TOKEN, env KAGGLE_USERNAME +
    KAGGLE_KEY, kaggle.json in KAGGLE_CONFIG_DIR (else ~/.kaggle, else $XDG_CONFIG_HOME/kaggle),
    ~/.kaggle/access_token(.txt), and OAuth credentials from `kaggle auth login` (~/.kaggle/credentials.json).
    """
    if os.environ.get("KAGGLE_API_TOKEN"):
        return "env KAGGLE_API_TOKEN"
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return "env KAGGLE_USERNAME/KAGGLE_KEY"
    home_kaggle = Path(os.path.expanduser("~")) / ".kaggle"
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or Path(os.path.expanduser("~")) / ".config") / "kaggle"
    config_dirs = [Path(os.environ["KAGGLE_CONFIG_DIR"])] if os.environ.get("KAGGLE_CONFIG_DIR") else [home_kaggle, xdg]
    files = [d / "kaggle.json" for d in config_dirs]
    files += [home_kaggle / "access_token", home_kaggle / "access_token.txt", home_kaggle / "credentials.json"]
    for file in files:
        if file.is_file() and file.stat().st_size > 0:
            return str(file)
    return None


def _no_credentials_error(slug: str, data_dir, detail: str = "") -> DataError:
    return DataError(
        f"Cannot download {slug}: no Kaggle API credentials found{detail}. Either put kaggle.json in ~/.kaggle/ "
        "(chmod 600 ~/.kaggle/kaggle.json) or set KAGGLE_USERNAME and KAGGLE_KEY (or KAGGLE_API_TOKEN), "
        "from kaggle.com > Settings > API > Create New Token; or download it by hand with "
        f"`{manual_command(slug, data_dir)}` and pass dataset=\"folder\", data_dir={str(data_dir)!r}."
    )


def _is_connection_error(err: BaseException) -> bool:
    # requests' ConnectionError/Timeout subclass OSError; urllib3's MaxRetryError etc. may arrive bare.
    names = " ".join(type(e).__name__ for e in (err, err.__cause__, err.__context__) if e is not None)
    return isinstance(err, (ConnectionError, TimeoutError)) or any(
        word in names for word in ("Connection", "Timeout", "MaxRetry", "NameResolution", "ProxyError"))


def _http_status(err: BaseException) -> int | None:
    response = getattr(err, "response", None)
    return getattr(response, "status_code", None)


def _download(slug: str, dest: Path) -> None:
    """Download and unzip `slug` into dest with the kaggle package (a separate function so tests can stub it)."""
    try:
        from kaggle.api.kaggle_api_extended import KaggleApi
    except (Exception, SystemExit) as err:  # importing kaggle authenticates and may call exit(1)
        raise DataError(f"The kaggle package could not be imported ({err!r}); install it with "
                        f"`pip install kaggle`, or download by hand: {manual_command(slug, dest.parent)}") from err
    api = KaggleApi()
    try:
        api.authenticate()
    except SystemExit as err:  # kaggle prints its help and calls exit(1) when it finds no credentials
        raise _no_credentials_error(slug, dest.parent, " (kaggle rejected or could not find them)") from err
    api.dataset_download_files(slug, path=str(dest), unzip=True, quiet=False)


def fetch(slug: str, data_dir: str | os.PathLike = "data", input_root: str | os.PathLike = "/kaggle/input") -> Path:
    """The local folder holding Kaggle dataset `slug` ("owner/name"), downloading it if needed.

    Returns the Kaggle mount when running on Kaggle, else data_dir/<name> when it already has files,
    else extracts data_dir/<name>.zip|.tar|.tar.gz|.tgz if one is there, else downloads with the kaggle API.
    """
    _, name = _split_slug(slug)
    mounted = find_mounted(slug, input_root)
    if mounted is not None:
        return mounted
    dest = Path(data_dir) / name
    if _non_empty_dir(dest):
        return dest
    for suffix in ARCHIVE_SUFFIXES:
        archive = Path(data_dir) / f"{name}{suffix}"
        if archive.is_file():
            return extract_archive(archive, dest)

    if kaggle_credentials() is None and not os.environ.get("KAGGLE_KERNEL_RUN_TYPE"):
        raise _no_credentials_error(slug, data_dir)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        _download(slug, dest)
    except DataError:
        raise
    except Exception as err:
        status = _http_status(err)
        manual = manual_command(slug, data_dir)
        if status in (401, 403):
            raise DataError(f"Kaggle refused the download of {slug} (HTTP {status}): the credentials are wrong or "
                            "you have not accepted the dataset's terms on its Kaggle page. Check ~/.kaggle/kaggle.json "
                            f"or KAGGLE_USERNAME/KAGGLE_KEY, open kaggle.com/datasets/{slug}, then retry; "
                            f"or download by hand: {manual}") from err
        if status == 404:
            raise DataError(f"Kaggle has no dataset {slug} (HTTP 404); check the slug, "
                            f"known ones are: {', '.join(KAGGLE_DATASETS)}") from err
        if _is_connection_error(err):
            raise DataError(f"Cannot download {slug}: no network connection to kaggle.com ({type(err).__name__}: {err}). "
                            f"On a machine with internet run `{manual}`, then copy the folder (or the .zip) to "
                            f"{dest} (or {Path(data_dir) / (name + '.zip')}) here.") from err
        raise DataError(f"Downloading {slug} failed ({type(err).__name__}: {err}); retry, or by hand: {manual}") from err
    finally:
        if dest.is_dir() and not any(dest.iterdir()):
            dest.rmdir()  # never leave an empty folder that a later call would mistake for a download
    if not _non_empty_dir(dest):
        raise DataError(f"Downloading {slug} gave no files in {dest}; the dataset may be private or removed. "
                        f"Check kaggle.com/datasets/{slug}, or download by hand: {manual_command(slug, data_dir)}")
    return dest


def _check_inside(dest: Path, member_name: str, archive: Path) -> None:
    target = (dest / member_name).resolve()
    if os.path.isabs(member_name) or not target.is_relative_to(dest):
        raise DataError(f"{archive.name} has an entry {member_name!r} that would be written outside {dest}; "
                        "refusing to extract. The archive is corrupt or malicious: download it again.")


def extract_archive(path: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Extract a .zip, .tar, .tar.gz or .tgz into dest and return dest.

    Safe: any entry with an absolute path, '..' escaping dest, or a link pointing outside dest
    is refused before anything is written. Tar devices and fifos are refused too.
    """
    archive = Path(path)
    dest_path = Path(dest)
    if not archive.is_file():
        raise DataError(f"Archive {archive} does not exist; check the path (expected a .zip, .tar, .tar.gz or .tgz).")
    dest_path.mkdir(parents=True, exist_ok=True)
    dest_resolved = dest_path.resolve()
    lower = archive.name.lower()
    try:
        if lower.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    _check_inside(dest_resolved, info.filename, archive)
                zf.extractall(dest_resolved)
        elif lower.endswith((".tar", ".tar.gz", ".tgz")):
            with tarfile.open(archive) as tf:
                members = tf.getmembers()
                for member in members:
                    _check_inside(dest_resolved, member.name, archive)
                    if member.issym() or member.islnk():
                        # A symlink's target is relative to its own folder; a hard link's to the archive root.
                        base = (dest_resolved / member.name).parent if member.issym() else dest_resolved
                        link = (base / member.linkname).resolve()
                        if os.path.isabs(member.linkname) or not link.is_relative_to(dest_resolved):
                            raise DataError(f"{archive.name} has a link {member.name!r} -> {member.linkname!r} "
                                            f"pointing outside {dest_path}; refusing to extract. "
                                            "Download the archive again.")
                    elif not (member.isfile() or member.isdir()):
                        raise DataError(f"{archive.name} has a special file {member.name!r} (device or fifo); "
                                        "refusing to extract. Download the archive again.")
                if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: a second, stricter guard
                    tf.extractall(dest_resolved, members=members, filter="data")
                else:
                    tf.extractall(dest_resolved, members=members)
        else:
            raise DataError(f"Cannot extract {archive.name}: unsupported archive type; "
                            f"use a .zip, .tar, .tar.gz or .tgz (or extract it by hand into {dest_path}).")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as err:
        raise DataError(f"{archive} is not a readable archive ({err}); the download was probably cut short: "
                        "delete it and download it again.") from err
    return dest_path


__all__ = ["KAGGLE_DATASETS", "find_mounted", "fetch", "extract_archive", "kaggle_credentials",
           "manual_command", "fetch_hint"]
