"""Hostile input, as an attacker with a valid key would send it: every case a JSON 4xx within seconds, nothing stored.

Each request goes through the test client and `refused()`, which times it (a generous bound: the point is
"seconds, not minutes") and compares the row count of every table of ours before and after.
"""

from __future__ import annotations

import io
import json
import logging
import time
import zipfile
from http import HTTPStatus
from typing import Any

import pytest
from django.apps import apps
from django.test import Client, override_settings
from rest_framework.test import APIClient

from redteam.models import RedTeamRun, RedTeamSpec
from runs.models import Run, Spec
from tests.conftest import SPEC_YAML, make_rows

SPECS = "/api/dataframer/specs/"
IMPORT = "/api/dataframer/runs/import/"
# Tells a refusal from a parse that runs away (the inputs here would take minutes to hours: nested aliases, quadratic
# patterns, a ZIP bomb), not a speed figure: an ordinary refusal took 2.96 s on a loaded 2-core machine.
SECONDS = 10.0
FRAMEWORK_APPS = {"admin", "auth", "contenttypes", "sessions", "django_q"}


def rows() -> dict[str, int]:
    """Rows per model of our own apps (whatever they are called after a refactor)."""
    return {
        model._meta.label: model._default_manager.count()
        for model in apps.get_models()
        if model._meta.app_label not in FRAMEWORK_APPS
    }


def refused(client: Client, method: str, path: str, status: int | None = None, **kwargs: Any) -> dict[str, Any]:
    """Send the request; check it is answered by a JSON 4xx in under SECONDS and stores nothing; return the body."""
    before = rows()
    started = time.perf_counter()
    response = getattr(client, method)(path, **kwargs)
    elapsed = time.perf_counter() - started
    assert elapsed < SECONDS, f"{method.upper()} {path} took {elapsed:.2f} s"
    assert HTTPStatus.BAD_REQUEST <= response.status_code < HTTPStatus.INTERNAL_SERVER_ERROR, response.content[:300]
    if status is not None:
        assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    assert rows() == before
    body: dict[str, Any] = response.json()
    return body


def spec_body(content_yaml: str, name: str = "Hostile") -> dict[str, str]:
    return {"name": name, "content_yaml": content_yaml}


def one_property(values: str, extra: str = "") -> str:
    return f"spec:\n  data_property_variations:\n    - property_name: p\n      property_values: {values}\n{extra}"


# --- Specs ---


def test_it_refuses_a_40000_value_property_at_once(alice_api: APIClient, company_a: Any) -> None:
    values = "\n" + "".join(f"        - value_{i}\n" for i in range(40_000))
    body = refused(
        alice_api, "post", SPECS, HTTPStatus.BAD_REQUEST, data=spec_body(one_property(values)), format="json"
    )
    assert "1,000" in body["content_yaml"][0]
    assert body["content_yaml"][0].startswith("line ")


def test_it_refuses_a_1001_value_flow_list_naming_the_limit(alice_api: APIClient, company_a: Any) -> None:
    values = "[" + ", ".join(f"v{i}" for i in range(1001)) + "]"
    body = refused(
        alice_api, "post", SPECS, HTTPStatus.BAD_REQUEST, data=spec_body(one_property(values)), format="json"
    )
    assert body["content_yaml"][0].startswith("line 4:")


def test_it_refuses_yaml_aliases(alice_api: APIClient, company_a: Any) -> None:
    bomb = (
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
        "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
        "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
        "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
        "spec:\n  description: *d\n  data_property_variations:\n"
        "    - {property_name: p, property_values: [x, y]}\n"
    )
    body = refused(alice_api, "post", SPECS, HTTPStatus.BAD_REQUEST, data=spec_body(bomb), format="json")
    assert "aliases" in body["content_yaml"][0]


@pytest.mark.parametrize("percent", [".nan", ".NaN", ".inf", "-.inf", "lots", "1e999", "1" + "0" * 400, "true"])
def test_it_refuses_non_finite_or_non_numeric_percentages(alice_api: APIClient, company_a: Any, percent: str) -> None:
    text = one_property("[x, y]", f"      base_distributions: {{x: {percent}, y: 50}}\n")
    body = refused(alice_api, "post", SPECS, HTTPStatus.BAD_REQUEST, data=spec_body(text), format="json")
    assert body["content_yaml"][0].startswith("line 5: base_distributions of 'p'['x'] must be a number")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("spec: " + "[" * 5_000 + "]" * 5_000, "nested more than"),
        (
            "spec:\n  data_property_variations:\n"
            + "".join(f"    - {{property_name: p{i}, property_values: [x]}}\n" for i in range(101)),
            "101 properties; the limit is 100",
        ),
        (one_property("[x, y]").replace("property_name: p", "property_name: " + "n" * 501), "longer than 500"),
        (one_property("[x, " + "y" * 501 + "]"), "longer than 500"),
        (one_property("[x, y]") + "  description: [a, b]\n", "description must be text"),
        (one_property("[x, y]") + "  requirements: " + "r" * 20_001 + "\n", "longer than 20,000"),
        (one_property("[x, y]", "      base_distributions: !!timestamp 0000-01-01\n"), "invalid YAML"),
    ],
)
def test_it_refuses_specs_past_a_limit(alice_api: APIClient, company_a: Any, text: str, message: str) -> None:
    body = refused(alice_api, "post", SPECS, HTTPStatus.BAD_REQUEST, data=spec_body(text), format="json")
    assert message in body["content_yaml"][0]


