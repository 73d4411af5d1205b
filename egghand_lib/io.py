"""Atomic file output: a reader never sees a half-written file or a folder that looks complete."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _tmp_sibling(path: Path, suffix: str = "") -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    # mkstemp creates 0600 files; give the final file the permissions a plain open() would have.
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file path next to ``path``; on success it is renamed onto ``path``.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(path, path.suffix)
    try:
        yield tmp
        # Some writers replace the temporary file by their own (safetensors' writes a new 0600 file): give it
        # the permissions a plain open() would have, whatever wrote it.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def read_json(path: str | os.PathLike, missing: str = "file not found") -> Any:
    """The JSON value in ``path``. FileNotFoundError("{path}: {missing}") if it is not a file; ValueError naming
    the file if it is not valid UTF-8 JSON."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {missing}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent) + "\n")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Build a folder at a temporary sibling path, then rename it onto ``path`` in one step.

    An interrupted build leaves only a hidden ``.name.*.partial`` folder, never ``path`` itself.
    With ``overwrite`` an existing ``path`` is replaced; otherwise it is an error.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700 folders
    try:
        yield tmp
        _respect_umask(tmp)
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / "x")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _respect_umask(folder: Path) -> None:
    """Give everything under ``folder`` the permissions plain open() / mkdir() would have: writers such as
    safetensors create their files 0600 whatever the umask."""
    mask = _umask()
    for root, dirs, files in os.walk(folder):  # does not follow symbolic links
        for name, mode in [(d, 0o777) for d in dirs] + [(f, 0o666) for f in files]:
            p = os.path.join(root, name)
            if not os.path.islink(p):
                os.chmod(p, mode & ~mask)


def clean_partials(folder: str | os.PathLike) -> int:
    """Remove leftovers of interrupted atomic writes (``.*.partial`` folders, ``.*.tmp`` files) in ``folder``."""
    n = 0
    for p in Path(folder).glob(".*.partial"):
        shutil.rmtree(p, ignore_errors=True)
        n += 1
    for p in Path(folder).glob(".*.tmp"):
        p.unlink(missing_ok=True)
        n += 1
    return n


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------------------ names that become paths

MAX_NAME_BYTES = 200  # a file name holds the name plus a suffix; file systems allow 255 bytes


def unsafe_name_reason(name: Any) -> str | None:
    """Why ``name`` (an identifier read from an input file: a take uid, a split, an episode key) cannot be one
    component of a path, or None when it can: it must be a non-empty string other than "." and "..", without
    "/", "\\", NUL or control characters, of at most MAX_NAME_BYTES bytes in UTF-8."""
    if not isinstance(name, str):
        return f"not a string ({type(name).__name__})"
    if name in ("", ".", ".."):
        return "empty" if not name else f"{name!r} names a folder, not an entry"
    bad = sorted({c for c in name if c in "/\\" or ord(c) < 32 or ord(c) == 127})
    if bad:
        return f"contains {', '.join(repr(c) for c in bad)}"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"longer than {MAX_NAME_BYTES} bytes"
    return None


def short_repr(value: Any, limit: int = 80) -> str:
    """repr(value), cut to ``limit`` characters (an identifier from a hostile file may be megabytes long)."""
    r = repr(value)
    return r if len(r) <= limit else r[: limit - 3] + "..."


def check_name(name: Any, what: str) -> str:
    """``name`` if it is a safe path component (``unsafe_name_reason``), else a ValueError naming ``what``."""
    reason = unsafe_name_reason(name)
    if reason is not None:
        raise ValueError(f"{what}: {short_repr(name)} cannot be a file or folder name ({reason})")
    return name


def escaping_path_reason(relpath: Any) -> str | None:
    """Why the relative path ``relpath`` (read from an input file) would leave the folder it is relative to, or
    None when it stays inside: absolute paths, ".." climbing out, NUL or non-strings are refused. Checked on
    the text (symbolic links inside the folder are the folder owner's choice and are followed)."""
    if not isinstance(relpath, str):
        return f"not a string ({type(relpath).__name__})"
    if not relpath or "\x00" in relpath:
        return "empty" if not relpath else "contains NUL"
    if os.path.isabs(relpath):
        return "is an absolute path"
    norm = os.path.normpath(relpath)
    if norm == ".." or norm.startswith(".." + os.sep):
        return "climbs out with '..'"
    return None


def inside(root: str | os.PathLike, path: str | os.PathLike) -> bool:
    """True when ``path`` (resolved: symbolic links followed) is ``root`` or lies under it (resolved)."""
    root, path = Path(root).resolve(), Path(path).resolve()
    return path == root or root in path.parents


def check_inside(root: str | os.PathLike, path: str | os.PathLike, what: str = "output") -> Path:
    """``path`` if it resolves inside ``root`` (an output folder), else a ValueError: nothing is written or
    deleted outside the output folder, even through a symbolic link planted in it."""
    if not inside(root, path):
        raise ValueError(f"{path}: {what} would be written outside {root} (resolves to {Path(path).resolve()}); "
                         "refused")
    return Path(path)


