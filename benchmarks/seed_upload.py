"""Upload a 50 MB seed dataset ZIP through POST /api/dataframer/seed-datasets/create-from-zip/ to a real server
process and report the time and the server's peak memory growth (issue #15: under 10 s, memory bounded).

The server is `manage.py runserver` in its own process, so its memory is its own: the client streams the ZIP from
disk (httpx), the server spools the upload to a temporary file (Django does past FILE_UPLOAD_MAX_MEMORY_SIZE) and
streams each member into storage. Peak RSS is the kernel's high-water mark (VmHWM) of the server process.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import httpx
from common import setup_django, web_server


def _status(pid: int, field: str) -> int:
    """A /proc/<pid>/status figure in bytes (VmRSS: now; VmHWM: the peak so far)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def build_zip(path: Path, files: int, file_bytes: int) -> None:
    """`files` text files of `file_bytes` each (one file: a CSV, a SINGLE_FILE dataset whose rows are counted),
    stored, not compressed: the ZIP is as big as its contents."""
    line = b"A support ticket: my order arrived late and the box was damaged; please send a replacement.\n"
    body = (line * (file_bytes // len(line) + 1))[:file_bytes]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        if files == 1:
            archive.writestr("tickets.csv", b"text\n" + body[: body.rindex(b"\n") + 1])
        for i in range(files if files > 1 else 0):
            archive.writestr(f"ticket_{i:04d}.txt", body)


def main(files: int = 50, file_bytes: int = 1_000_000) -> dict[str, float]:
    media = tempfile.mkdtemp(prefix="bench-media-")
    os.environ["MEDIA_ROOT"] = media
    setup_django()
    from companies.models import ApiKey
    from companies.services import member_ensure
    from runs.models import SeedDataset

    membership = member_ensure(company_name=f"Bench {time.time()}", email="bench@example.test")
    _key, secret = ApiKey.issue(company=membership.company, user=membership.user)
    zip_path = Path(media) / "upload.zip"
    build_zip(zip_path, files, file_bytes)
    size = zip_path.stat().st_size

    server_command = [sys.executable, "manage.py", "runserver", "127.0.0.1:{port}", "--noreload", "--nothreading"]
    with web_server(server_command, {"API_REQUESTS_PER_MINUTE": "0"}) as (url, server):
        before = _status(server.pid, "VmRSS")
        started = time.perf_counter()
        with zip_path.open("rb") as stream:
            response = httpx.post(
                f"{url}/api/dataframer/seed-datasets/create-from-zip/",
                headers={"Authorization": f"Bearer {secret}"},
                data={"name": f"bench {time.time()}"},
                files={"zip_file": ("upload.zip", stream, "application/zip")},
                timeout=120,
            )
        elapsed = time.perf_counter() - started
        peak = _status(server.pid, "VmHWM")
    assert response.status_code == 201, response.text[:500]
    dataset = SeedDataset.objects.get(code=response.json()["id"])
    assert dataset.file_count == files
    figures = {"files": files, "zip_mb": size / 1e6, "seconds": elapsed, "peak_rss_delta_mb": (peak - before) / 1e6}
    print(
        f"seed_upload: {figures['zip_mb']:.1f} MB ZIP ({files} files) ingested in {elapsed:.2f} s; server peak RSS "
        f"grew {figures['peak_rss_delta_mb']:.1f} MB (from {before / 1e6:.0f} MB)"
    )
    return figures


if __name__ == "__main__":
    # Default: 50 files of 1 MB (MULTI_FILE), then one 50 MB CSV (SINGLE_FILE, its rows counted).
    if sys.argv[1:]:
        main(*(int(a) for a in sys.argv[1:]))
    else:
        main(50, 1_000_000)
        main(1, 50_000_000)