@override_settings(SPEC_MAX_BYTES=1000)
def test_it_refuses_a_spec_over_its_byte_limit(alice_api: APIClient, company_a: Any) -> None:
    text = one_property("[x, y]") + "  description: " + "d" * 1000 + "\n"
    body = refused(alice_api, "post", SPECS, HTTPStatus.BAD_REQUEST, data=spec_body(text), format="json")
    assert "the limit is 1,000" in body["content_yaml"][0]


def test_it_refuses_a_hostile_new_version(alice_api: APIClient, spec_a: Spec) -> None:
    values = "[" + ", ".join(f"v{i % 2}" for i in range(1000)) + "]"
    body = refused(
        alice_api, "put", f"{SPECS}{spec_a.code}/", HTTPStatus.BAD_REQUEST,
        data={"content_yaml": one_property(values)}, format="json",
    )  # fmt: skip
    assert "repeats ['v0', 'v1']" in body["content_yaml"][0]
    assert spec_a.versions.count() == 1


# --- Run imports ---


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("../outside.txt", "has a '..' segment"),
        ("a/../../outside.txt", "has a '..' segment"),
        ("/etc/passwd", "is an absolute path"),
        ("..\\..\\windows\\win.ini", "has a backslash"),
        ("dir\\file.txt", "has a backslash"),
        ("C:/Windows/win.ini", "starts with a drive letter"),
        ("c:file.txt", "starts with a drive letter"),
    ],
)
def test_it_refuses_unsafe_paths_naming_the_row(alice_api: APIClient, spec_a: Spec, path: str, reason: str) -> None:
    samples = make_rows(3)
    samples[1]["path"] = path
    body = refused(
        alice_api, "post", IMPORT, HTTPStatus.BAD_REQUEST,
        data={"spec_id": str(spec_a.code), "samples": samples}, format="json",
    )  # fmt: skip
    assert body["samples"][0].startswith(f"sample 2 ('sample_2'): path '{path}' {reason}")


@pytest.mark.parametrize("identifier", ["..", "../x", "a\\b", "D:evil"])
def test_it_refuses_unsafe_identifiers(alice_api: APIClient, spec_a: Spec, identifier: str) -> None:
    samples = make_rows(2)
    samples[0]["identifier"] = identifier
    body = refused(
        alice_api, "post", IMPORT, HTTPStatus.BAD_REQUEST,
        data={"spec_id": str(spec_a.code), "samples": samples}, format="json",
    )  # fmt: skip
    assert body["samples"][0].startswith(f"sample 1 ('{identifier}'): identifier ")


def zip_upload(members: dict[str, bytes], name: str = "run.zip") -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    buffer.seek(0)
    buffer.name = name
    return buffer


def manifest(rows: list[dict[str, Any]]) -> bytes:
    return "\n".join(json.dumps(row) for row in rows).encode()


def import_zip(client: APIClient, spec: Spec, upload: io.BytesIO, status: int = HTTPStatus.BAD_REQUEST) -> list[str]:
    body = refused(client, "post", IMPORT, status, data={"spec_id": str(spec.code), "file": upload}, format="multipart")
    problems: list[str] = body["samples"]
    return problems


def test_it_refuses_a_zip_path_outside_the_archive(alice_api: APIClient, spec_a: Spec) -> None:
    row = {**make_rows(1)[0], "path": "..\\secret.txt"}
    del row["content"]
    problems = import_zip(alice_api, spec_a, zip_upload({"samples.jsonl": manifest([row])}))
    assert problems == ["sample 1: path '..\\secret.txt' has a backslash"]


