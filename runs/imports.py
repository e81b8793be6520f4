"""Read and check the samples of a run brought by the user: JSON, JSONL or ZIP with a samples.jsonl manifest.

Everything is checked before anything is saved; each problem names the sample's position (1-based) and what is
wrong, so a user can fix their file in one pass. A ZIP is inflated as a stream against a byte budget
(IMPORT_MAX_INFLATED_BYTES, IMPORT_MAX_ZIP_RATIO), so a bomb is refused as soon as it crosses the budget.
"""

from __future__ import annotations

import io
import mimetypes
import os
import posixpath
import re
import uuid
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from typing import IO, Any

from django.conf import settings

from config.api import JSONProblem, UnstorableText, loads_strict
from config.text import shown, unstorable

from .models import Sample
from .specfile import Property, some_values

MAX_REPORTED_PROBLEMS = 20
MANIFEST_NAME = "samples.jsonl"
INFLATE_CHUNK_BYTES = 64 * 1024
RATIO_FREE_BYTES = 1024 * 1024  # a member may unpack this far before its compression ratio is judged
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def unsafe_name(name: str) -> str | None:
    """Why `name` cannot be a file path inside a run (it could escape the folder it is unpacked to), or None."""
    if "\\" in name:
        return "has a backslash"
    if _DRIVE.match(name):
        return "starts with a drive letter"
    if name.startswith("/"):
        return "is an absolute path"
    if ".." in name.split("/"):
        return "has a '..' segment"
    if _CONTROL.search(name):
        return "has a control character"
    return None


class ImportProblems(ValueError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems[:MAX_REPORTED_PROBLEMS]
        more = len(problems) - len(self.problems)
        if more:
            self.problems.append(f"... and {more} more problems")
        super().__init__("; ".join(self.problems))


def read_jsonl(stream: IO[bytes] | Iterable[bytes], name: str = "") -> list[Any]:
    where = f"{name} line" if name else "line"
    rows: list[Any] = []
    for number, raw_line in enumerate(stream, start=1):
        try:
            line = raw_line.decode("utf-8-sig" if number == 1 else "utf-8", errors="strict").strip()
        except UnicodeDecodeError:
            raise ImportProblems([f"{where} {number}: not UTF-8 text"]) from None
        if not line:
            continue
        try:
            rows.append(loads_strict(line))
        except UnstorableText as exc:
            raise ImportProblems([f"{where} {number}: {exc}"]) from None
        except JSONProblem as exc:
            raise ImportProblems([f"{where} {number}: not valid JSON ({exc})"]) from None
        _check_count(len(rows))
    return rows


class ZipBudget:
    """Bytes the whole ZIP may still unpack to."""

    def __init__(self, total: int | None = None) -> None:
        self.total = settings.IMPORT_MAX_INFLATED_BYTES if total is None else total
        self.left = self.total


def inflate_chunks(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: ZipBudget, limit: int, where: str
) -> Iterator[bytes]:
    """The member's bytes as a stream of chunks: refused the moment it passes `limit`, the budget or the ratio.

    Run imports join the chunks (a sample is small); seed datasets write them to storage as they come, so a 50 MB
    file never sits in memory whole.
    """
    size = 0
    ratio_cap = settings.IMPORT_MAX_ZIP_RATIO * max(info.compress_size, 1)
    try:
        with archive.open(info) as member:
            while chunk := member.read(INFLATE_CHUNK_BYTES):
                size += len(chunk)
                budget.left -= len(chunk)
                if size > limit:
                    raise ImportProblems([f"{where}: '{info.filename}' unpacks to more than {limit:,} bytes"])
                if budget.left < 0:
                    raise ImportProblems([f"the ZIP unpacks to more than {budget.total:,} bytes"])
                if size > RATIO_FREE_BYTES and size > ratio_cap:
                    raise ImportProblems(
                        [
                            f"{where}: '{info.filename}' unpacks to more than {settings.IMPORT_MAX_ZIP_RATIO} times "
                            "its packed size (a ZIP bomb?)"
                        ]
                    )
                yield chunk
    except ImportProblems:
        raise  # a ValueError too: it must not be caught as a damaged member below
    except zipfile.BadZipFile as exc:  # "Bad CRC-32", a truncated member, a bad local header
        raise ImportProblems([f"{where}: '{info.filename}' is damaged ({exc})"]) from None
    except NotImplementedError:
        raise ImportProblems([f"{where}: '{info.filename}' uses an unsupported compression method"]) from None
    except RuntimeError:  # zipfile's "File ... is encrypted, password required"
        raise ImportProblems([f"{where}: '{info.filename}' is encrypted"]) from None
    except (zlib.error, EOFError, OSError, ValueError) as exc:
        raise ImportProblems([f"{where}: '{info.filename}' cannot be unpacked ({exc})"]) from None


def _inflate(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: ZipBudget, limit: int, where: str) -> bytes:
    return b"".join(inflate_chunks(archive, info, budget, limit, where))


def read_zip(stream: IO[bytes]) -> list[Any]:
    """A ZIP of sample files plus a samples.jsonl manifest; a manifest row without `content` reads its `path`."""
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError):
        raise ImportProblems(["the upload is not a valid ZIP file"]) from None
    with archive:
        infos = archive.infolist()
        if len(infos) > settings.IMPORT_MAX_ZIP_MEMBERS:
            raise ImportProblems(
                [f"the ZIP has {len(infos):,} members; the limit is {settings.IMPORT_MAX_ZIP_MEMBERS:,}"]
            )
        members = {info.filename: info for info in infos if not info.is_dir()}
        # The declared sizes refuse an honest bomb at once; the streamed budget below catches a lying one.
        if sum(info.file_size for info in members.values()) > settings.IMPORT_MAX_INFLATED_BYTES:
            raise ImportProblems([f"the ZIP unpacks to more than {settings.IMPORT_MAX_INFLATED_BYTES:,} bytes"])
        manifest_name = next((n for n in members if n.rsplit("/", 1)[-1] == MANIFEST_NAME), None)
        if manifest_name is None:
            raise ImportProblems([f"the ZIP has no {MANIFEST_NAME} manifest"])
        prefix = manifest_name[: -len(MANIFEST_NAME)]
        budget = ZipBudget()
        manifest = _inflate(archive, members[manifest_name], budget, settings.IMPORT_MAX_INFLATED_BYTES, MANIFEST_NAME)
        rows = read_jsonl(io.BytesIO(manifest), name=MANIFEST_NAME)
        problems = []
        for position, row in enumerate(rows, start=1):
            if not isinstance(row, dict) or "content" in row:
                continue
            path = row.get("path")
            reason = unsafe_name(path) if isinstance(path, str) else None
            if reason:
                problems.append(f"sample {position}: path '{path}' {reason}")
                continue
            member = members.get(f"{prefix}{path}") if isinstance(path, str) else None
            if member is None:
                problems.append(f"sample {position}: no content and no file '{path}' in the ZIP")
                continue
            data = _inflate(archive, member, budget, settings.IMPORT_MAX_SAMPLE_BYTES, f"sample {position}")
            try:
                row["content"] = data.decode("utf-8")
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


