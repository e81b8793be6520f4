"""Read and check the samples of a run brought by the user: JSON, JSONL or ZIP with a samples.jsonl manifest.

Everything is checked before anything is saved; each problem names the sample's position (1-based) and what is
wrong, so a user can fix their file in one pass.
"""

from __future__ import annotations

import io
import json
import mimetypes
import posixpath
import zipfile
from collections.abc import Iterable
from typing import IO, Any

from django.conf import settings

from .models import Sample
from .specfile import Property

MAX_REPORTED_PROBLEMS = 20
MANIFEST_NAME = "samples.jsonl"


class ImportProblems(ValueError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems[:MAX_REPORTED_PROBLEMS]
        more = len(problems) - len(self.problems)
        if more:
            self.problems.append(f"... and {more} more problems")
        super().__init__("; ".join(self.problems))


def read_jsonl(stream: IO[bytes] | Iterable[bytes]) -> list[Any]:
    rows: list[Any] = []
    for number, raw_line in enumerate(stream, start=1):
        line = raw_line.decode("utf-8-sig" if number == 1 else "utf-8", errors="strict").strip()
        if not line:
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ImportProblems([f"line {number}: not valid JSON ({exc.msg})"]) from None
        _check_count(len(rows))
    return rows


def read_zip(stream: IO[bytes]) -> list[Any]:
    """A ZIP of sample files plus a samples.jsonl manifest; a manifest row without `content` reads its `path`."""
    try:
        archive = zipfile.ZipFile(stream)
    except zipfile.BadZipFile:
        raise ImportProblems(["the upload is not a valid ZIP file"]) from None
    with archive:
        members = {info.filename: info for info in archive.infolist() if not info.is_dir()}
        # Refuse a ZIP bomb before inflating anything.
        if sum(info.file_size for info in members.values()) > settings.IMPORT_MAX_UPLOAD_BYTES:
            raise ImportProblems([f"the ZIP unpacks to more than {settings.IMPORT_MAX_UPLOAD_BYTES} bytes"])
        manifest_name = next((n for n in members if n.rsplit("/", 1)[-1] == MANIFEST_NAME), None)
        if manifest_name is None:
            raise ImportProblems([f"the ZIP has no {MANIFEST_NAME} manifest"])
        prefix = manifest_name[: -len(MANIFEST_NAME)]
        rows = read_jsonl(io.BytesIO(archive.read(manifest_name)))
        problems = []
        for position, row in enumerate(rows, start=1):
            if not isinstance(row, dict) or "content" in row:
                continue
            path = row.get("path")
            member = members.get(f"{prefix}{path}") if isinstance(path, str) else None
            if member is None:
                problems.append(f"sample {position}: no content and no file '{path}' in the ZIP")
                continue
            try:
                row["content"] = archive.read(member).decode("utf-8")
            except UnicodeDecodeError:
                problems.append(f"sample {position}: file '{path}' is not UTF-8 text")
        if problems:
            raise ImportProblems(problems)
        return rows


def default_path(identifier: str) -> str:
    """A sample's file name when the row gives no `path`: the identifier, with `.txt` unless it has an extension."""
    extension = posixpath.splitext(identifier)[1].lower()
    known = extension == ".jsonl" or mimetypes.guess_type(identifier)[0] is not None
    if known and any(c.isalpha() for c in extension):  # "ticket.123" is a number, not a file type
        return identifier  # conv_00.txt stays conv_00.txt, not conv_00.txt.txt
    return f"{identifier}.txt"


def _check_count(count: int) -> None:
    if count > settings.IMPORT_MAX_SAMPLES:
        raise ImportProblems([f"too many samples: the limit is {settings.IMPORT_MAX_SAMPLES}"])


def build_samples(rows: Any, properties: list[Property]) -> list[Sample]:
    """Check every row against the spec's properties and return unsaved samples, or raise with every problem."""
    if not isinstance(rows, list) or not rows:
        raise ImportProblems(["samples must be a non-empty list"])
    _check_count(len(rows))
    by_name = {p.name: p for p in properties}
    seen: set[str] = set()
    problems: list[str] = []
    samples: list[Sample] = []
    for position, row in enumerate(rows, start=1):
        where = f"sample {position}"
        if not isinstance(row, dict):
            problems.append(f"{where}: must be an object with identifier, content and properties")
            continue
        identifier = row.get("identifier")
        if not isinstance(identifier, str) or not identifier.strip() or len(identifier) > 255:
            problems.append(f"{where}: identifier must be a non-empty string of at most 255 characters")
            continue
        where = f"sample {position} ('{identifier}')"
        if identifier in seen:
            problems.append(f"{where}: duplicate identifier")
        seen.add(identifier)
        content = row.get("content")
        if not isinstance(content, str):
            problems.append(f"{where}: content must be a string")
            continue
        size = len(content.encode("utf-8"))
        if size > settings.IMPORT_MAX_SAMPLE_BYTES:
            problems.append(f"{where}: content is {size} bytes; the limit is {settings.IMPORT_MAX_SAMPLE_BYTES}")
        path = row.get("path") or default_path(identifier)
        if not isinstance(path, str) or len(path) > 500 or path.startswith("/") or ".." in path.split("/"):
            problems.append(f"{where}: path must be a relative path of at most 500 characters")
            continue
        assigned = row.get("properties")
        if not isinstance(assigned, dict):
            problems.append(f"{where}: properties must be an object of property name: value")
            continue
        for name in assigned.keys() - by_name.keys():
            problems.append(f"{where}: '{name}' is not a property of the spec (they are {list(by_name)})")
        for prop in properties:
            if prop.name not in assigned:
                problems.append(f"{where}: property '{prop.name}' is not assigned")
            elif assigned[prop.name] not in prop.values:
                problems.append(f"{where}: property '{prop.name}' is {assigned[prop.name]!r}, not one of {prop.values}")
        samples.append(
            Sample(
                position=position,
                identifier=identifier,
                path=path,
                file_type=Sample.guess_file_type(path),
                size_bytes=size,
                content=content,
                properties={p.name: assigned.get(p.name) for p in properties},
            )
        )
    if problems:
        raise ImportProblems(problems)
    return samples


def read_upload(upload: Any) -> list[Any]:
    """Rows from an uploaded JSONL or ZIP file (told apart by the ZIP magic number, not the name)."""
    if upload.size > settings.IMPORT_MAX_UPLOAD_BYTES:
        raise ImportProblems([f"the file is {upload.size} bytes; the limit is {settings.IMPORT_MAX_UPLOAD_BYTES}"])
    head = upload.read(4)
    upload.seek(0)
    if head.startswith(b"PK"):
        return read_zip(upload)
    try:
        return read_jsonl(upload)
    except UnicodeDecodeError:
        raise ImportProblems(["the file is neither a ZIP nor UTF-8 JSONL"]) from None