def test_it_refuses_a_zip_member_with_a_bad_crc(alice_api: APIClient, spec_a: Spec) -> None:
    row = {**make_rows(1)[0], "path": "a.txt"}
    del row["content"]
    upload = zip_upload({"samples.jsonl": manifest([row]), "a.txt": b"hello, world " * 50})
    data = bytearray(upload.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo("a.txt")
    # Flip the stored CRC in the member's local header (offset 14) and in the central directory.
    crc = info.CRC.to_bytes(4, "little")
    bad = (info.CRC ^ 0xFFFFFFFF).to_bytes(4, "little")
    data = bytearray(bytes(data).replace(crc, bad))
    broken = io.BytesIO(bytes(data))
    broken.name = "run.zip"
    problems = import_zip(alice_api, spec_a, broken)
    assert problems[0].startswith("sample 1: 'a.txt' is damaged")


def test_it_refuses_a_non_utf8_manifest(alice_api: APIClient, spec_a: Spec) -> None:
    upload = zip_upload({"samples.jsonl": manifest(make_rows(1)) + b"\n" + '{"identifier": "é"}'.encode("latin-1")})
    problems = import_zip(alice_api, spec_a, upload)
    assert problems == ["samples.jsonl line 2: not UTF-8 text"]


@override_settings(IMPORT_MAX_ZIP_MEMBERS=5)
def test_it_caps_zip_members(alice_api: APIClient, spec_a: Spec) -> None:
    members = {f"f{i}.txt": b"x" for i in range(6)}
    problems = import_zip(alice_api, spec_a, zip_upload(members))
    assert problems == ["the ZIP has 6 members; the limit is 5"]


@pytest.fixture(scope="module")
def zip_bomb() -> bytes:
    """A 194 KB ZIP whose manifest unpacks to 190 MiB (the size of the one that held a thread for 27 s)."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open("samples.jsonl", "w") as member,
    ):
        for _ in range(190):
            member.write(b"\0" * (1 << 20))
    return buffer.getvalue()


def test_it_refuses_a_zip_bomb_while_inflating(alice_api: APIClient, spec_a: Spec, zip_bomb: bytes) -> None:
    assert len(zip_bomb) < 200_000
    upload = io.BytesIO(zip_bomb)
    upload.name = "bomb.zip"
    problems = import_zip(alice_api, spec_a, upload)
    assert problems == ["samples.jsonl: 'samples.jsonl' unpacks to more than 200 times its packed size (a ZIP bomb?)"]


@override_settings(IMPORT_MAX_INFLATED_BYTES=5 * 1024 * 1024)
def test_it_refuses_a_zip_past_its_inflated_budget(alice_api: APIClient, spec_a: Spec, zip_bomb: bytes) -> None:
    upload = io.BytesIO(zip_bomb)
    upload.name = "bomb.zip"
    assert import_zip(alice_api, spec_a, upload) == ["the ZIP unpacks to more than 5,242,880 bytes"]


def test_it_refuses_a_sample_file_that_inflates_past_its_limit(alice_api: APIClient, spec_a: Spec) -> None:
    row = {**make_rows(1)[0], "path": "big.txt"}
    del row["content"]
    upload = zip_upload({"samples.jsonl": manifest([row]), "big.txt": b"a" * (1024 * 1024 + 1)})
    problems = import_zip(alice_api, spec_a, upload)
    assert problems == ["sample 1: 'big.txt' unpacks to more than 1,048,576 bytes"]


def test_it_refuses_lone_surrogates_in_jsonl(alice_api: APIClient, spec_a: Spec) -> None:
    upload = io.BytesIO(b'{"identifier": "a", "content": "\\ud800", "properties": {}}\n')
    upload.name = "run.jsonl"
    problems = import_zip(alice_api, spec_a, upload)
    assert problems == [
        "'run.jsonl' line 1: the string at content holds a lone surrogate (\\ud800-\\udfff), which is not valid Unicode"
    ]


# --- Text a database cannot store (PostgreSQL refuses NUL; SQLite stored it): refused alike on both ---

NUL_NAMED = "holds a NUL character (\\u0000), which the database cannot store"


def jsonl_upload(rows: list[dict[str, Any]], name: str = "run.jsonl") -> io.BytesIO:
    upload = io.BytesIO(b"\n".join(json.dumps(row).encode() for row in rows))
    upload.name = name
    return upload


def test_it_refuses_a_nul_in_an_imported_sample_naming_the_field(alice_api: APIClient, spec_a: Spec) -> None:
    rows = make_rows(2)
    rows[1]["content"] = "a\u0000b"
    body = refused(
        alice_api, "post", IMPORT, HTTPStatus.BAD_REQUEST,
        data={"spec_id": str(spec_a.code), "samples": rows}, format="json",
    )  # fmt: skip
    assert body["detail"] == f"JSON parse error - the string at samples[1].content {NUL_NAMED}."


def test_it_refuses_a_nul_in_a_jsonl_upload_naming_the_line(alice_api: APIClient, spec_a: Spec) -> None:
    rows = make_rows(2)
    rows[0]["properties"]["sentiment"] = "positive\u0000"
    problems = import_zip(alice_api, spec_a, jsonl_upload(rows))
    assert problems == [f"'run.jsonl' line 1: the string at properties.sentiment {NUL_NAMED}"]


def test_it_refuses_a_nul_in_a_zip_member_naming_the_sample(alice_api: APIClient, spec_a: Spec) -> None:
    row = {**make_rows(1)[0], "path": "a.txt"}
    del row["content"]
    problems = import_zip(alice_api, spec_a, zip_upload({"samples.jsonl": manifest([row]), "a.txt": b"a\x00b"}))
    assert problems == [f"sample 1 ('sample_1'): content {NUL_NAMED}"]


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        ('"Customer support conversations"', '"support\\0"', 2),  # YAML's \0 escape
        ("[positive, negative, neutral]", '[positive, negative, "neutral\\x00"]', 6),
    ],
)
def test_it_refuses_a_nul_escaped_in_spec_yaml(
    alice_api: APIClient, company_a: Any, old: str, new: str, line: int
) -> None:
    text = SPEC_YAML.replace(old, new)
    assert text != SPEC_YAML
    body = refused(alice_api, "post", SPECS, HTTPStatus.BAD_REQUEST, data=spec_body(text), format="json")
    assert body["content_yaml"][0].startswith(f"line {line}: the value ")
    assert body["content_yaml"][0].endswith(NUL_NAMED)


@pytest.mark.parametrize(
    "path", ["/evaluate?nametag=a%00b", f"{SPECS}?search=a%00b", "/api/dataframer/runs/?status=%00"]
)
def test_it_refuses_a_nul_in_an_api_filter(alice_api: APIClient, company_a: Any, path: str) -> None:
    body = refused(alice_api, "get", path, HTTPStatus.BAD_REQUEST)
    assert body["detail"].startswith("The query parameter '")
    assert body["detail"].endswith(f"{NUL_NAMED}.")


def test_it_refuses_a_nul_in_every_documented_parameter_and_body(
    alice_api: APIClient, run_a: Run, spec_a: Spec, evaluate: Any
) -> None:
    # Every operation of the schema: each string query parameter, and a JSON body whose one string holds a NUL.
    # Path ids are real ones, so the request reaches the view and its parser, not a 404.
    schema = alice_api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    evaluation = evaluate(run_a)
    monitor = alice_api.post("/monitor", {"name": "m"}, format="json").json()
    workflow = alice_api.post(
        "/defend",
        {
            "name": "w",
            "type": "custom",
            "improvement_action": "do_nothing",
            "custom_hallucination_threshold_values": {"completeness": 0.7},
        },
        format="json",
    ).json()
    ids = {
        "id": str(spec_a.code),
        "run_pk": str(run_a.code),
        "evaluation_pk": str(evaluation.code),
        "eval_id": "eval-x",
        "file_id": "x",
        "monitor_id": monitor["monitor_id"],
        "workflow_id": workflow["workflow_id"],
        "event_id": "x",
    }
    red_spec = RedTeamSpec.objects.create(company=spec_a.company, name="r", app_description="a", domain_description="d")
    red_run = RedTeamRun.objects.create(
        company=spec_a.company, spec=red_spec, model_name="x", number_of_behaviors=1, number_of_prompts_per_behavior=1
    )
    own_ids = {
        "/runs/": run_a.code,
        "/evaluations/": evaluation.code,  # e.g. meta/, whose PATCH body holds the name
        "/red-team-specs/": red_spec.code,
        "/red-team-runs/": red_run.code,
    }
    sent = 0
    for path, item in schema["paths"].items():
        url = next((path.replace("{id}", str(code)) for part, code in own_ids.items() if part in path), path)
        for name, value in ids.items():
            url = url.replace(f"{{{name}}}", value)
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"} or path == "/api/users/api-key/rotate":
                continue
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query" and parameter.get("schema", {}).get("type") == "string":
                    refused(alice_api, method, f"{url}?{parameter['name']}=a%00b", HTTPStatus.BAD_REQUEST)
                    sent += 1
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                answer = refused(alice_api, method, url, data={"name": "a\u0000b"}, format="json")
                assert "at name holds a NUL character" in str(answer), (method, path, answer)
                sent += 1
    assert sent >= 13  # the walk reached the operations (13 today; a schema without them would pass vacuously)


def refused_page(client: Client, method: str, path: str, **kwargs: Any) -> str:
    """A page's answer to unstorable text: a 400 page naming the field, nothing stored."""
    before = rows()
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == HTTPStatus.BAD_REQUEST, response.content[:300]
    assert rows() == before
    return str(response.content.decode())


def test_it_refuses_a_nul_in_page_filters(client: Client, alice: Any, run_a: Run) -> None:
    client.force_login(alice)
    for path in ["/guardrails/?nametag=a%00b", f"/runs/{run_a.code}/?property=sentiment&value=a%00b"]:
        page = refused_page(client, "get", path)
        assert "The query parameter " in page
        assert "NUL character" in page


def test_it_refuses_a_nul_in_page_forms(client: Client, alice: Any, spec_a: Spec) -> None:
    client.force_login(alice)
    page = refused_page(client, "post", "/specs/", data={"name": "x\u0000", "content_yaml": SPEC_YAML})
    assert "The form field &#x27;name&#x27; holds a NUL character" in page
    rows_ = make_rows(2)
    rows_[0]["content"] = "a\u0000b"
    page = refused_page(client, "post", "/runs/import/", data={"spec": str(spec_a.code), "file": jsonl_upload(rows_)})
    assert f"&#x27;run.jsonl&#x27; line 1: the string at content {NUL_NAMED}" in page


# --- Every parser of uploaded content: its pathological case is a 400 naming the file ---

SEEDS = "/api/dataframer/seed-datasets/"
NESTED_3000 = b"[" * 3000 + b"]" * 3000  # 6 KB; the stdlib parser's RecursionError once answered 500


def seed_files(name: str, data: bytes) -> dict[str, Any]:
    upload = io.BytesIO(data)
    upload.name = name
    return {"name": "Seeds", "dataset_type": "SINGLE_FILE", "files[]": [upload]}


def seed_zip(name: str, data: bytes) -> dict[str, Any]:
    return {"name": "Seeds", "zip_file": zip_upload({name: data}, name="seeds.zip")}


@pytest.mark.parametrize("wrap", [seed_files, seed_zip], ids=["create", "create-from-zip"])
@pytest.mark.parametrize(
    ("name", "data", "problem"),
    [
        ("deep.json", NESTED_3000, "'deep.json' is not valid JSON (nested more than 64 levels deep)"),
        ("deep.jsonl", b'{"a": 1}\n' + NESTED_3000 + b"\n", "'deep.jsonl' line 2 is not valid JSON (nested more than"),
        ("wide.csv", b'a,b\n"' + b"x" * 200_000 + b'",1\n', "'wide.csv' is not readable CSV (field larger than"),
    ],
)
def test_it_refuses_a_pathological_seed_file_naming_it(
    alice_api: APIClient, company_a: Any, wrap: Any, name: str, data: bytes, problem: str
) -> None:
    path = f"{SEEDS}create/" if wrap is seed_files else f"{SEEDS}create-from-zip/"
    body = refused(alice_api, "post", path, HTTPStatus.BAD_REQUEST, data=wrap(name, data), format="multipart")
    assert problem in body["detail"]


def test_it_refuses_a_pathological_run_import_naming_the_file(alice_api: APIClient, spec_a: Spec) -> None:
    upload = io.BytesIO(b'{"identifier": "a", "content": ' + NESTED_3000 + b"}\n")
    upload.name = "deep.jsonl"
    assert import_zip(alice_api, spec_a, upload) == [
        "'deep.jsonl' line 1: not valid JSON (nested more than 64 levels deep)"
    ]
    manifest_only = zip_upload({"samples.jsonl": NESTED_3000 + b"\n"})
    assert import_zip(alice_api, spec_a, manifest_only) == [
        "samples.jsonl line 1: not valid JSON (nested more than 64 levels deep)"
    ]


# --- Guardrail texts have a size limit (GUARDRAIL_MAX_TEXT_CHARS): a 413 naming the field ---


@pytest.mark.parametrize(
    ("field", "loc"),
    [
        ("model_output", ["body", "model_output"]),
        ("user_prompt", ["body", "model_input", "user_prompt"]),
        ("system_prompt", ["body", "model_input", "system_prompt"]),
        ("ground_truth", ["body", "model_input", "ground_truth"]),
        ("context", ["body", "model_input", "context"]),
    ],
)
def test_it_refuses_a_guardrail_text_over_its_limit(
    alice_api: APIClient, company_a: Any, field: str, loc: list[str]
) -> None:
    big = "x" * 100_001  # the default limit, plus one
    body: dict[str, Any] = {"model_input": {"user_prompt": "Hi"}, "model_output": "Hello"}
    if field == "model_output":
        body["model_output"] = big
    else:
        body["model_input"][field] = big
    answer = refused(alice_api, "post", "/evaluate", HTTPStatus.REQUEST_ENTITY_TOO_LARGE, data=body, format="json")
    assert answer["detail"] == [
        {
            "loc": loc,
            "msg": "The text is 100,001 characters; the limit is 100,000 (GUARDRAIL_MAX_TEXT_CHARS).",
            "type": "too_large",
        }
    ]
    batch = {"items": [{"model_input": {"user_prompt": "Hi"}, "model_output": "ok"}, body]}
    answer = refused(
        alice_api, "post", "/evaluate/batch", HTTPStatus.REQUEST_ENTITY_TOO_LARGE, data=batch, format="json"
    )
    assert answer["detail"][0]["loc"] == ["body", "items", 1, *loc[1:]]


@override_settings(GUARDRAIL_MAX_TEXT_CHARS=10)
def test_the_guardrail_text_limit_is_a_setting_on_the_page_too(client: Client, alice: Any, company_a: Any) -> None:
    client.force_login(alice)
    before = rows()
    response = client.post("/guardrails/", {"user_prompt": "Hi", "model_output": "x" * 11, "run_mode": "smart"})
    assert "Ensure this value has at most 10 characters (it has 11)." in response.content.decode()
    assert rows() == before


@override_settings(GUARDRAIL_MAX_TEXT_CHARS=0)
def test_zero_turns_the_guardrail_text_limit_off(alice_api: APIClient, company_a: Any) -> None:
    body = {"model_input": {"user_prompt": "Hi"}, "model_output": "x" * 100_001}
    assert alice_api.post("/evaluate", body, format="json").status_code == HTTPStatus.CREATED


# --- JSON bodies ---


def nested(depth: int) -> bytes:
    return b'{"name": "x", "content_yaml": ' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize("depth", [65, 990, 100_000])
def test_it_refuses_deeply_nested_json(alice_api: APIClient, company_a: Any, depth: int) -> None:
    body = refused(
        alice_api, "post", SPECS, HTTPStatus.BAD_REQUEST, data=nested(depth), content_type="application/json"
    )
    assert "nested more than 64 levels deep" in body["detail"]


def test_it_refuses_deeply_nested_json_on_deeprails_paths(alice_api: APIClient, company_a: Any) -> None:
    body = b'{"model_input": ' + b"[" * 990 + b"]" * 990 + b', "model_output": "x"}'
    answer = refused(
        alice_api, "post", "/evaluate", HTTPStatus.UNPROCESSABLE_ENTITY, data=body, content_type="application/json"
    )
    assert "nested more than" in answer["detail"][0]["msg"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"name": "\\ud800", "content_yaml": "x"}', "lone surrogate"),
        (b'{"name": "ok", "content_yaml": "\\udfff tail"}', "lone surrogate"),
        (b'{"name": "ok", "\\ud83d": "x"}', "lone surrogate"),
        (b'{"name": NaN, "content_yaml": "x"}', "NaN is not a JSON number"),
        (b'{"name": Infinity, "content_yaml": "x"}', "Infinity is not a JSON number"),
        (b'{"name": "\xff\xfe", "content_yaml": "x"}', "not utf-8 text"),
        (b'{"name": ' + b"9" * 5000 + b"}", "JSON parse error"),
    ],
)
def test_it_refuses_json_that_is_not_text(alice_api: APIClient, company_a: Any, raw: bytes, message: str) -> None:
    body = refused(alice_api, "post", SPECS, HTTPStatus.BAD_REQUEST, data=raw, content_type="application/json")
    assert message in body["detail"]


