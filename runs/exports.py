from __future__ import annotations

import json
import tempfile
import zipfile
from typing import IO

from .extensions import extensions
from .imports import unsafe_name
from .models import Run, Sample

SPOOL_IN_MEMORY_BYTES = 8 * 1024 * 1024  # larger archives go to a temporary file, not RAM


def export_name(sample: Sample) -> str:
    """The sample's path as a ZIP member or download name. Imports refuse unsafe paths, but rows stored before
    that check may hold `..`, backslashes or drive letters: those are written as `samples/<position>.<ext>`."""
    if sample.path and unsafe_name(sample.path) is None:
        return sample.path
    suffix = sample.path.rsplit(".", 1)[-1] if "." in sample.path.rsplit("/", 1)[-1] else "txt"
    suffix = suffix if suffix.isalnum() and len(suffix) <= 10 else "txt"
    return f"samples/{sample.position}.{suffix}"


def build_run_zip(run: Run) -> IO[bytes]:
    """A ZIP of every sample file, a `<path>.metadata` beside each, and `top_level.metadata` for the run."""
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES)  # noqa: SIM115 - caller closes
    evaluation_id, judged = extensions.latest_classifications(run)
    with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        samples = run.samples.order_by("position").only("identifier", "path", "content", "properties", "position")
        for sample in samples.iterator(chunk_size=1000):
            name = export_name(sample)
            archive.writestr(name, sample.content)
            metadata = {
                **sample.metadata(),
                "path": name,
                "classifications": judged.get(sample.identifier),
            }
            archive.writestr(
                f"{name}.metadata",
                json.dumps(metadata, indent=2, ensure_ascii=False),
            )
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
        archive.writestr("top_level.metadata", json.dumps(top, indent=2, ensure_ascii=False))
    spool.seek(0)
    return spool
