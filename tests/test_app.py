"""The app as a whole: entry redirect, health, metrics, OpenAPI."""

from __future__ import annotations

from tests.helpers import api_client


def test_root_without_a_session_redirects_to_the_login_page(session):
    client = api_client(session, roles=None)

    response = client.get("/", follow_redirects=False)
    login = client.get(response.headers["location"])

    assert response.status_code in (302, 303, 307) and response.headers["location"] == "/login"
    assert login.status_code == 200 and "登入 / Log in" in login.text


def test_healthz_checks_the_database(session):
    response = api_client(session, roles=None).get("/healthz")

    body = response.json()
    assert response.status_code == 200 and {"status": body["status"], "database": body["database"]} == {
        "status": "ok", "database": "ok"}  # and the workers' heartbeats: tests/web/test_health.py


def test_metrics_are_prometheus_text_and_count_requests(session):
    client = api_client(session, roles=None)
    client.get("/healthz")

    body = client.get("/metrics").text

    assert 'toolkit_http_requests_total{method="GET",route="/healthz",status="200"}' in body


def test_every_response_carries_a_request_id(session):
    response = api_client(session, roles=None).get("/healthz", headers={"X-Request-ID": "abc123"})

    assert response.headers["x-request-id"] == "abc123"


def test_openapi_has_readable_operation_ids_and_bearer_auth(session):
    spec = api_client(session, roles=None).get("/openapi.json").json()

    operation_ids = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert {"contacts-list_contacts", "contacts-create_contact", "consent-grant_consent",
            "consent-withdraw_consent", "consent-consent_history"} <= operation_ids
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert not any(path.startswith("/admin") or path == "/login" for path in spec["paths"])


def test_unknown_api_path_is_json_404(session):
    response = api_client(session, roles=["agent"]).get("/api/v1/nothing-here")

    assert response.status_code == 404 and response.json()["detail"] == "Not Found"
