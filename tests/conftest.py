"""The alice / bob / charlie triad (STYLE.md rule 14) and the clients that act as them."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from benchmarks.standin import StandIn
from companies.models import ApiKey, Company, Membership
from tests.factories import CompanyFactory, MembershipFactory, UserFactory

PASSWORD = "correct horse battery staple"

# Tests that mostly wait (on real worker clusters, a live server, a browser) rather than compute.
WAITING_FIXTURES = frozenset({"start_worker", "worker", "live_server", "browser", "page"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Spread the waiting tests evenly through the run, the others keeping their order. Collected as they are, they
    sit together at the end (the root's test_worker.py, test_never_stuck.py, test_walk.py...), and the last minutes of
    a run were four processes waiting on clusters while the two cores idled (80% busy over the run, `/proc/stat`).
    Spread, at any moment about half the processes wait and the others use the cores. The order is the same in every
    xdist process (it depends on the collection only), as xdist requires."""
    waiting: list[pytest.Item] = []
    others: list[pytest.Item] = []
    for item in items:
        (waiting if WAITING_FIXTURES & set(getattr(item, "fixturenames", ())) else others).append(item)
    if not waiting or not others:
        return
    placed = [((i + 0.5) / len(waiting), item) for i, item in enumerate(waiting)]
    placed += [((i + 0.5) / len(others), item) for i, item in enumerate(others)]
    items[:] = [item for _, item in sorted(placed, key=lambda pair: pair[0])]


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """An xdist process ends here, without the interpreter's own shutdown: by now it has torn its fixtures down and
    sent its results and "workerfinished" (in pytest_sessionfinish), and what is left is freeing its whole heap,
    which the run's summary waited for: 3-4 s at the end of a run with six processes doing it at once on two cores
    (README, Tests). The main process, which reports, shuts down as usual."""
    if hasattr(config, "workerinput"):
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


@pytest.fixture(scope="session")
def django_db_setup(
    request: pytest.FixtureRequest,
    django_test_environment: None,
    django_db_blocker: Any,
    django_db_modify_db_settings: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:
    """pytest-django's test database, except under xdist: there the first process to get here migrates a template
    once, and every process copies it (a file copy on SQLite, CREATE DATABASE ... TEMPLATE on PostgreSQL) instead of
    running the migrations itself. tests/test_migrations.py still runs them, on its process's copy. The template
    (the test database's name with "_template") is left in place and rebuilt by the next run."""
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    verbosity = request.config.option.verbose
    worker = getattr(request.config, "workerinput", {}).get("workerid")
    with django_db_blocker.unblock():
        if worker:
            old_name = connection.settings_dict["NAME"]
            _database_from_template(connection, worker, tmp_path_factory.getbasetemp().parent, verbosity)
            old_config = [(connection, old_name, True)]
        else:
            old_config = setup_databases(verbosity=verbosity, interactive=False, aliases={"default"})
    yield
    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            _end_other_sessions(connection)
        try:
            teardown_databases(old_config, verbosity=verbosity)
        except Exception as exc:  # as pytest-django: a database still in use is a warning, not every test's error
            request.node.warn(pytest.PytestWarning(f"Error when trying to teardown test databases: {exc!r}"))


def _end_other_sessions(connection: Any) -> None:
    """Threads of this process that used the test database (a judge's pool, the live server's) may still hold an
    idle connection to it, and PostgreSQL refuses to drop a database anyone is connected to: the test database was
    then left behind with a warning (one or two per run on CI's second leg, each an idle session of a thread of the
    test process, its last statement a ROLLBACK). Ended here, before the drop."""
    name = connection.settings_dict["NAME"]
    connection.close()
    with connection.creation._nodb_cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        )


