"""SASL against MiniBroker: a broker with a PLAINTEXT and a SASL_PLAINTEXT listener, PLAIN users from the
listener's JAAS config and SCRAM users from --add-scram and AlterUserScramCredentials.

Proves that confluent-kafka (librdkafka), kafka-python, kcat and our own kfk produce, consume in a group
and use admin calls over SASL_PLAINTEXT with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512; that a wrong
password, an unknown user and a mechanism the broker does not enable are refused with
SASL_AUTHENTICATION_FAILED (or UNSUPPORTED_SASL_MECHANISM) and the broker goes on serving; that nothing
but ApiVersions and the SASL exchange is answered before authentication; that a failed attempt is
answered only after connection.failed.authentication.delay.ms; that a session ends at
connections.max.reauth.ms unless re-authenticated, and librdkafka's KIP-368 re-authentication keeps a
producer going across several session lifetimes; and that SCRAM users altered with the admin API
authenticate at once and are still there after a restart.
"""
import json
import os
import shutil
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (AdminClient, NewTopic, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialDeletion, UserScramCredentialUpsertion)

import kafka_raw as raw
from broker import HOST, Tansu
from clients import unique_topic
from sasl_broker import SaslBroker, sasl_conf

# (mechanism, user, password) that must authenticate.
GOOD = [("PLAIN", "alice", "alice-secret"), ("SCRAM-SHA-256", "bob", "bob-secret"), ("SCRAM-SHA-512", "bob", "bob-secret")]
KCAT = shutil.which("kcat") or "/usr/bin/kcat"

SASL_HANDSHAKE, SASL_AUTHENTICATE, METADATA, API_VERSIONS = 17, 36, 3, 18
SASL_AUTHENTICATION_FAILED, UNSUPPORTED_SASL_MECHANISM = 58, 33


@pytest.fixture(scope="module")
def sasl_broker():
    with SaslBroker(name="test_sasl") as b:
        yield b


def assert_serves(broker):
    """The plaintext listener still answers and the process is alive."""
    broker.assert_running()
    md = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=10)
    assert md.brokers


# -- librdkafka -----------------------------------------------------------------------------

@pytest.mark.parametrize("mechanism,user,password", GOOD)
def test_confluent_produces_consumes_in_a_group_and_administers(sasl_broker, mechanism, user, password):
    topic = unique_topic(f"sasl-{mechanism}")
    admin = AdminClient(sasl_conf(sasl_broker, mechanism, user, password))
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(timeout=20)
    assert topic in admin.list_topics(timeout=10).topics
    producer = Producer(sasl_conf(sasl_broker, mechanism, user, password, **{"enable.idempotence": True}))
    errors = []
    for i in range(20):
        producer.produce(topic, value=f"{user}-{i}".encode(), key=str(i).encode(), on_delivery=lambda e, m: errors.append(e))
    assert producer.flush(20) == 0
    assert errors == [None] * 20
    consumer = Consumer(sasl_conf(sasl_broker, mechanism, user, password, **{
        "group.id": f"g-{topic}", "auto.offset.reset": "earliest", "enable.auto.commit": False}))
    consumer.subscribe([topic])
    seen = []
    deadline = time.monotonic() + 30
    while len(seen) < 20 and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            seen.append(message.value().decode())
    consumer.commit(asynchronous=False)
    committed = consumer.committed(consumer.assignment(), timeout=10)
    consumer.close()
    assert sorted(seen) == sorted(f"{user}-{i}" for i in range(20))
    assert sum(tp.offset for tp in committed) == 20


@pytest.mark.parametrize("mechanism,user,password", [
    ("PLAIN", "alice", "wrong"), ("PLAIN", "nobody", "x"), ("SCRAM-SHA-256", "bob", "wrong"),
    ("SCRAM-SHA-512", "nobody", "x"), ("SCRAM-SHA-256", "alice", "alice-secret"), ("PLAIN", "bob", "bob-secret"),
])
def test_confluent_bad_credentials_are_refused_with_the_brokers_reason(sasl_broker, mechanism, user, password):
    errors = []
    producer = Producer(sasl_conf(sasl_broker, mechanism, user, password, **{
        "error_cb": errors.append, "message.timeout.ms": 3000}))
    producer.produce("never", value=b"x")
    producer.flush(5)
    auth = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
    assert auth, f"no authentication error among {errors}"
    assert "Authentication failed" in auth[0].str() or "invalid credentials" in auth[0].str()
    assert_serves(sasl_broker)


