"""Import 20,000 samples through POST /api/dataframer/runs/import/ and report the time and rate."""

from __future__ import annotations

import json
import time

from common import setup_django


def main(samples: int = 20_000) -> dict[str, float]:
    setup_django()
    from django.test import Client

    from companies.models import ApiKey
    from companies.services import member_ensure
    from runs.models import Sample
    from runs.services import spec_create
    from tests.conftest import SPEC_YAML, make_rows

    membership = member_ensure(company_name=f"Bench {time.time()}", email="bench@example.test")
    spec = spec_create(
        company=membership.company,
        created_by=None,
        name="bench",
        content_yaml=SPEC_YAML,
    )
    _key, secret = ApiKey.issue(company=membership.company, user=membership.user)
    body = json.dumps({"spec_id": str(spec.code), "samples": make_rows(samples)})
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")

    started = time.perf_counter()
    response = client.post("/api/dataframer/runs/import/", body, content_type="application/json")
    elapsed = time.perf_counter() - started
    assert response.status_code == 201, response.content[:500]
    run_id = response.json()["id"]
    assert Sample.objects.filter(run__code=run_id).count() == samples
    figures = {
        "samples": samples,
        "body_mb": len(body) / 1e6,
        "seconds": elapsed,
        "samples_per_second": samples / elapsed,
    }
    print(
        f"import_run: {samples} samples ({figures['body_mb']:.1f} MB JSON) in {elapsed:.2f} s "
        f"= {figures['samples_per_second']:,.0f} samples/s"
    )
    return figures


if __name__ == "__main__":
    main()