def _database_from_template(connection: Any, worker: str, run_folder: Path, verbosity: int) -> None:
    import fcntl

    from django.conf import settings

    name = connection.settings_dict["TEST"]["NAME"]  # pytest-django's, suffixed "_gw<N>"
    template = f"{name.removesuffix(f'_{worker}')}_template"
    # The run's processes share run_folder (xdist's temporary folder of this run): the flag says this run built it.
    built = run_folder / "test-database-template-built"
    with (run_folder / "test-database-template.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one at a time: PostgreSQL copies a template only while no one uses it
        if not built.exists():
            connection.settings_dict["TEST"]["NAME"] = template
            connection.creation.create_test_db(verbosity=verbosity, autoclobber=True, serialize=False)
            connection.close()
            connection.settings_dict["TEST"]["NAME"] = name
            built.touch()
        connection.settings_dict["NAME"] = template
        if connection.vendor == "sqlite":
            for leftover in (name, f"{name}-wal", f"{name}-shm"):  # a stale -wal would be replayed into the copy
                Path(leftover).unlink(missing_ok=True)
            shutil.copyfile(template, name)
        else:
            quote = connection.ops.quote_name
            with connection.creation._nodb_cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {quote(name)}")
                cursor.execute(f"CREATE DATABASE {quote(name)} TEMPLATE {quote(template)}")
    connection.close()
    settings.DATABASES[connection.alias]["NAME"] = name
    connection.settings_dict["NAME"] = name


@pytest.fixture(autouse=True)
def _clear_cache() -> Iterator[None]:
    # Throttle counters live in the cache; each test starts with none.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def by_hand(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    """Nothing is sent to a worker (tasks would run inline in tests), and a finished item runs no next step: the test
    runs each item itself."""
    from work import dispatch

    monkeypatch.setattr(dispatch, "dispatch", lambda **_: 0)
    settings.WORK_CHAIN_STEPS = False


@pytest.fixture
def company_a(db: None) -> Company:
    return new_company_a()


def new_company_a() -> Company:
    """Company A, alice's, as every fixture here builds it (tests/test_fuzz.py builds it once for its module)."""
    return CompanyFactory(name="Alpha Corp")


@pytest.fixture
def company_b(db: None) -> Company:
    return CompanyFactory(name="Beta Inc")


@pytest.fixture
def alice(company_a: Company) -> Any:
    """Owner of company A."""
    return new_alice(company_a)


def new_alice(company_a: Company) -> Any:
    return MembershipFactory(user=UserFactory(username="alice@alpha.test"), company=company_a).user


@pytest.fixture
def bob(company_a: Company) -> Any:
    """Read-only member (viewer) of company A."""
    return MembershipFactory(
        user=UserFactory(username="bob@alpha.test"),
        company=company_a,
        role=Membership.Role.VIEWER,
    ).user


@pytest.fixture
def charlie(company_b: Company) -> Any:
    """Owner of company B: a stranger to everything of A."""
    return MembershipFactory(user=UserFactory(username="charlie@beta.test"), company=company_b).user


def _api_client_for(user: Any, company: Company) -> APIClient:
    _key, secret = ApiKey.issue(company=company, user=user, name="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    client.api_key = secret  # type: ignore[attr-defined]
    return client


@pytest.fixture
def alice_api(alice: Any, company_a: Company) -> APIClient:
    return _api_client_for(alice, company_a)


@pytest.fixture
def bob_api(bob: Any, company_a: Company) -> APIClient:
    return _api_client_for(bob, company_a)


@pytest.fixture
def charlie_api(charlie: Any, company_b: Company) -> APIClient:
    return _api_client_for(charlie, company_b)


@pytest.fixture
def alice_key(alice: Any, company_a: Company) -> str:
    return ApiKey.issue(company=company_a, user=alice, name="client")[1]


# --- Browser tests ---


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail("REQUIRE_BROWSER=1 but Debian's chromium is not installed")
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium); browser tests skipped")
    return path


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[Any]:
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls from the test body are
    # still synchronous, so allow them.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
            ],
        )
        yield browser
        browser.close()