def random_uuids(count: int) -> Iterator[uuid.UUID]:
    """`count` random (version 4) UUIDs from one read of the system's random source. uuid4() reads it once per
    UUID, and each read gives the GIL up: a 20,000-sample import then waited for it back 20,000 times, 12% of its
    time under runserver while other requests ran (issue #22)."""
    randomness = os.urandom(16 * count)
    for start in range(0, 16 * count, 16):
        yield uuid.UUID(bytes=randomness[start : start + 16], version=4)


def build_samples(rows: Any, properties: list[Property]) -> list[Sample]:
    """Check every row against the spec's properties and return unsaved samples, or raise with every problem."""
    if not isinstance(rows, list) or not rows:
        raise ImportProblems(["samples must be a non-empty list"])
    _check_count(len(rows))
    by_name = {p.name: p for p in properties}
    seen: set[str] = set()
    problems: list[str] = []
    samples: list[Sample] = []
    codes = random_uuids(len(rows))
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
        # The identifier names the file when the row has no path, so it obeys the same rules.
        reason = unsafe_name(identifier)
        if reason:
            problems.append(f"{where}: identifier {reason}; it must be usable as a relative file name")
            continue
        if identifier in seen:
            problems.append(f"{where}: duplicate identifier")
        seen.add(identifier)
        content = row.get("content")
        if not isinstance(content, str):
            problems.append(f"{where}: content must be a string")
            continue
        # A ZIP member's text never went through the JSON parser's check.
        reason = unstorable(content)
        if reason:
            problems.append(f"{where}: content {reason}")
            continue
        size = len(content.encode("utf-8"))
        if size > settings.IMPORT_MAX_SAMPLE_BYTES:
            problems.append(f"{where}: content is {size} bytes; the limit is {settings.IMPORT_MAX_SAMPLE_BYTES}")
        path = row.get("path") or default_path(identifier)
        if not isinstance(path, str) or len(path) > 500:
            problems.append(f"{where}: path must be a relative path of at most 500 characters")
            continue
        reason = unsafe_name(path)
        if reason:
            problems.append(f"{where}: path '{path}' {reason}; use a relative path with '/' between folders")
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
            elif not isinstance(assigned[prop.name], str) or assigned[prop.name] not in prop.value_set:
                shown = repr(assigned[prop.name])[:100]
                problems.append(f"{where}: property '{prop.name}' is {shown}, not one of {some_values(prop.values)}")
        samples.append(
            Sample(
                code=next(codes),
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
    # Problems name the file (and the line), as a ZIP's manifest problems name samples.jsonl.
    return read_jsonl(upload, name=f"'{shown(upload.name or 'the upload')}'")
