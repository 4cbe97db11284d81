import os
import sys

import pytest

# The interop helpers (check tool driver, librdkafka capture) are plain modules beside the tests.
sys.path.insert(0, os.path.dirname(__file__))

from broker import Broker, Tansu  # noqa: E402  (needs the path above)
from clients import unique_topic  # noqa: E402

# --------------------------------------------------------------------------------------------
# MiniBroker fixtures (test_broker_*.py). The broker executable comes from MINIBROKER; when it is
# not set, every test using these fixtures fails (never skips) saying so.
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def broker_overrides():
    """--override settings for the module's shared ``broker``; a test module redefines this
    fixture to run its broker with other settings."""
    return {}


@pytest.fixture(scope="module")
def broker(request, broker_overrides):
    """One broker shared by the tests of a module (tests use unique topic names)."""
    with Broker(overrides=broker_overrides, name=request.module.__name__) as b:
        yield b


@pytest.fixture
def broker_factory(request):
    """make(overrides=None, config=None, start=True) -> a new Broker of this test's own,
    stopped and removed after the test."""
    made = []

    def make(overrides=None, config=None, start=True):
        b = Broker(overrides=overrides, config=config, name=f"{request.node.name}-{len(made)}")
        made.append(b)
        return b.start() if start else b

    yield make
    errors = []
    for b in made:
        try:
            b.close()
        except BaseException as e:  # close every broker, report the first problem
            errors.append(e)
    if errors:
        raise errors[0]


@pytest.fixture(params=["minibroker", "tansu"])
def any_broker(request, broker):
    """The module's MiniBroker, and a Tansu of this test's own: our clients must work against another
    Kafka implementation too."""
    if request.param == "minibroker":
        yield broker
        return
    tansu = Tansu(name=request.node.name).start()
    yield tansu
    tansu.close()


@pytest.fixture
def fresh_broker(broker_factory):
    """A broker with default settings and an empty data directory, for this test only."""
    return broker_factory()


@pytest.fixture
def topic(request):
    """A topic name unique to this test (not created)."""
    return unique_topic(request.node.name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test's report carries the log tail of every broker that was running."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for b in Broker.active:
            if b.log_path not in str(report.longrepr):  # not already in the failure message
                report.sections.append((f"MiniBroker {b.name} log", b.log_tail()))