def sign_in_browser(page: Any, url: str, email: str = "alice@alpha.test") -> None:
    """Sign in through the login form, as a user would, and land on home."""
    page.goto(f"{url}/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


# --- Specs and runs ---

SPEC_YAML = """\
spec:
  description: "Customer support conversations"
  requirements: "Each conversation has a greeting, an issue and an agent reply."
  data_property_variations:
    - property_name: sentiment
      property_values: [positive, negative, neutral]
      base_distributions: {positive: 40, negative: 30, neutral: 30}
      property_description: "Overall customer sentiment"
    - property_name: priority
      property_values: [high, medium, low]
      base_distributions: {high: 20, medium: 50, low: 30}
      conditional_distributions:
        sentiment:
          negative: {high: 50, medium: 40, low: 10}
"""


SENTIMENT_TEXTS = [
    "Thank you so much, the order arrived early and everything works perfectly. Great service!",
    "This is terrible. The order arrived broken, again, and nobody answers. I am furious and want a refund.",
    "Could you tell me when the order will be shipped? I would like to know the delivery date, please.",
]


def make_rows(count: int, start: int = 1) -> list[dict[str, Any]]:
    sentiments = ["positive", "negative", "neutral"]
    priorities = ["high", "medium", "low"]
    return [
        {
            "identifier": f"sample_{i}",
            # Worded so that the embedded judge (the default without provider keys) can decide the sentiment.
            "content": f"Customer {i}: " + SENTIMENT_TEXTS[i % 3],
            "properties": {
                "sentiment": sentiments[i % 3],
                "priority": priorities[i % 3],
            },
        }
        for i in range(start, start + count)
    ]


@pytest.fixture
def spec_a(alice: Any, company_a: Company) -> Any:
    return new_spec_a(company_a, alice)


def new_spec_a(company_a: Company, alice: Any) -> Any:
    from runs.services import spec_create

    return spec_create(company=company_a, created_by=alice, name="Support", content_yaml=SPEC_YAML)


@pytest.fixture
def run_a(alice: Any, company_a: Company, spec_a: Any) -> Any:
    return new_run_a(company_a, alice, spec_a)


def new_run_a(company_a: Company, alice: Any, spec_a: Any) -> Any:
    from runs.services import run_import

    return run_import(company=company_a, created_by=alice, spec=spec_a, rows=make_rows(12))


# --- Judges: never a real provider ---


@pytest.fixture(autouse=True)
def _no_real_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach a real provider: no credentials from the environment, and a network that refuses."""
    import httpx2

    from llm import providers

    for name in (
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "ANTHROPIC_BASE_URL",
        "OPENAI_BASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)

    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise AssertionError(f"a test tried to reach a real provider: {request.url}")

    monkeypatch.setattr(
        providers,
        "http_client_for",
        lambda model: httpx2.Client(transport=httpx2.MockTransport(refuse)),
    )


def _install_fake(monkeypatch: pytest.MonkeyPatch, kind: str, key_env: str) -> Any:
    from llm import engine, providers
    from tests.llm.fakes import FakeProvider

    fake = FakeProvider(kind)
    monkeypatch.setenv(key_env, f"test-{kind}-key")
    monkeypatch.setattr(providers, "http_client_for", fake.client)
    # Backoffs are recorded, not slept: fault tests run instantly and can assert the waits.
    monkeypatch.setattr(engine, "sleep", fake.sleeps.append)
    return fake


@pytest.fixture
def fake_anthropic(monkeypatch: pytest.MonkeyPatch) -> Any:
    return _install_fake(monkeypatch, "anthropic", "ANTHROPIC_API_KEY")


@pytest.fixture
def fake_openai(monkeypatch: pytest.MonkeyPatch) -> Any:
    return _install_fake(monkeypatch, "openai", "OPENAI_API_KEY")


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    # Limiters are per process and sized from settings when first used; tests change the settings.
    from llm import engine

    engine._limiters.clear()
    yield
    engine._limiters.clear()


@pytest.fixture
def evaluate(django_capture_on_commit_callbacks: Any, alice: Any, company_a: Company) -> Any:
    """Create an evaluation the way the API does and run it to the end (tasks run inline in tests)."""
    from evaluations.models import Evaluation
    from evaluations.services import evaluation_create

    def run_it(run: Any, model: str | None = None) -> Evaluation:
        with django_capture_on_commit_callbacks(execute=True):
            evaluation = evaluation_create(company=company_a, created_by=alice, run=run, model_name=model)
        return Evaluation.objects.get(pk=evaluation.pk)

    return run_it


class Worker:
    """A real django-q2 cluster (`manage.py qcluster`) in its own process group, on the test database and the
    configured broker (the ORM broker on CI's first leg, Redis on its second)."""

    def __init__(self, env: dict[str, str]) -> None:
        import subprocess
        import sys
        from pathlib import Path

        root = Path(__file__).resolve().parent.parent
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "worker"],
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: a test can kill or stop the whole cluster at once
        )

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def wait_gone(self, timeout: float) -> None:
        """Wait until every process of the cluster has exited (the main one may leave before its workers)."""
        import time

        self.process.wait(timeout=timeout)
        deadline = time.monotonic() + timeout
        while (left := live_in_group(self.process.pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        if left:
            raise TimeoutError(f"processes of group {self.process.pid} still running after {timeout} s: {left}")

    def kill(self) -> None:
        """SIGKILL to every process of the cluster: a machine that dies, nothing handed back."""
        import signal

        self.signal_group(signal.SIGKILL)
        self.process.wait()
        self.wait_gone(timeout=10)

    def stop(self, timeout: float = 20) -> None:
        import signal
        import subprocess

        self.signal_group(signal.SIGTERM)
        try:
            # Every process, not just the main one: a worker still handing back must not outlive the test database.
            self.wait_gone(timeout=timeout)
        except (subprocess.TimeoutExpired, TimeoutError):
            self.kill()


def proc_stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command's name: state, parent, process group, ... OSError once the
    process is gone."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def command_line(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()


def live_processes() -> Iterator[tuple[int, list[str]]]:
    """Every process that has not exited, with its `proc_stat` fields. Zombies are left out: a zombie has exited, it
    runs nothing and holds nothing, but `os.kill(pid, 0)` and `os.killpg(group, 0)` still find it.
    `manage.py worker` exits without waiting for its children, so they are reparented to PID 1, and this sandbox's
    PID 1 (process_api) reaps orphans only every so often: an exited group read as running for 2.3-2.7 s on a quiet
    machine (measured 2026-12-07), and how late under load is not known. That may have been the SIGTERM test's one
    failure in a whole CI run that day ("still running after 15 s"); it is not proven."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = proc_stat(int(entry.name))
        except (OSError, IndexError):
            continue  # gone meanwhile
        if fields[0] != "Z":
            yield int(entry.name), fields


def live_in_group(pgid: int) -> list[str]:
    """The live processes of group `pgid`, as "pid state command"."""
    found = []
    for pid, fields in live_processes():
        if int(fields[2]) == pgid:
            with contextlib.suppress(OSError):  # gone meanwhile
                found.append(f"{pid} {fields[0]} {command_line(pid)[:120]}")
    return found


def subprocess_database_url() -> str:
    """The test database as a DATABASE_URL, for the processes a test starts (workers, `make run`'s Procfile)."""
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def start_worker(transactional_db: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Start real workers with extra environment (settings overrides); every one is stopped at the end."""
    from django_q.conf import Conf

    url = subprocess_database_url()
    monkeypatch.setattr(Conf, "SYNC", False)  # this process enqueues; the workers run the tasks
    started: list[Worker] = []

    def start(**extra: str) -> Worker:
        env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings", "Q_WORKERS": "1"}
        worker = Worker(env | extra)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def worker(start_worker: Any) -> Any:
    """One real worker with the default settings."""
    import time

    process = start_worker().process
    time.sleep(0.5)
    return process


# --- A stand-in LLM provider on 127.0.0.1 (benchmarks/standin.py), for tests with real workers ---

STANDIN_MODEL = "test/standin"


@pytest.fixture
def standin(tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[StandIn]:
    """The stand-in provider, and a judge model pointing at it in this process and in the workers."""
    with StandIn(latency=0.05, retry_after=0.2, hang_seconds=4) as server:
        entry = {"provider": "openai", "model": "standin", "base_url": f"{server.url}/v1", "max_tokens": 1024}
        settings.JUDGE_MODELS = {**settings.JUDGE_MODELS, STANDIN_MODEL: entry}
        models_file = tmp_path / "models.json"
        models_file.write_text(json.dumps({STANDIN_MODEL: entry}))
        monkeypatch.setenv("JUDGE_MODELS_FILE", str(models_file))
        yield server