def test_it_accepts_paired_surrogates(alice_api: APIClient, company_a: Any) -> None:
    raw = json.dumps({"name": "smile \U0001f600", "content_yaml": SPEC_YAML}).encode()  # ensure_ascii: a pair
    assert b"\\ud83d\\ude00" in raw
    assert alice_api.post(SPECS, data=raw, content_type="application/json").status_code == HTTPStatus.CREATED


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=4096)
@pytest.mark.parametrize("path", [SPECS, IMPORT, "/evaluate", "/api/users/api-key/rotate"])
def test_it_answers_an_oversized_body_with_a_json_413(alice_api: APIClient, company_a: Any, path: str) -> None:
    raw = json.dumps({"name": "x" * 5000, "content_yaml": SPEC_YAML}).encode()
    body = refused(
        alice_api, "post", path, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, data=raw, content_type="application/json"
    )
    assert "larger than 4,096 bytes" in body["detail"]


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=4096)
def test_it_caps_a_body_without_a_declared_length(alice_api: APIClient, company_a: Any) -> None:
    from config.api import PayloadTooLarge, StrictJSONParser

    with pytest.raises(PayloadTooLarge):
        StrictJSONParser().parse(io.BytesIO(b'{"a": "' + b"x" * 5000 + b'"}'), "application/json", {})