def test_a_mechanism_the_broker_does_not_enable_is_refused(broker_factory):
    b = SaslBroker(overrides={"sasl.enabled.mechanisms": "SCRAM-SHA-512"}, name="sasl-mechanisms")
    try:
        b.start()
        with raw.Connection(b.sasl_bootstrap) as conn:
            r = conn.request(SASL_HANDSHAKE, 1, raw.string("PLAIN"))
            assert r.i16() == UNSUPPORTED_SASL_MECHANISM
            assert r.array(lambda rd: rd.string()) == ["SCRAM-SHA-512"]
            with pytest.raises(raw.ConnectionClosed):
                conn.recv_frame()
        assert_serves(b)
    finally:
        b.close()


# -- the protocol, byte by byte ------------------------------------------------------------

def plain_token(user, password):
    return b"\0" + user.encode() + b"\0" + password.encode()


def authenticate_plain(conn, user, password, version=1):
    r = conn.request(SASL_HANDSHAKE, 1, raw.string("PLAIN"))
    assert r.i16() == 0
    r = conn.request(SASL_AUTHENTICATE, version, raw.bytes_(plain_token(user, password)))
    error, message, _ = r.i16(), r.string(), r.bytes_()
    lifetime = r.i64() if version >= 1 else None
    return error, message, lifetime


def test_only_api_versions_and_the_exchange_come_before_authentication(sasl_broker):
    with raw.Connection(sasl_broker.sasl_bootstrap) as conn:
        assert conn.request(API_VERSIONS, 0, b"").i16() == 0
        conn.send_request(METADATA, 1, raw.i32(-1))
        with pytest.raises(raw.ConnectionClosed):
            conn.recv_frame()
    with raw.Connection(sasl_broker.sasl_bootstrap) as conn:
        error, message, lifetime = authenticate_plain(conn, "alice", "alice-secret")
        assert (error, message, lifetime) == (0, None, 0)
        r = conn.request(METADATA, 1, raw.i32(-1))
        assert r.array(lambda rd: (rd.i32(), rd.string(), rd.i32(), rd.string())) == [(0, HOST, sasl_broker.sasl_port, None)]
    assert_serves(sasl_broker)


def test_frames_before_authentication_are_small(sasl_broker):
    """Kafka's sasl.server.max.receive.size (512 KB): a larger frame from an unauthenticated client closes
    the connection before the broker buffers it; after authentication the usual limit applies."""
    with raw.Connection(sasl_broker.sasl_bootstrap) as conn:
        conn.send_raw(raw.i32(600_000) + b"\0" * 1000)
        with pytest.raises(raw.ConnectionClosed):
            conn.recv_frame()
    with raw.Connection(sasl_broker.sasl_bootstrap) as conn:
        assert authenticate_plain(conn, "alice", "alice-secret")[0] == 0
        # A 600 KB Metadata request (20,000 topic names, none created: v4 lets it say so) is now read and answered.
        names = [f"no-such-topic-{i:015d}" for i in range(20_000)]
        body = raw.array(names, raw.string) + b"\x00"
        assert len(body) > 600_000
        answer = conn.request(METADATA, 4, body)
        assert answer.remaining() > 20_000
    assert_serves(sasl_broker)


def test_a_failed_attempt_is_answered_after_the_delay_then_closed(broker_factory):
    b = SaslBroker(overrides={"connection.failed.authentication.delay.ms": 700}, name="sasl-delay")
    try:
        b.start()
        with raw.Connection(b.sasl_bootstrap) as conn:
            started = time.monotonic()
            error, message, _ = authenticate_plain(conn, "alice", "guess")
            waited = time.monotonic() - started
            assert error == SASL_AUTHENTICATION_FAILED
            assert message == "Authentication failed: Invalid username or password"
            assert waited >= 0.6, f"answered after {waited:.3f}s"
            with pytest.raises(raw.ConnectionClosed):
                conn.recv_frame()
        assert_serves(b)
    finally:
        b.close()


