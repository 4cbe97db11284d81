"""The services' OpenAPI documents: valid (openapi-spec-validator), served as committed, and a
property-based fuzzer run from them (schemathesis) against the live services on MiniBroker finds no
5xx, no status, content type or header the document does not list, and no body that breaks its
schemas; requests that break the document are refused (4xx)."""

import subprocess
import uuid
from xml.etree import ElementTree

import pytest
import yaml
from openapi_spec_validator import validate

from services import assistance, request, user_events_api, user_stats
from test_producer import create_topic

DOCUMENTS = ["Services/OpenAPI/user-events-api.yaml", "Services/OpenAPI/assistance.yaml"]


@pytest.mark.parametrize("path", DOCUMENTS)
def test_the_document_is_valid_openapi(path):
    validate(yaml.safe_load(open(path)))


def schemathesis(document, url, tmp_path, operations):
    """Runs schemathesis's default checks (no 5xx, statuses, media types, headers and bodies the document
    lists, refused invalid requests, 405 for undeclared methods) and asserts from its JUnit report that
    every operation was tested and nothing failed."""
    result = subprocess.run(["st", "run", document, "--url", url, "--max-examples", "30", "--seed", "20261204",
                             "--request-timeout", "30", "--workers", "1", "--warnings", "off",
                             "--report", "junit", "--report-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    [report] = list(tmp_path.glob("junit-*.xml"))
    suite = ElementTree.parse(report).getroot()
    assert suite.get("failures") == "0" and suite.get("errors") == "0", report.read_text()
    tested = {case.get("name") for case in suite.iter("testcase")}
    assert set(operations) <= tested, (operations, tested)


def test_schemathesis_finds_nothing_in_the_user_events_api(broker, tmp_path):
    topic = f"users-{uuid.uuid4().hex[:6]}"
    create_topic(broker.bootstrap, topic, 3)
    stats = user_stats(broker, topic, tmp_path / "stats.sqlite", tmp_path)
    # Enough room that generated submissions are never refused as too many at once (a documented 503).
    api = user_events_api(broker.bootstrap, topic, stats.url, tmp_path, "--max-running", "1000")
    try:
        schemathesis(DOCUMENTS[0], api.url, tmp_path,
                     ["POST /submit/{n}", "GET /submissions/{id}", "GET /report", "GET /health"])
        assert request("GET", api.url + "/health")[0] == 200
    finally:
        api.stop()
        stats.stop()


def test_schemathesis_finds_nothing_in_the_assistance_service(broker, tmp_path):
    create_topic(broker.bootstrap, "sales", 1)
    service = assistance(broker.bootstrap, tmp_path)
    try:
        schemathesis(DOCUMENTS[1], service.url, tmp_path, ["POST /assistance", "GET /health"])
    finally:
        service.stop()