# --- Every answer under /api/ and /evaluate is JSON ---


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/api/nothing-here", HTTPStatus.NOT_FOUND),
        ("get", "/api/dataframer/specs/not-a-uuid/", HTTPStatus.NOT_FOUND),
        ("get", "/api/dataframer/specs", HTTPStatus.NOT_FOUND),  # no trailing slash, and no redirect
        ("get", "/evaluate/a/b", HTTPStatus.NOT_FOUND),
        ("get", "/evaluate/not-an-id", HTTPStatus.NOT_FOUND),
        ("put", "/evaluate", HTTPStatus.METHOD_NOT_ALLOWED),
        ("delete", "/api/users/api-key/rotate", HTTPStatus.METHOD_NOT_ALLOWED),
        ("patch", "/api/dataframer/specs/", HTTPStatus.METHOD_NOT_ALLOWED),
        ("get", "/api/dataframer/downloads/forged/", HTTPStatus.NOT_FOUND),
    ],
)
def test_it_answers_errors_as_json(
    alice_api: APIClient, company_a: Any, debug: bool, method: str, path: str, status: int
) -> None:
    with override_settings(DEBUG=debug):
        body = refused(alice_api, method, path, status)
    assert isinstance(body["detail"], str)


@pytest.mark.parametrize("path", ["/evaluate", SPECS, "/api/dataframer/runs/"])
def test_it_answers_options_without_a_500(alice_api: APIClient, company_a: Any, path: str) -> None:
    response = alice_api.options(path)
    assert response.status_code == HTTPStatus.OK
    assert "application/json" in response.json()["renders"]


