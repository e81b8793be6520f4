"""The run ZIP: every sample file, a `<name>.metadata` beside each, and `top_level.metadata` for the run.

"Download all" builds the archive once, when the signed link is made (its size is part of that answer), and keeps it
in DOWNLOAD_ARCHIVE_DIR until the link expires; the link serves that file. A link whose file is gone (another
machine, a cleaned temporary directory) builds the archive again rather than failing.
"""

from __future__ import annotations

import json
import os
import posixpath
import tempfile
import time
import uuid
import zipfile
from pathlib import Path
from typing import IO

from django.conf import settings

from .extensions import extensions
from .imports import unsafe_name
from .models import Run, Sample

SPOOL_IN_MEMORY_BYTES = 8 * 1024 * 1024  # larger archives go to a temporary file, not RAM
TOP_LEVEL_NAME = "top_level.metadata"


def export_name(sample: Sample) -> str:
    """The sample's path as a ZIP member or download name. Imports refuse unsafe paths, but rows stored before
    that check may hold `..`, backslashes or drive letters: those are written as `samples/<position>.<ext>`."""
    if sample.path and unsafe_name(sample.path) is None:
        return sample.path
    suffix = sample.path.rsplit(".", 1)[-1] if "." in sample.path.rsplit("/", 1)[-1] else "txt"
    suffix = suffix if suffix.isalnum() and len(suffix) <= 10 else "txt"
    return f"samples/{sample.position}.{suffix}"


class MemberNames:
    """Unique, deterministic ZIP member names: a repeated path gets `-2`, `-3`… before its extension.

    Names are compared case-folded, since archives are often unpacked on case-insensitive file systems, and a
    sample's name also reserves its `.metadata` companion.
    """

    def __init__(self) -> None:
        self._used = {TOP_LEVEL_NAME.casefold()}

    def _free(self, name: str) -> bool:
        return name.casefold() not in self._used and f"{name}.metadata".casefold() not in self._used

    def claim(self, path: str) -> str:
        name = path
        if not self._free(name):
            directory, base = posixpath.split(path)
            stem, ext = posixpath.splitext(base)
            number = 2
            while not self._free(name := posixpath.join(directory, f"{stem}-{number}{ext}")):
                number += 1
        self._used |= {name.casefold(), f"{name}.metadata".casefold()}
        return name


def _write_run_zip(run: Run, target: IO[bytes]) -> None:
    evaluation_id, judged = extensions.latest_classifications(run)
    names = MemberNames()
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        samples = run.samples.order_by("position").only("identifier", "path", "content", "properties", "position")
        for sample in samples.iterator(chunk_size=1000):
            name = names.claim(export_name(sample))
            archive.writestr(name, sample.content)
            metadata = {
                **sample.metadata(),
                "path": name,
                "classifications": judged.get(sample.identifier),
            }
            archive.writestr(f"{name}.metadata", json.dumps(metadata, indent=2, ensure_ascii=False))
        top = {
            "run_id": str(run.code),
            "classifications_from_evaluation": evaluation_id,
            "spec_id": str(run.spec.code),
            "spec_name": run.spec.name,
            "spec_version": run.spec_version.number,
            "status": run.status,
            "samples": run.samples_completed,
            "created_at": run.created_at.isoformat(),
            "spec_yaml": run.spec_version.content_yaml,
        }
        archive.writestr(TOP_LEVEL_NAME, json.dumps(top, indent=2, ensure_ascii=False))


def build_run_zip(run: Run) -> IO[bytes]:
    """The run's ZIP in a spooled temporary file, rewound; the caller closes it."""
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES)  # noqa: SIM115 - caller closes
    _write_run_zip(run, spool)
    spool.seek(0)
    return spool


def _archive_dir() -> Path:
    directory = Path(settings.DOWNLOAD_ARCHIVE_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _prune(directory: Path) -> None:
    """Drop archives whose links have expired; a file another process is serving stays readable until closed."""
    cutoff = time.time() - settings.DOWNLOAD_URL_MAX_AGE
    for old in [*directory.glob("*.zip"), *directory.glob("*.part")]:
        try:
            if old.stat().st_mtime < cutoff:
                old.unlink()
        except FileNotFoundError:
            pass  # another process pruned it first


def run_zip_store(run: Run) -> tuple[str, int]:
    """Build the run's ZIP once and keep it for its download link: returns (archive id, size in bytes)."""
    directory = _archive_dir()
    _prune(directory)
    archive_id = uuid.uuid4().hex
    partial = directory / f"{archive_id}.part"
    try:
        with partial.open("wb") as target:
            _write_run_zip(run, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    final = directory / f"{archive_id}.zip"
    os.replace(partial, final)  # readers never see a half-written archive
    return archive_id, final.stat().st_size


def run_zip_open(archive_id: str) -> IO[bytes] | None:
    """The stored archive, open for reading, or None when it is not (or no longer) on this machine."""
    try:
        name = uuid.UUID(hex=archive_id).hex  # only our own names: never a path from outside the directory
    except ValueError:
        return None
    try:
        return (Path(settings.DOWNLOAD_ARCHIVE_DIR) / f"{name}.zip").open("rb")
    except FileNotFoundError:
        return None