def test_a_session_ends_at_its_lifetime_unless_renewed(broker_factory):
    b = SaslBroker(overrides={"connections.max.reauth.ms": 1500}, name="sasl-reauth")
    try:
        b.start()
        with raw.Connection(b.sasl_bootstrap) as conn:
            assert authenticate_plain(conn, "alice", "alice-secret") == (0, None, 1500)
            time.sleep(1.0)
            # Re-authenticating (same user, same mechanism) renews the session.
            assert authenticate_plain(conn, "alice", "alice-secret") == (0, None, 1500)
            time.sleep(1.0)
            conn.request(METADATA, 1, raw.i32(-1))
            time.sleep(0.8)
            conn.send_request(METADATA, 1, raw.i32(-1))
            with pytest.raises(raw.ConnectionClosed):
                conn.recv_frame()
        with raw.Connection(b.sasl_bootstrap) as conn:
            assert authenticate_plain(conn, "alice", "alice-secret")[0] == 0
            # Another principal on the same connection is refused.
            assert authenticate_plain(conn, "admin", "admin-secret")[0] == SASL_AUTHENTICATION_FAILED
        assert_serves(b)
    finally:
        b.close()


def test_librdkafka_reauthenticates_across_session_lifetimes(broker_factory):
    b = SaslBroker(overrides={"connections.max.reauth.ms": 2000}, name="sasl-kip368")
    try:
        b.start()
        topic = unique_topic("reauth")
        errors = []
        producer = Producer(sasl_conf(b, "SCRAM-SHA-512", "bob", "bob-secret", **{"linger.ms": 5}))
        delivered = []
        deadline = time.monotonic() + 7
        i = 0
        while time.monotonic() < deadline:
            producer.produce(topic, value=str(i).encode(), on_delivery=lambda e, m: (errors if e else delivered).append(e or m))
            producer.poll(0.05)
            i += 1
        assert producer.flush(20) == 0
        assert not errors
        assert len(delivered) == i and i > 50
        log = b.log_text()
        assert "authentication failed" not in log
    finally:
        b.close()


# -- kafka-python ---------------------------------------------------------------------------

@pytest.mark.parametrize("mechanism,user,password", GOOD[:3])
def test_kafka_python_produces_and_consumes(sasl_broker, mechanism, user, password):
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic as KNewTopic
    common = dict(bootstrap_servers=sasl_broker.sasl_bootstrap, security_protocol="SASL_PLAINTEXT",
                  sasl_mechanism=mechanism, sasl_plain_username=user, sasl_plain_password=password)
    topic = unique_topic(f"kp-{mechanism}")
    admin = KafkaAdminClient(**common)
    admin.create_topics([KNewTopic(topic, 1, 1)])
    assert topic in admin.list_topics()
    admin.close()
    producer = KafkaProducer(**common)
    for i in range(10):
        producer.send(topic, f"kp-{i}".encode()).get(timeout=20)
    producer.close()
    consumer = KafkaConsumer(topic, group_id=f"g-{topic}", auto_offset_reset="earliest", consumer_timeout_ms=8000, **common)
    seen = [m.value.decode() for _, m in zip(range(10), consumer)]
    consumer.commit()
    consumer.close()
    assert seen == [f"kp-{i}" for i in range(10)]


def test_kafka_python_wrong_password_is_an_authentication_error(sasl_broker, caplog):
    """kafka-python retries until its bootstrap timeout; what it got is error 58 with the broker's message."""
    import logging
    from kafka import KafkaProducer
    from kafka.errors import KafkaTimeoutError
    caplog.set_level(logging.ERROR, logger="kafka")
    with pytest.raises(KafkaTimeoutError):
        KafkaProducer(bootstrap_servers=sasl_broker.sasl_bootstrap, security_protocol="SASL_PLAINTEXT",
                      sasl_mechanism="SCRAM-SHA-256", sasl_plain_username="bob", sasl_plain_password="nope", max_block_ms=3000,
                      bootstrap_timeout_ms=3000)
    assert "[Error 58] SaslAuthenticationFailedError" in caplog.text
    assert "invalid credentials with SASL mechanism SCRAM-SHA-256" in caplog.text
    assert_serves(sasl_broker)


# -- kcat ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mechanism,user,password", GOOD[:3])
def test_kcat_produces_and_consumes(sasl_broker, mechanism, user, password):
    topic = unique_topic(f"kcat-{mechanism}")
    conf = ["-b", sasl_broker.sasl_bootstrap, "-X", "security.protocol=SASL_PLAINTEXT", "-X", f"sasl.mechanisms={mechanism}",
            "-X", f"sasl.username={user}", "-X", f"sasl.password={password}"]
    subprocess.run([KCAT, *conf, "-P", "-t", topic], input=b"one\ntwo\nthree\n", check=True, timeout=30)
    out = subprocess.run([KCAT, *conf, "-C", "-t", topic, "-o", "beginning", "-e", "-q"], capture_output=True, check=True, timeout=30)
    assert out.stdout.decode().split() == ["one", "two", "three"]
    bad = subprocess.run([KCAT, "-b", sasl_broker.sasl_bootstrap, "-X", "security.protocol=SASL_PLAINTEXT",
                          "-X", f"sasl.mechanisms={mechanism}", "-X", f"sasl.username={user}", "-X", "sasl.password=wrong",
                          "-L", "-m", "5"], capture_output=True, timeout=30)
    assert bad.returncode != 0
    assert b"Authentication failed" in bad.stderr or b"uthentication" in bad.stderr