def test_it_answers_401_and_403_as_json(bob_api: APIClient, company_a: Any) -> None:
    assert refused(APIClient(), "get", SPECS, HTTPStatus.UNAUTHORIZED)["detail"]
    assert refused(APIClient(HTTP_AUTHORIZATION="Bearer nope"), "get", "/evaluate", HTTPStatus.UNAUTHORIZED)
    body = refused(bob_api, "post", SPECS, HTTPStatus.FORBIDDEN, data=spec_body(SPEC_YAML), format="json")
    assert "read-only" in body["detail"]


@override_settings(API_KEY_MAX_FAILURES_PER_ADDRESS=1)
def test_it_answers_429_as_json_with_retry_after(db: None) -> None:
    guesser = APIClient(HTTP_AUTHORIZATION="Bearer " + "0" * 48)
    refused(guesser, "get", SPECS, HTTPStatus.UNAUTHORIZED)
    assert refused(guesser, "get", "/evaluate", HTTPStatus.TOO_MANY_REQUESTS)["detail"].startswith("Too many")


@pytest.mark.parametrize(
    "moment", ["10000-01-01", "99999-12-31T00:00:00", "9999-12-31T23:59:59-01:00", "0000-01-01", "2024-13-45"]
)
def test_it_refuses_dates_out_of_range_in_filters(alice_api: APIClient, company_a: Any, moment: str) -> None:
    # DeepRails answers a bad filter with 422 and its own shape, naming the parameter.
    for name in ("created_after", "created_before"):
        body = refused(alice_api, "get", "/evaluate", HTTPStatus.UNPROCESSABLE_ENTITY, query_params={name: moment})
        assert body["detail"][0]["loc"] == ["query", name]