# ------------------------------------------------------------------------------ output folders


class OutputFolderError(ValueError):
    """An output folder holds a run made with other settings, or files this toolkit did not write."""


def json_differences(stored: Any, live: Any, fmt: str = "{key}: {old!r} -> {new!r}", prefix: str = "") -> list[str]:
    """Human-readable differences between two JSON values, e.g. ``["size: 224 -> 112"]`` (``fmt`` with
    fields key, old, new; nested keys are joined with dots)."""
    if isinstance(stored, dict) and isinstance(live, dict):
        out = []
        for k in sorted(set(stored) | set(live), key=str):
            out += json_differences(stored.get(k, "<missing>"), live.get(k, "<missing>"), fmt, f"{prefix}{k}.")
        return out
    return [] if stored == live else [fmt.format(key=prefix.rstrip("."), old=stored, new=live)]


def _as_json(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


def claim_output_folder(folder: str | os.PathLike, settings: dict, *, settings_name: str = "settings.json",
                        overwrite: bool = False, what: str = "run", compare: Any = None,
                        allow_other_files: bool = False, mismatch: str = "made with other settings") -> str:
    """Make ``folder`` the output of a ``what`` made with ``settings`` (the JSON of what defines it).

    Returns "new" (absent or empty; nothing is created: the caller does when it writes), "resume"
    (``folder/settings_name`` holds the same settings) or "replaced" (other settings, or other files, and
    ``overwrite``: the folder was emptied). Without
    ``overwrite`` a folder made with other settings raises ``OutputFolderError`` naming the settings
    file and what differs, and so does a non-empty folder without a settings file (files this toolkit did
    not write are never deleted without ``overwrite``), unless ``allow_other_files``. ``compare(stored,
    settings) -> list[str]`` replaces the default JSON comparison (e.g. to ignore bookkeeping fields);
    ``mismatch`` words the error (e.g. "of a different config").
    The settings file itself is written by the caller (``write_settings``), when its run starts.
    """
    folder = Path(folder)
    path = folder / settings_name
    settings = _as_json(settings)
    compare = compare or json_differences
    if path.is_file():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            stored, diffs = None, [f"unreadable ({e})"]
        else:
            diffs = compare(stored, settings)
        if not diffs:
            return "resume"
        if not overwrite:
            shown = "; ".join(diffs[:4]) + (f"; ... ({len(diffs)} differences)" if len(diffs) > 4 else "")
            raise OutputFolderError(f"{folder}: holds a {what} {mismatch} ({path}: {shown}); "
                                    "use another folder or --overwrite")
    elif folder.is_dir() and any(folder.iterdir()):
        if allow_other_files:
            return "new"
        if not overwrite:
            names = sorted(p.name for p in folder.iterdir())
            raise OutputFolderError(f"{folder}: not empty and not a {what} of this toolkit (no {settings_name}; holds "
                                    f"{', '.join(names[:5])}{', ...' if len(names) > 5 else ''}); "
                                    "use an empty or new folder, or --overwrite to replace its contents")
    elif folder.exists() and not folder.is_dir():
        raise OutputFolderError(f"{folder}: exists and is not a folder")
    else:
        return "new"
    for p in folder.iterdir():  # overwrite: empty the folder, never anything outside it
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    return "replaced"


def write_settings(folder: str | os.PathLike, settings: dict, settings_name: str = "settings.json") -> None:
    """Record the settings of the run in ``folder`` (atomically), for ``claim_output_folder`` next time."""
    atomic_write_json(Path(folder) / settings_name, _as_json(settings))


def claim_command_folder(folder: str | os.PathLike, command: str, settings: dict, overwrite: bool = False) -> str:
    """``claim_output_folder`` for the --out of ``egghand COMMAND`` (settings in ``FOLDER/COMMAND_settings.json``),
    then record the settings: a folder of another run of the command, or of anything else, is refused unless
    ``overwrite`` (which empties it). Commands writing files of different names may share a folder: one holding
    another command's settings file is not "anything else". Returns the claim's status."""
    name = f"{command}_settings.json"
    folder = Path(folder)
    shared = folder.is_dir() and any(p.name != name for p in folder.glob("*_settings.json"))
    if folder.is_dir() and [p.name for p in folder.iterdir()] == [name]:
        overwrite = True  # only the settings of a run that failed before writing anything: nothing to protect
    status = claim_output_folder(folder, {"command": command, **settings}, settings_name=name, overwrite=overwrite,
                                 what=f"`egghand {command}` output", mismatch="of other inputs",
                                 allow_other_files=shared)
    Path(folder).mkdir(parents=True, exist_ok=True)
    write_settings(folder, {"command": command, **settings}, name)
    return status