# -- SCRAM users through the admin API --------------------------------------------------------

def test_scram_users_altered_by_admin_authenticate_and_survive_a_restart(broker_factory):
    b = SaslBroker(name="sasl-admin", scram=[])
    try:
        b.start()
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        futures = admin.alter_user_scram_credentials([
            UserScramCredentialUpsertion("carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), b"carol-secret"),
            UserScramCredentialUpsertion("carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 10000), b"carol-secret"),
        ])
        for future in futures.values():
            future.result(timeout=20)
        described = {u: f.result(timeout=20) for u, f in admin.describe_user_scram_credentials(["carol"]).items()}
        infos = sorted((i.mechanism.value, i.iterations) for i in described["carol"].scram_credential_infos)
        assert infos == [(ScramMechanism.SCRAM_SHA_256.value, 4096), (ScramMechanism.SCRAM_SHA_512.value, 10000)]

        def can_authenticate(mechanism):
            try:
                AdminClient(sasl_conf(b, mechanism, "carol", "carol-secret")).list_topics(timeout=5)
                return True
            except KafkaException:
                return False

        assert can_authenticate("SCRAM-SHA-256") and can_authenticate("SCRAM-SHA-512")
        b.restart()
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        assert can_authenticate("SCRAM-SHA-512")
        for future in admin.alter_user_scram_credentials([UserScramCredentialDeletion("carol", ScramMechanism.SCRAM_SHA_512)]).values():
            future.result(timeout=20)
        assert not can_authenticate("SCRAM-SHA-512")
        assert "invalid credentials with SASL mechanism SCRAM-SHA-512" in b.log_text()
        assert can_authenticate("SCRAM-SHA-256")
        assert "carol-secret" not in open(os.path.join(b.data_dir, "scram-credentials.json")).read()
    finally:
        b.close()


# -- our own clients --------------------------------------------------------------------------

def kfk(broker, env, *args, stdin=None):
    return subprocess.run([os.environ["KFK"], *args, "--bootstrap-server", broker.sasl_bootstrap],
                          input=stdin, capture_output=True, timeout=60, env={**os.environ, **env})


@pytest.mark.parametrize("mechanism,user,password", GOOD)
def test_kfk_over_sasl(sasl_broker, mechanism, user, password):
    env = {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": mechanism,
           "KAFKA_SASL_USERNAME": user, "KAFKA_SASL_PASSWORD": password}
    topic = unique_topic(f"kfk-{mechanism}")
    created = kfk(sasl_broker, env, "topics", "create", topic)
    assert created.returncode == 0, created.stderr
    produced = kfk(sasl_broker, env, "produce", topic, stdin=b"a\nb\nc\n")
    assert produced.returncode == 0, produced.stderr
    consumed = kfk(sasl_broker, env, "consume", topic, "--group", f"g-{topic}", "--from-beginning", "--max-messages", "3")
    assert consumed.returncode == 0, consumed.stderr
    assert consumed.stdout.decode().split() == ["a", "b", "c"]


def test_kfk_reports_a_refused_login_in_one_line(sasl_broker, tmp_path):
    config = tmp_path / "client.properties"
    config.write_text("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-256\n"
                      'sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="bob" password="wrong";\n')
    out = kfk(sasl_broker, {}, "topics", "list", "--command-config", str(config))
    assert out.returncode == 1
    assert out.stderr.decode().strip() == (f"kfk: authentication with {sasl_broker.sasl_bootstrap} as bob failed: "
                                           "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256")
    unknown = kfk(sasl_broker, {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "GSSAPI",
                                "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"}, "topics", "list")
    assert unknown.returncode == 1 and b"sasl.mechanism 'GSSAPI'" in unknown.stderr
    assert_serves(sasl_broker)


def test_kfk_manages_scram_users(broker_factory):
    b = SaslBroker(name="sasl-kfk-users", scram=[])
    try:
        b.start()
        admin = ["--bootstrap-server", b.bootstrap]

        def users(*args, stdin=None):
            return subprocess.run([os.environ["KFK"], "users", *args, *admin], input=stdin, capture_output=True, timeout=60)

        made = users("set", "dora", "--mechanism", "SCRAM-SHA-512", "--iterations", "8192", stdin=b"dora-secret\n")
        assert made.returncode == 0, made.stderr
        assert users("set", "dora", stdin=b"dora-secret\n").returncode == 0
        listed = users("list", "--json")
        assert listed.returncode == 0, listed.stderr
        assert sorted((r["user"], r["mechanism"], r["iterations"]) for r in json.loads(listed.stdout)) == [
            ("dora", "SCRAM-SHA-256", 4096), ("dora", "SCRAM-SHA-512", 8192)]
        env = {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
               "KAFKA_SASL_USERNAME": "dora", "KAFKA_SASL_PASSWORD": "dora-secret"}
        assert kfk(b, env, "topics", "list").returncode == 0
        assert users("delete", "dora", "--mechanism", "SCRAM-SHA-512").returncode == 0
        refused = kfk(b, env, "topics", "list")
        assert refused.returncode == 1 and b"invalid credentials" in refused.stderr
        missing = users("delete", "dora", "--mechanism", "SCRAM-SHA-512")
        assert missing.returncode == 1
        assert missing.stderr.decode().strip() == ("kfk: altering the SCRAM credentials of dora failed: RESOURCE_NOT_FOUND (91): "
                                                   "Attempt to delete a user credential that does not exist")
        no_password = users("set", "erin", stdin=b"")
        assert no_password.returncode != 0 and b"stdin" in no_password.stderr
    finally:
        b.close()


def test_services_take_their_credentials_from_the_environment(sasl_broker):
    topic = unique_topic("svc-sasl")
    env = {**os.environ, "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
           "KAFKA_SASL_USERNAME": "bob", "KAFKA_SASL_PASSWORD": "bob-secret"}
    sent = subprocess.run([os.environ["USER_EVENTS"], "submit", "25", "--topic", topic, "--bootstrap-server", sasl_broker.sasl_bootstrap],
                          capture_output=True, timeout=60, env=env)
    assert sent.returncode == 0, sent.stderr
    consumer = Consumer(sasl_conf(sasl_broker, "SCRAM-SHA-256", "bob", "bob-secret", **{
        "group.id": f"g-{topic}", "auto.offset.reset": "earliest"}))
    consumer.subscribe([topic])
    users = set()
    deadline = time.monotonic() + 30
    while len(users) < 25 and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            users.add(json.loads(message.value())["id"])
    consumer.close()
    assert len(users) == 25
    refused = subprocess.run([os.environ["USER_EVENTS"], "submit", "1", "--topic", topic, "--bootstrap-server", sasl_broker.sasl_bootstrap,
                              "--delivery-timeout-ms", "5000"],
                             capture_output=True, timeout=60, env={**env, "KAFKA_SASL_PASSWORD": "wrong"})
    assert refused.returncode != 0
    assert b"invalid credentials" in refused.stderr + refused.stdout


class AuthenticatingTansu(Tansu):
    """Tansu requiring SASL on its one listener. Its users live in its storage, and `tansu user create`
    cannot reach a broker that requires authentication, so with in-memory storage no user can exist:
    what is checked is that our clients speak its SCRAM exchange and report its refusal."""

    def command(self):
        return super().command() + ["--authentication"]


def test_our_clients_speak_tansus_scram_and_report_its_refusal(request):
    tansu = AuthenticatingTansu(name=request.node.name).start()
    try:
        env = {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
               "KAFKA_SASL_USERNAME": "nobody", "KAFKA_SASL_PASSWORD": "x"}
        out = subprocess.run([os.environ["KFK"], "topics", "list", "--bootstrap-server", tansu.bootstrap], capture_output=True,
                             timeout=60, env={**os.environ, **env})
        assert out.returncode == 1
        assert out.stderr.decode().strip() == f"kfk: authentication with {tansu.bootstrap} failed: SCRAM authentication failed: unknown-user"
        # Without SASL, Tansu closes the connection: reported, not hung.
        plain = subprocess.run([os.environ["KFK"], "topics", "list", "--bootstrap-server", tansu.bootstrap], capture_output=True, timeout=60)
        assert plain.returncode == 1 and b"closed the connection" in plain.stderr
    finally:
        tansu.close()
