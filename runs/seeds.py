"""Seed datasets: the files a user uploads for specs to be generated from (Dataframer's `seed_datasets`).

Every file is streamed into Django's storage in chunks while its SHA-256 and size are taken, so a 50 MB upload
never sits in memory whole: a ZIP's members come out of the run import's budgeted inflation (imports.inflate_chunks:
per-file limit, whole-dataset budget, compression-ratio check), and uploaded files (which Django spools to disk
past FILE_UPLOAD_MAX_MEMORY_SIZE) are read a chunk at a time. The structure is checked from the names and declared
sizes before a byte is inflated; what can only be known from the bytes (a member lying about its size, a
SINGLE_FILE with fewer than two rows) is refused after, and the files stored so far are deleted.

The dataset type is read from the layout, as the vendor documents it:
- SINGLE_FILE: exactly one CSV / JSON / JSONL file holding every sample (at least two rows);
- MULTI_FILE: two or more files at the root, one sample each;
- MULTI_FOLDER: two or more folders of files (no nested folders), one sample per folder.
A ZIP whose every member sits in one top folder (what zipping a folder gives) is read from inside that folder.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import posixpath
import stat
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage

from config.api import JSONProblem, loads_strict

from .imports import ImportProblems, ZipBudget, inflate_chunks, unsafe_name
from .models import SeedDataset, SeedFile

UPLOAD_CHUNK_BYTES = 64 * 1024
SAMPLE_FILE_TYPES = {"csv", "json", "jsonl"}  # what a SINGLE_FILE dataset may be
FILE_TYPES = {"txt", "md", "json", "csv", "jsonl", "pdf"}
JUNK_FOLDERS = {"__MACOSX"}  # what macOS's "Compress" adds beside the real files


class SeedError(ValueError):
    """A dataset that cannot be accepted; the message says which rule or limit it breaks (a 400)."""


@dataclass
class Entry:
    """One file to ingest: its path in the dataset, its declared size, and its bytes as a stream of chunks
    (`chunks(limit)` raises ImportProblems once the file passes `limit`)."""

    path: str
    declared_size: int
    chunks: Callable[[int], Iterator[bytes]]

    @property
    def folder(self) -> str:
        return self.path.rsplit("/", 1)[0] if "/" in self.path else ""

    @property
    def file_type(self) -> str:
        return posixpath.splitext(self.path)[1].lower().lstrip(".")


# --- Reading what was uploaded ---


def _is_junk(name: str) -> bool:
    parts = name.split("/")
    return parts[0] in JUNK_FOLDERS or parts[-1].startswith(".")


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def zip_entries(archive: zipfile.ZipFile) -> list[Entry]:
    """The ZIP's files as entries, in archive order (the order of a MULTI_FOLDER folder's files)."""
    infos = archive.infolist()
    if len(infos) > settings.IMPORT_MAX_ZIP_MEMBERS:
        raise SeedError(f"the ZIP has {len(infos):,} members; the limit is {settings.IMPORT_MAX_ZIP_MEMBERS:,}")
    members: list[zipfile.ZipInfo] = []
    for info in infos:
        name = info.filename
        reason = unsafe_name(name) or ("is a symbolic link" if _is_symlink(info) else None)
        if reason:  # checked on every member, junk too: nothing that could escape is ever written
            raise SeedError(
                f"the ZIP member '{name[:200]}' {reason}; only plain files with relative paths are accepted"
            )
        if not info.is_dir() and not _is_junk(name):
            members.append(info)
    if not members:
        raise SeedError("the ZIP holds no files")
    if len(members) > settings.SEED_MAX_FILES:
        raise SeedError(f"the ZIP holds {len(members):,} files; the limit is {settings.SEED_MAX_FILES:,}")
    declared = sum(info.file_size for info in members)
    if declared > settings.SEED_MAX_TOTAL_BYTES:
        raise SeedError(f"the files unpack to {declared:,} bytes; the limit is {settings.SEED_MAX_TOTAL_BYTES:,}")
    # One folder holding everything is a wrapper (zipping a folder makes one): read from inside it.
    tops = {info.filename.split("/", 1)[0] for info in members}
    strip = len(tops) == 1 and all("/" in info.filename for info in members)
    budget = ZipBudget(total=settings.SEED_MAX_TOTAL_BYTES)

    def entry(info: zipfile.ZipInfo) -> Entry:
        path = info.filename.split("/", 1)[1] if strip else info.filename
        return Entry(path, info.file_size, lambda limit: inflate_chunks(archive, info, budget, limit, "the ZIP"))

    return [entry(info) for info in members]


def upload_entries(uploads: list[Any], folder_names: list[str] | None) -> list[Entry]:
    """Uploaded files as entries; `folder_names[i]` is the folder of `uploads[i]` (MULTI_FOLDER)."""
    if not uploads:
        raise SeedError("no files were uploaded")
    if len(uploads) > settings.SEED_MAX_FILES:
        raise SeedError(f"{len(uploads):,} files were uploaded; the limit is {settings.SEED_MAX_FILES:,}")
    if folder_names is not None and len(folder_names) != len(uploads):
        raise SeedError(
            f"folder_names has {len(folder_names)} names for {len(uploads)} files: give one folder name per file"
        )
    declared = sum(upload.size for upload in uploads)
    if declared > settings.SEED_MAX_TOTAL_BYTES:
        raise SeedError(f"the files total {declared:,} bytes; the limit is {settings.SEED_MAX_TOTAL_BYTES:,}")
    entries = []
    for index, upload in enumerate(uploads):
        name = posixpath.basename((upload.name or "").replace("\\", "/"))
        folder = folder_names[index].strip() if folder_names is not None else ""
        if folder_names is not None and (not folder or "/" in folder or unsafe_name(folder)):
            raise SeedError(f"folder_names[{index}] '{folder[:100]}' must be a plain folder name (no '/', not empty)")
        path = f"{folder}/{name}" if folder else name
        entries.append(Entry(path, upload.size, functools.partial(_upload_chunks, upload)))
    return entries


def _upload_chunks(upload: Any, limit: int) -> Iterator[bytes]:
    size = 0
    for chunk in upload.chunks(UPLOAD_CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            raise ImportProblems([f"'{upload.name}' is more than {limit:,} bytes"])
        yield chunk


# --- The layout: type detection and the vendor's limits ---


def detect_type(entries: list[Entry]) -> str:
    """SINGLE_FILE, MULTI_FILE or MULTI_FOLDER, from the paths alone; a layout that is none of them is refused."""
    nested = next((e.path for e in entries if e.path.count("/") > 1), None)
    if nested:
        raise SeedError(
            f"'{nested[:200]}' is in a folder inside a folder: a dataset is files at the root (one sample each) or "
            "folders of files (one sample per folder), without nested folders"
        )
    in_folders = sum(1 for e in entries if e.folder)
    if in_folders and in_folders < len(entries):
        raise SeedError(
            "the upload mixes files at the root with folders: put every file at the root (MULTI_FILE) or every "
            "file in a folder (MULTI_FOLDER)"
        )
    if in_folders:
        return SeedDataset.Type.MULTI_FOLDER
    return SeedDataset.Type.SINGLE_FILE if len(entries) == 1 else SeedDataset.Type.MULTI_FILE


def check_layout(dataset_type: str, entries: list[Entry]) -> None:
    """The vendor's rules for each type (counts, file types, declared sizes), before anything is stored."""
    duplicates = sorted(path for path, n in Counter(e.path for e in entries).items() if n > 1)
    if duplicates:
        raise SeedError(f"two files have the same path '{duplicates[0][:200]}'")
    for entry in entries:
        if not entry.path or len(entry.path) > 500:
            raise SeedError("every file needs a name of at most 500 characters")
        reason = unsafe_name(entry.path)
        if reason:
            raise SeedError(f"the file name '{entry.path[:200]}' {reason}")
    if dataset_type == SeedDataset.Type.SINGLE_FILE:
        if len(entries) != 1:
            raise SeedError(f"a SINGLE_FILE dataset has exactly one file, not {len(entries)}")
        allowed, limit = SAMPLE_FILE_TYPES, settings.SEED_MAX_SINGLE_FILE_BYTES
    else:
        if len(entries) < 2:
            raise SeedError(f"a {dataset_type} dataset needs at least 2 files")
        allowed, limit = FILE_TYPES, settings.SEED_MAX_FILE_BYTES
    for entry in entries:
        if entry.file_type not in allowed:
            raise SeedError(
                f"'{entry.path[:200]}' is not one of the file types a {dataset_type} dataset accepts "
                f"({', '.join(sorted(allowed))})"
            )
        if entry.declared_size > limit:
            raise SeedError(f"'{entry.path[:200]}' is {entry.declared_size:,} bytes; the limit per file is {limit:,}")
    folders = Counter(e.folder for e in entries)
    if dataset_type == SeedDataset.Type.MULTI_FOLDER:
        if "" in folders:
            raise SeedError("every file of a MULTI_FOLDER dataset needs a folder (folder_names)")
        if len(folders) < 2:
            raise SeedError(f"a MULTI_FOLDER dataset needs at least 2 folders, not {len(folders)}")
        folder, count = folders.most_common(1)[0]
        if count > settings.SEED_MAX_FILES_PER_FOLDER:
            raise SeedError(
                f"folder '{folder[:200]}' holds {count} files; the limit is {settings.SEED_MAX_FILES_PER_FOLDER}"
            )
    elif set(folders) != {""}:
        raise SeedError(f"a {dataset_type} dataset has its files at the root, without folders")


