"""The API under attack: least privilege, keys, Host names, headers, what error bodies reveal."""

import hashlib

import httpx
import psycopg
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from tests.conftest import LiveApi, serve
from windpipe.api import create_app
from windpipe.api.security import host_of, key_digest, new_key
from windpipe.etl.session import api_client
from windpipe.postgres import api_database_url, ensure_reader_role, libpq_conninfo
from windpipe.settings import Settings

DAY = {"start": "2024-03-02", "end": "2024-03-03"}


@pytest.fixture(scope="module")
def reader_url(settings: Settings, seeded_source: Engine) -> URL:
    """The source as the API's read-only role, created the way `db init` creates it."""
    ensure_reader_role(seeded_source, settings.api_db_role, None)
    return api_database_url(settings)


def test_the_api_role_can_read_but_not_write_or_create(reader_url: URL) -> None:
    assert reader_url.username == "windpipe_reader"
    with psycopg.connect(libpq_conninfo(reader_url), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM data").fetchone()[0] > 0  # type: ignore[index]
        # The fingerprints the change sensor compares (migration s0003): readable, not writable.
        assert conn.execute("SELECT count(*) FROM day_fingerprint").fetchone()[0] > 0  # type: ignore[index]
        for statement in (
            "DELETE FROM data",
            "UPDATE day_fingerprint SET samples = 0",
            "INSERT INTO data (\"timestamp\") VALUES ('1990-01-01')",
            "CREATE TABLE stolen (x int)",
            "DROP TABLE data",
        ):
            with pytest.raises(psycopg.errors.Error) as caught:
                conn.execute(statement)
            # read-only transaction, or no privilege: either way nothing was written
            assert caught.value.sqlstate in ("25006", "42501"), (statement, caught.value)
        conn.execute("SET default_transaction_read_only = off")  # a session may try to undo it
        for statement in ("DELETE FROM data", "CREATE TABLE stolen (x int)"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_the_api_sessions_are_read_only_with_a_statement_timeout(
    settings: Settings, reader_url: URL
) -> None:
    app = create_app(
        settings.model_copy(update={"api_statement_timeout_seconds": 7.5}),
        source_conninfo=libpq_conninfo(reader_url),
    )
    with serve(app) as api, httpx.Client(base_url=api.url) as client:
        assert client.get("/data", params=DAY).status_code == 200
        reader = app.state.reader
        conn, _ = reader._checkout()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT current_setting('statement_timeout') AS t, "
                    "current_setting('transaction_read_only') AS r"
                )
                assert cur.fetch_arrow_table().to_pylist() == [{"t": "7500ms", "r": "on"}]
        finally:
            reader._checkin(conn)


@pytest.fixture(scope="module")
def keyed(settings: Settings, source_url: URL, seeded_source: Engine) -> tuple[LiveApi, str]:
    key = new_key()
    other = "etl=" + key_digest(new_key())
    keyed_settings = settings.model_copy(
        update={"api_key_hashes": [other, f"grafana={key_digest(key)}"]}
    )
    app = create_app(keyed_settings, source_conninfo=libpq_conninfo(source_url))
    with serve(app) as api:
        yield api, key


def test_keys_are_required_when_configured(keyed: tuple[LiveApi, str]) -> None:
    api, key = keyed
    with httpx.Client(base_url=api.url) as client:
        none = client.get("/data", params=DAY)
        assert none.status_code == 401
        assert none.headers["www-authenticate"] == "Bearer"
        assert "Authorization: Bearer" in none.json()["detail"]
        wrong = client.get("/data", params=DAY, headers={"Authorization": f"Bearer {key}x"})
        assert wrong.status_code == 403
        assert key not in wrong.text
        assert client.get("/coverage").status_code == 401
        assert client.get("/variables", headers={"X-API-Key": "nope"}).status_code == 403
        bearer = client.get("/data", params=DAY, headers={"Authorization": f"Bearer {key}"})
        assert bearer.status_code == 200 and len(bearer.json()) == 1440
        header = client.get("/coverage", headers={"X-API-Key": key})
        assert header.status_code == 200
        assert client.get("/health").status_code == 200  # probes need no key
        assert client.get("/docs").status_code == 200  # nor the documentation
        spec = client.get("/openapi.json").json()
        assert set(spec["components"]["securitySchemes"]) == {"HTTPBearer", "APIKeyHeader"}
        assert {"401", "403"} <= set(spec["paths"]["/data"]["get"]["responses"])


def test_the_etl_client_sends_the_configured_key(
    settings: Settings, keyed: tuple[LiveApi, str]
) -> None:
    api, key = keyed
    bare_settings = settings.model_copy(update={"api_url": api.url, "api_key": None})
    with api_client(bare_settings) as bare, pytest.raises(Exception, match="401"):
        bare.coverage()
    configured = settings.model_copy(update={"api_url": api.url, "api_key": SecretStr(key)})
    with api_client(configured) as client:
        assert client.coverage().rows > 0


def test_digest_is_sha256_of_the_key() -> None:
    key = new_key()
    assert key.startswith("wp_") and len(key) > 40
    assert key_digest(key) == hashlib.sha256(key.encode()).hexdigest()


@pytest.mark.parametrize(
    ("header", "host"),
    [
        ("localhost:8000", "localhost"),
        ("[::1]:8000", "::1"),
        ("127.0.0.1", "127.0.0.1"),
        ("API.Example.org.", "api.example.org"),
    ],
)
def test_host_of(header: str, host: str) -> None:
    assert host_of(header) == host


def test_a_foreign_host_name_is_refused(live_api: LiveApi) -> None:
    # A page on evil.example that rebinds its name to 127.0.0.1 sends Host: evil.example.
    port = live_api.url.rsplit(":", 1)[1]
    with httpx.Client(base_url=live_api.url) as client:
        evil = client.get("/data", params=DAY, headers={"Host": f"evil.example:{port}"})
        assert evil.status_code == 400
        assert "WINDPIPE_API_ALLOWED_HOSTS" in evil.json()["detail"]
        assert client.get("/health", headers={"Host": "evil.example"}).status_code == 400
        for good in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"):
            assert client.get("/health", headers={"Host": good}).status_code == 200


def test_allowed_hosts_come_from_settings(settings: Settings, source_url: URL) -> None:
    custom = settings.model_copy(update={"api_allowed_hosts": ["api", "*.farm.example"]})
    app = create_app(custom, source_conninfo=libpq_conninfo(source_url))
    with serve(app) as api, httpx.Client(base_url=api.url) as client:
        assert client.get("/health", headers={"Host": "api:8000"}).status_code == 200
        assert client.get("/health", headers={"Host": "scada.farm.example"}).status_code == 200
        assert client.get("/health", headers={"Host": "localhost"}).status_code == 400


def test_every_answer_carries_security_headers(live_api: LiveApi) -> None:
    with httpx.Client(base_url=live_api.url) as client:
        answers = [
            client.get("/data", params=DAY),
            client.get("/data", params={"start": "x", "end": "y"}),
            client.get("/nowhere"),
            client.get("/health"),
            client.get("/docs"),
        ]
    for response in answers:
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_error_bodies_reveal_no_address_and_echo_little(settings: Settings, tmp_path) -> None:
    dead = f"postgresql://postgres@/windpipe_source?host={tmp_path}&port=5999"
    app = create_app(settings, source_conninfo=dead)
    with serve(app) as api, httpx.Client(base_url=api.url) as client:
        for response in (client.get("/data", params=DAY), client.get("/health")):
            assert response.status_code == 503
            assert str(tmp_path) not in response.text and "5999" not in response.text
            assert "socket" not in response.text
        huge = "2024-01-01" + "x" * 65_000
        response = client.get("/data", params={"start": huge, "end": "2024-01-02"})
        assert response.status_code == 422
        assert len(response.text) < 600
        assert "cut, 65,010 characters" in response.json()["detail"]
        many = client.get("/data", params=DAY | {"variables": "y" * 5000})
        assert many.status_code == 422 and len(many.text) < 600