@pytest.mark.parametrize("debug", [False, True])
def test_it_answers_a_500_as_json_with_a_logged_request_id(
    alice_api: APIClient, company_a: Any, monkeypatch: pytest.MonkeyPatch, caplog: Any, debug: bool
) -> None:
    from runs.api.views import SpecViewSet

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(SpecViewSet, "list", explode)
    with override_settings(DEBUG=debug), caplog.at_level(logging.ERROR, logger="config.errors"):
        response = alice_api.get(SPECS)
    assert response.status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    body = response.json()
    assert body["detail"] == "Internal server error."
    assert body["request_id"] == response["X-Request-ID"]
    assert body["request_id"] in caplog.text
    assert "RuntimeError: a bug" in caplog.text


def test_it_answers_a_database_lock_timeout_with_a_503_to_retry(
    alice_api: APIClient, company_a: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import OperationalError

    from runs.api.views import SpecViewSet

    def locked(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("database is locked")

    monkeypatch.setattr(SpecViewSet, "list", locked)
    response = alice_api.get(SPECS)
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response["Retry-After"] == "2"
    assert response.json()["detail"] == "The database is busy; retry in a moment."


# --- Pages keep HTML, friendly and without DEBUG's pages ---


def test_it_shows_a_friendly_404_page(client: Client, db: None) -> None:
    response = client.get("/no/such/page/")
    assert response.status_code == HTTPStatus.NOT_FOUND
    page = response.content.decode()
    assert "Page not found" in page
    assert "URLconf" not in page


def test_it_shows_a_friendly_500_page_with_the_request_id(
    client: Client, alice: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runs.extensions import extensions

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(extensions, "annotate_latest_score", explode)
    client.force_login(alice)
    client.raise_request_exception = False
    response = client.get("/runs/", HTTP_X_REQUEST_ID="req-12345678")
    assert response.status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    page = response.content.decode()
    assert "Something went wrong" in page
    assert "req-12345678" in page
    assert "Traceback" not in page


def test_nothing_hostile_was_stored(
    transactional_db: None, live_server: Any, alice_api: APIClient, bob_api: APIClient, spec_a: Spec, zip_bomb: bytes
) -> None:
    """One of each kind of hostile write, sent over HTTP to the live server and committed for real (the tests above
    run in a transaction rolled back after each, where on-commit work never runs): afterwards only the fixtures'
    rows exist, with nothing left by a request, by the work it enqueued or by a later one."""
    import httpx

    before = rows()
    unsafe = make_rows(3)
    unsafe[1]["path"] = "../outside.txt"  # the first sample is valid: a half-done import would leave a run
    escaping = zip_upload({"samples.jsonl": manifest([unsafe[0], {**unsafe[2], "path": "..\\secret.txt"}])})
    many = "".join(f"    - {{property_name: p{i}, property_values: [x]}}\n" for i in range(101))
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("post", SPECS, {"json": spec_body(one_property("\n" + "".join(f"        - v{i}\n" for i in range(40_000))))}),
        ("post", SPECS, {"json": spec_body("spec:\n  data_property_variations:\n" + many)}),
        ("post", SPECS, {"json": spec_body("a: &a [x]\nspec:\n  description: *a\n")}),
        ("post", SPECS, {"content": nested(990), "headers": {"Content-Type": "application/json"}}),
        ("post", SPECS, {"content": b'{"name": "\\ud800", "content_yaml": "x"}', "headers": {"Content-Type": "application/json"}}),
        ("put", f"{SPECS}{spec_a.code}/", {"json": {"content_yaml": one_property("[" + ", ".join(["v0", "v1"] * 500) + "]")}}),
        ("post", IMPORT, {"json": {"spec_id": str(spec_a.code), "samples": unsafe}}),
        ("post", IMPORT, {"data": {"spec_id": str(spec_a.code)}, "files": {"file": ("run.zip", escaping.getvalue())}}),
        ("post", IMPORT, {"data": {"spec_id": str(spec_a.code)}, "files": {"file": ("bomb.zip", zip_bomb)}}),
        ("post", "/evaluate", {"content": b'{"model_input": ' + b"[" * 990 + b"]" * 990 + b', "model_output": "x"}', "headers": {"Content-Type": "application/json"}}),
    ]  # fmt: skip
    answers = []
    for api, writes in ((alice_api, requests), (bob_api, [("post", SPECS, {"json": spec_body(SPEC_YAML)})])):
        headers = {"Authorization": f"Bearer {api.api_key}"}  # type: ignore[attr-defined]
        with httpx.Client(base_url=live_server.url, headers=headers, timeout=30) as http:
            answers += [
                (method, path, http.request(method, path, **kwargs).status_code) for method, path, kwargs in writes
            ]
    assert [a for a in answers if not HTTPStatus.BAD_REQUEST <= a[2] < HTTPStatus.INTERNAL_SERVER_ERROR] == []
    assert rows() == before
    assert list(Spec.objects.values_list("name", flat=True)) == [spec_a.name]
    assert spec_a.versions.count() == 1
    assert not Run.objects.exists()


# --- One company's hostile spec does not stall another's requests ---


def test_it_keeps_other_companies_working_during_a_huge_spec(
    transactional_db: None, live_server: Any, alice_api: APIClient, charlie_api: APIClient
) -> None:
    import threading

    import httpx

    huge = spec_body(one_property("\n" + "".join(f"        - value_{i}\n" for i in range(40_000))))
    attacker_answers: list[tuple[int, float]] = []
    neighbour_errors: list[str] = []
    neighbour_created = 0

    def attack() -> None:
        headers = {"Authorization": f"Bearer {alice_api.api_key}"}  # type: ignore[attr-defined]
        with httpx.Client(base_url=live_server.url, headers=headers, timeout=30) as http:
            for number in range(3):
                started = time.perf_counter()
                response = http.post(SPECS, json={**huge, "name": f"huge {number}"})
                attacker_answers.append((response.status_code, time.perf_counter() - started))

    attacker = threading.Thread(target=attack)
    attacker.start()
    headers = {"Authorization": f"Bearer {charlie_api.api_key}"}  # type: ignore[attr-defined]
    with httpx.Client(base_url=live_server.url, headers=headers, timeout=30) as http:
        number = 0
        while attacker.is_alive() or number < 3:
            response = http.post(SPECS, json=spec_body(SPEC_YAML, name=f"small {number}"))
            if response.status_code != HTTPStatus.CREATED:
                neighbour_errors.append(f"{response.status_code} {response.text[:200]}")
            else:
                neighbour_created += 1
            number += 1
    attacker.join()
    assert neighbour_errors == []
    assert neighbour_created >= 3
    assert [status for status, _ in attacker_answers] == [HTTPStatus.BAD_REQUEST] * 3
    assert max(seconds for _, seconds in attacker_answers) < SECONDS
    assert not Spec.objects.filter(name__startswith="huge").exists()