# --- Storing ---


class _Metered:
    """A read()-able view of a chunk stream that hashes and counts what passes through, for Storage.save."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self.sha256.update(chunk)
            self.size += len(chunk)
            self._buffer += chunk
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


def storage_prefix(dataset: SeedDataset) -> str:
    return f"seed-datasets/{dataset.company.code}/{dataset.code}"


def store_files(dataset: SeedDataset, entries: list[Entry]) -> list[SeedFile]:
    """Stream every entry into storage; return the (unsaved) file rows. On any error, whatever was stored is
    deleted and SeedError says why."""
    limit = (
        settings.SEED_MAX_SINGLE_FILE_BYTES
        if dataset.dataset_type == SeedDataset.Type.SINGLE_FILE
        else settings.SEED_MAX_FILE_BYTES
    )
    files: list[SeedFile] = []
    stored: list[str] = []
    try:
        for position, entry in enumerate(entries, start=1):
            code = uuid.uuid4()
            name = f"{storage_prefix(dataset)}/{code}"
            stored.append(name)  # before saving: a save that fails half-way leaves a partial file to delete
            stream = _Metered(entry.chunks(limit))
            saved = default_storage.save(name, File(stream, name=str(code)))  # type: ignore[arg-type]
            stored[-1] = saved
            files.append(
                SeedFile(
                    code=code,
                    position=position,
                    path=entry.path,
                    file_type=entry.file_type,
                    size_bytes=stream.size,
                    sha256=stream.sha256.hexdigest(),
                    storage_name=saved,
                )
            )
        if dataset.dataset_type == SeedDataset.Type.SINGLE_FILE:
            dataset.sample_count = count_samples(files[0])
    except ImportProblems as exc:
        delete_stored(stored)
        raise SeedError("; ".join(exc.problems)) from None
    except BaseException:
        delete_stored(stored)
        raise
    return files


def delete_stored(names: list[str]) -> None:
    for name in names:
        if default_storage.exists(name):
            default_storage.delete(name)


def count_samples(seed_file: SeedFile) -> int | None:
    """The rows of a SINGLE_FILE dataset, read back from storage as a stream; fewer than two are refused."""
    with open_stored(seed_file) as raw:
        count = _count_rows(seed_file, raw)
    if count is not None and count < 2:
        raise SeedError(f"'{seed_file.path}' holds {count} sample(s); a SINGLE_FILE dataset needs at least 2 rows")
    return count


def _count_rows(seed_file: SeedFile, raw: IO[bytes]) -> int | None:
    """Rows of a CSV, JSONL or JSON file; JSON is parsed by the API's bounded parser (depth API_JSON_MAX_DEPTH:
    3,000 nested arrays once raised RecursionError), a JSONL file one line at a time."""
    text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
    if seed_file.file_type == SeedFile.FileType.CSV:
        try:
            rows = sum(1 for row in csv.reader(text) if row)
        except csv.Error as exc:
            raise SeedError(f"'{seed_file.path}' is not readable CSV ({exc})") from None
        return max(rows - 1, 0)  # the first row names the columns
    if seed_file.file_type == SeedFile.FileType.JSONL:
        count = 0
        for number, line in enumerate(text, start=1):
            if line.strip():
                _parse_json(seed_file, line, f" line {number}")
                count += 1
        return count
    if seed_file.size_bytes > settings.SEED_JSON_COUNT_MAX_BYTES:
        return None  # parsing holds the whole document in memory: not counted past the setting
    document = _parse_json(seed_file, text.read(), "")
    if not isinstance(document, list):
        raise SeedError(f"'{seed_file.path}' must be a JSON array of samples (one per item)")
    return len(document)


def _parse_json(seed_file: SeedFile, text: str, where: str) -> Any:
    try:
        return loads_strict(text)
    except JSONProblem as exc:
        raise SeedError(f"'{seed_file.path}'{where} is not valid JSON ({exc})") from None


def open_stored(seed_file: SeedFile) -> IO[bytes]:
    """The stored copy of a file; a SeedError that says what to do if it has gone (storage wiped or moved)."""
    try:
        return default_storage.open(seed_file.storage_name, "rb")
    except FileNotFoundError:
        raise SeedError(
            f"the stored copy of '{seed_file.path}' is missing; delete the seed dataset and upload it again"
        ) from None


def read_text(seed_file: SeedFile, limit: int) -> str:
    """At most `limit` bytes of a file's text (for prompts): a PDF is named, not quoted."""
    if seed_file.file_type == SeedFile.FileType.PDF:
        return f"[a PDF document of {seed_file.size_bytes:,} bytes; its text is not quoted]"
    with open_stored(seed_file) as raw:
        data: bytes = raw.read(limit + 1)
    text = data[:limit].decode("utf-8", errors="replace")
    if len(data) > limit:
        text = text.rsplit("\n", 1)[0] if "\n" in text else text
        text += "\n[... cut: the file goes on]"
    return text
