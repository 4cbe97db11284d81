"""TLS against MiniBroker: SSL and SASL_SSL listeners on swift-nio-ssl, certificates made by the tests
(tls_broker.Certificates), the broker's key encrypted (ssl.key.password).

Proves that confluent-kafka (librdkafka), kafka-python, kcat and our own kfk and services produce,
consume in a group and use admin calls over SSL (with and without a client certificate) and over
SASL_SSL with PLAIN and SCRAM; that a client certificate names the principal through
ssl.principal.mapping.rules, and ACLs apply to it; that a listener requiring client certificates refuses
a client without one or with one from another CA; that clients refuse a broker certificate they do not
trust or that names another host; that plaintext sent to a TLS port is refused and the broker goes on;
and that a broker whose keystore cannot be read does not start, naming the key.
"""
import os
import shutil
import socket
import ssl
import struct
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient, NewTopic,
                                   ResourcePatternType, ResourceType)

from broker import HOST, Broker, broker_path, free_port
from clients import unique_topic
from tls_broker import KEY_PASSWORD, STRICT_MAPPING_RULES, Certificates, TlsBroker, sasl_ssl_conf, ssl_conf

KCAT = shutil.which("kcat") or "/usr/bin/kcat"
SASL_GOOD = [("PLAIN", "alice", "alice-secret"), ("SCRAM-SHA-256", "bob", "bob-secret"), ("SCRAM-SHA-512", "bob", "bob-secret")]


@pytest.fixture(scope="module")
def certs():
    made = Certificates()
    yield made
    shutil.rmtree(made.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def tls_broker(certs):
    # ACLs on: a topic with ACLs is closed to everyone else, any other resource stays open.
    with TlsBroker(certs, name="test_tls", overrides={
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "true"}) as b:
        yield b


def assert_serves(broker):
    broker.assert_running()
    assert AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=10).brokers


def produce_and_consume(conf, topic, count=200, value_size=2000):
    """Produces ``count`` records (large enough to span TLS records), then reads them back in a group."""
    producer = Producer({**conf, "enable.idempotence": True, "linger.ms": 5})
    for i in range(count):
        producer.produce(topic, key=str(i).encode(), value=(f"{i}:".encode() + b"x" * value_size))
    assert producer.flush(30) == 0
    consumer = Consumer({**conf, "group.id": f"g-{topic}", "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    seen = []
    deadline = time.monotonic() + 30
    while len(seen) < count and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            seen.append(int(message.value().split(b":")[0]))
    consumer.commit(asynchronous=False)
    committed = consumer.committed([TopicPartition(topic, 0)], timeout=10)
    consumer.close()
    assert seen == list(range(count))
    assert committed[0].offset == count


def refused_within(conf, seconds=3):
    """The errors librdkafka reports for a producer that cannot get a connection up; nothing is delivered."""
    errors, reports = [], []
    producer = Producer({**conf, "error_cb": errors.append, "message.timeout.ms": seconds * 1000, "reconnect.backoff.max.ms": 500})
    producer.produce("never", value=b"x", on_delivery=lambda err, msg: reports.append(err))
    producer.flush(seconds + 5)
    assert reports and reports[0] is not None, "a record was delivered"
    assert errors, "no error reported"
    return errors


# -- librdkafka ----------------------------------------------------------------------------

def test_confluent_over_ssl_produces_consumes_and_administers(tls_broker):
    topic = unique_topic("ssl")
    admin = AdminClient(ssl_conf(tls_broker))
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=20)
    produce_and_consume(ssl_conf(tls_broker), topic)


@pytest.mark.parametrize("mechanism,user,password", SASL_GOOD)
def test_confluent_over_sasl_ssl(tls_broker, mechanism, user, password):
    topic = unique_topic(f"sasl-ssl-{mechanism}")
    admin = AdminClient(sasl_ssl_conf(tls_broker, mechanism, user, password))  # kept until its future resolves
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=20)
    produce_and_consume(sasl_ssl_conf(tls_broker, mechanism, user, password), topic, count=50)


def test_sasl_ssl_refuses_a_wrong_password(tls_broker):
    errors = refused_within(sasl_ssl_conf(tls_broker, "SCRAM-SHA-512", "bob", "wrong"))
    assert any(e.code() == KafkaError._AUTHENTICATION and "invalid credentials" in e.str() for e in errors), errors
    assert_serves(tls_broker)


def test_a_client_certificate_is_the_principal_and_acls_apply_to_it(tls_broker, certs):
    """CN=Alice,OU=Eng,... is User:alice by the mapping rules: she may write the topic her ACL names;
    an anonymous TLS client and carol (OU=Ops: DEFAULT keeps her whole subject) may not."""
    topic = unique_topic("mtls-acl")
    admin = AdminClient({"bootstrap.servers": tls_broker.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=20)
    bindings = [AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:alice", "*", op, AclPermissionType.ALLOW)
                for op in (AclOperation.WRITE, AclOperation.READ, AclOperation.DESCRIBE)]
    bindings.append(AclBinding(ResourceType.GROUP, f"g-{topic}", ResourcePatternType.LITERAL, "User:alice", "*",
                               AclOperation.READ, AclPermissionType.ALLOW))
    for future in admin.create_acls(bindings).values():
        future.result(timeout=20)
    produce_and_consume(ssl_conf(tls_broker, "MTLS", certs.alice_cert, certs.alice_key), topic, count=20)
    for conf in [ssl_conf(tls_broker), ssl_conf(tls_broker, "MTLS", certs.carol_cert, certs.carol_key)]:
        producer = Producer({**conf, "message.timeout.ms": 5000})
        reports = []
        producer.produce(topic, b"not allowed", on_delivery=lambda err, msg: reports.append(err))
        producer.flush(15)
        assert reports and reports[0] is not None and reports[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, reports
    # carol's principal is her whole subject, in RFC 2253's order (the broker logs it at debug; the ACL
    # written for it is what proves it).
    carol = "User:CN=carol,OU=Ops,O=Example"
    admin.create_acls([AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, carol, "*",
                                  AclOperation.WRITE, AclPermissionType.ALLOW)])[AclBinding(
        ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, carol, "*", AclOperation.WRITE, AclPermissionType.ALLOW)].result(timeout=20)
    producer = Producer({**ssl_conf(tls_broker, "MTLS", certs.carol_cert, certs.carol_key), "message.timeout.ms": 5000})
    reports = []
    producer.produce(topic, b"carol may now", on_delivery=lambda err, msg: reports.append(err))
    producer.flush(15)
    assert reports == [None]
    # On the listener that only requests certificates alice is alice too; on SASL_SSL the principal is
    # SASL's, whatever certificate comes with it (bob, refused on alice's topic).
    producer = Producer({**ssl_conf(tls_broker, "SSL", certs.alice_cert, certs.alice_key), "message.timeout.ms": 5000})
    reports = []
    producer.produce(topic, b"alice on SSL", on_delivery=lambda err, msg: reports.append(err))
    producer.flush(15)
    assert reports == [None]
    producer = Producer({**sasl_ssl_conf(tls_broker, "SCRAM-SHA-256", "bob", "bob-secret", **{
        "ssl.certificate.location": certs.alice_cert, "ssl.key.location": certs.alice_key}), "message.timeout.ms": 5000})
    reports = []
    producer.produce(topic, b"bob with alice's certificate", on_delivery=lambda err, msg: reports.append(err))
    producer.flush(15)
    assert reports and reports[0] is not None and reports[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, reports


def assert_tls_refusal(errors):
    assert any("SSL" in e.str() or "ssl" in e.str() for e in errors), [e.str() for e in errors]


def test_a_listener_requiring_certificates_refuses_none_and_strangers(tls_broker, certs):
    for conf in [ssl_conf(tls_broker, "MTLS"), ssl_conf(tls_broker, "MTLS", certs.mallory_cert, certs.mallory_key)]:
        assert_tls_refusal(refused_within(conf))
    assert_serves(tls_broker)
    # the requested listener takes mallory's certificate no more than the required one does
    assert_tls_refusal(refused_within(ssl_conf(tls_broker, "SSL", certs.mallory_cert, certs.mallory_key)))
    assert_serves(tls_broker)


def test_a_certificate_no_rule_maps_is_refused_before_any_request_is_served(certs):
    """Without DEFAULT in ssl.principal.mapping.rules carol (OU=Ops) has no principal: her connection
    closes after the handshake, and requests she sent right behind it are not answered as anyone."""
    with TlsBroker(certs, name="strict-rules", overrides={"ssl.principal.mapping.rules": STRICT_MAPPING_RULES}) as b:
        def exchange(cert, key):
            context = ssl.create_default_context(cafile=certs.ca)
            context.load_cert_chain(cert, key)
            with socket.create_connection((HOST, b.mtls_port), timeout=10) as raw:
                with context.wrap_socket(raw, server_hostname="localhost") as tls:
                    body = struct.pack(">hhih", 18, 0, 7, 4) + b"test"
                    tls.sendall(struct.pack(">i", len(body)) + body)
                    answer = b""
                    try:
                        while len(answer) < 4 or len(answer) < 4 + struct.unpack(">i", answer[:4])[0]:
                            chunk = tls.recv(65536)
                            if not chunk:
                                break
                            answer += chunk
                    except (ssl.SSLError, ConnectionResetError):
                        pass
                    return answer
        answered = exchange(certs.alice_cert, certs.alice_key)
        assert len(answered) > 8 and struct.unpack(">i", answered[4:8])[0] == 7, answered[:16]
        assert exchange(certs.carol_cert, certs.carol_key) == b""
        assert "no ssl.principal.mapping.rules rule applies to CN=carol,OU=Ops,O=Example" in b.log_text()
        b.assert_running()


def test_clients_refuse_a_broker_they_do_not_trust(tls_broker, certs):
    errors = refused_within(ssl_conf(tls_broker, ca=certs.rogue_ca))
    assert any("certificate verify failed" in e.str() for e in errors), errors
    assert_serves(tls_broker)


def test_plaintext_to_a_tls_port_is_refused_and_the_broker_goes_on(tls_broker):
    api_versions_v0 = struct.pack(">ihhi", 0, 18, 0, 7) + struct.pack(">h", 4) + b"test"
    frame = struct.pack(">i", len(api_versions_v0) - 4) + api_versions_v0[4:]
    for port in (tls_broker.ssl_port, tls_broker.sasl_ssl_port):
        with socket.create_connection((HOST, port), timeout=10) as s:
            s.sendall(frame)
            answer = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                answer += chunk
        # Nothing Kafka comes back: at most a TLS alert record (content type 21), then the close.
        assert answer == b"" or answer[0] == 21, answer[:16]
    # and librdkafka speaking plaintext to it gets no further
    refused_within({"bootstrap.servers": tls_broker.address("SSL")}, seconds=5)
    assert_serves(tls_broker)


# -- kafka-python and kcat ------------------------------------------------------------------

def test_kafka_python_over_ssl_with_a_certificate_and_over_sasl_ssl(tls_broker, certs):
    from kafka import KafkaConsumer, KafkaProducer
    topic = unique_topic("kp-tls")
    for common in [dict(bootstrap_servers=tls_broker.address("MTLS"), security_protocol="SSL", ssl_cafile=certs.ca,
                        ssl_certfile=certs.alice_cert, ssl_keyfile=certs.alice_key),
                   dict(bootstrap_servers=tls_broker.address("SASL_SSL"), security_protocol="SASL_SSL", ssl_cafile=certs.ca,
                        sasl_mechanism="SCRAM-SHA-512", sasl_plain_username="bob", sasl_plain_password="bob-secret")]:
        name = f"{topic}-{common['security_protocol']}"
        producer = KafkaProducer(**common)
        for i in range(10):
            producer.send(name, f"kp-{i}".encode() * 300).get(timeout=20)
        producer.close()
        consumer = KafkaConsumer(name, group_id=f"g-{name}", auto_offset_reset="earliest", consumer_timeout_ms=8000, **common)
        seen = [m.value for _, m in zip(range(10), consumer)]
        consumer.close()
        assert seen == [f"kp-{i}".encode() * 300 for i in range(10)]


def test_kcat_over_ssl_and_sasl_ssl(tls_broker, certs):
    topic = unique_topic("kcat-tls")
    for suffix, conf in [("ssl", ["-b", tls_broker.address("MTLS"), "-X", "security.protocol=ssl", "-X", f"ssl.ca.location={certs.ca}",
                  "-X", f"ssl.certificate.location={certs.alice_cert}", "-X", f"ssl.key.location={certs.alice_key}"]),
                 ("sasl-ssl", ["-b", tls_broker.address("SASL_SSL"), "-X", "security.protocol=sasl_ssl", "-X", f"ssl.ca.location={certs.ca}",
                  "-X", "sasl.mechanisms=SCRAM-SHA-256", "-X", "sasl.username=bob", "-X", "sasl.password=bob-secret"])]:
        name = f"{topic}-{suffix}"
        subprocess.run([KCAT, *conf, "-P", "-t", name], input=b"one\ntwo\nthree\n", check=True, timeout=30)
        out = subprocess.run([KCAT, *conf, "-C", "-t", name, "-o", "beginning", "-e", "-q"], capture_output=True, check=True, timeout=30)
        assert out.stdout.split() == [b"one", b"two", b"three"]


# -- our own clients --------------------------------------------------------------------------

def kfk(address, env, *args, stdin=None):
    return subprocess.run([os.environ["KFK"], *args, "--bootstrap-server", address],
                          input=stdin, capture_output=True, timeout=60, env={**os.environ, **env})


def test_kfk_over_ssl_with_a_certificate_and_over_sasl_ssl(tls_broker, certs, tmp_path):
    config = tmp_path / "client.properties"
    config.write_text(f"security.protocol=SSL\nssl.ca.location={certs.ca}\nssl.certificate.location={certs.alice_cert}\n"
                      f"ssl.key.location={certs.alice_key}\n")
    sasl_env = {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256", "KAFKA_SASL_USERNAME": "bob",
                "KAFKA_SASL_PASSWORD": "bob-secret", "KAFKA_SSL_CA_LOCATION": certs.ca}
    for address, env, extra in [(tls_broker.address("MTLS"), {}, ["--command-config", str(config)]),
                                (tls_broker.address("SASL_SSL"), sasl_env, [])]:
        topic = unique_topic("kfk-tls")
        created = kfk(address, env, "topics", "create", topic, *extra)
        assert created.returncode == 0, created.stderr
        lines = b"".join(b"%d-" % i + b"y" * 3000 + b"\n" for i in range(100))
        produced = kfk(address, env, "produce", topic, *extra, stdin=lines)
        assert produced.returncode == 0, produced.stderr
        consumed = kfk(address, env, "consume", topic, "--group", f"g-{topic}", "--from-beginning", "--max-messages", "100", *extra)
        assert consumed.returncode == 0, consumed.stderr
        assert consumed.stdout.split(b"\n")[:100] == lines.split(b"\n")[:100]


def test_kfk_refuses_an_untrusted_broker_and_a_plaintext_port_in_one_line(tls_broker, certs):
    untrusted = kfk(tls_broker.address("SSL"), {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_LOCATION": certs.rogue_ca}, "topics", "list")
    assert untrusted.returncode == 1
    stderr = untrusted.stderr.decode().strip()
    assert stderr.startswith(f"kfk: TLS handshake with broker {tls_broker.address('SSL')} failed") and stderr.endswith("CERTIFICATE_VERIFY_FAILED"), stderr
    assert len(stderr.splitlines()) == 1
    missing = kfk(tls_broker.address("SSL"), {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_LOCATION": "/nonexistent/ca.pem"}, "topics", "list")
    assert missing.returncode == 1 and b"ssl.ca.location /nonexistent/ca.pem" in missing.stderr
    assert_serves(tls_broker)


def test_hostname_verification_is_on_by_default(certs):
    """A broker whose certificate names another host: refused unless ssl.endpoint.identification.algorithm=none."""
    with TlsBroker(certs, name="wronghost", keystore=certs.wronghost_keystore, key_password=None) as b:
        env = {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_LOCATION": certs.ca}
        refused = kfk(b.address("SSL"), env, "topics", "list")
        assert refused.returncode == 1 and b"its certificate does not name 127.0.0.1" in refused.stderr, refused.stderr
        accepted = kfk(b.address("SSL"), {**env, "KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM": "none"}, "topics", "list")
        assert accepted.returncode == 0, accepted.stderr
        # librdkafka checks the same way
        errors = refused_within(ssl_conf(b))
        assert errors
        AdminClient(ssl_conf(b, **{"ssl.endpoint.identification.algorithm": "none"})).list_topics(timeout=10)


def test_services_take_tls_settings_from_the_environment_or_a_command_config(tls_broker, certs, tmp_path):
    topic = unique_topic("svc-tls")
    env = {**os.environ, "KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_USERNAME": "bob",
           "KAFKA_SASL_PASSWORD": "bob-secret", "KAFKA_SSL_CA_LOCATION": certs.ca}
    sent = subprocess.run([os.environ["USER_EVENTS"], "submit", "25", "--topic", topic, "--bootstrap-server", tls_broker.address("SASL_SSL")],
                          capture_output=True, timeout=60, env=env)
    assert sent.returncode == 0, sent.stderr
    consumer = Consumer(sasl_ssl_conf(tls_broker, "SCRAM-SHA-512", "bob", "bob-secret", **{"group.id": f"g-{topic}", "auto.offset.reset": "earliest"}))
    consumer.subscribe([topic])
    count = 0
    deadline = time.monotonic() + 30
    while count < 25 and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            count += 1
    consumer.close()
    assert count == 25
    # The same settings from a --command-config file, here a client certificate on the listener requiring one.
    config = tmp_path / "client.properties"
    config.write_text(f"security.protocol=SSL\nssl.ca.location={certs.ca}\nssl.certificate.location={certs.alice_cert}\n"
                      f"ssl.key.location={certs.alice_key}\n")
    plain_env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_SASL", "KAFKA_SSL", "KAFKA_SECURITY"))}
    sent = subprocess.run([os.environ["USER_EVENTS"], "submit", "5", "--topic", topic, "--bootstrap-server", tls_broker.address("MTLS"),
                           "--command-config", str(config)], capture_output=True, timeout=60, env=plain_env)
    assert sent.returncode == 0, sent.stderr
    unreadable = subprocess.run([os.environ["USER_EVENTS"], "submit", "1", "--topic", topic, "--bootstrap-server", tls_broker.address("MTLS"),
                                 "--command-config", str(tmp_path / "missing.properties")], capture_output=True, timeout=60, env=plain_env)
    assert unreadable.returncode != 0 and b"cannot read --command-config" in unreadable.stderr + unreadable.stdout


# -- broker configuration ---------------------------------------------------------------------

def start_refused(*overrides):
    data = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"tls-refused-{os.getpid()}-{time.monotonic_ns()}")
    cmd = [broker_path(), "--data-dir", data]
    for override in overrides:
        cmd += ["--override", override]
    out = subprocess.run(cmd, capture_output=True, timeout=30)
    shutil.rmtree(data, ignore_errors=True)
    assert out.returncode != 0
    return out.stderr.decode() + out.stdout.decode()


def test_a_tls_listener_without_a_readable_keystore_does_not_start(certs):
    listener = f"listeners=SSL://{HOST}:{free_port()}"
    assert "ssl.keystore.location" in start_refused(listener)
    assert "cannot read /nonexistent.pem" in start_refused(listener, "ssl.keystore.location=/nonexistent.pem")
    wrong_password = start_refused(listener, f"ssl.keystore.location={certs.keystore}", "ssl.key.password=not-it-4711")
    assert "ssl.keystore.location" in wrong_password and "ssl.key.password" in wrong_password, wrong_password
    assert "not-it-4711" not in wrong_password
    assert "PEM" in start_refused(listener, "ssl.keystore.type=JKS")
    assert "TLSv1.1" in start_refused(listener, f"ssl.keystore.location={certs.keystore}", f"ssl.key.password={KEY_PASSWORD}",
                                      "ssl.enabled.protocols=TLSv1.1")
    assert "ssl.principal.mapping.rules" in start_refused(listener, f"ssl.keystore.location={certs.keystore}",
                                                          f"ssl.key.password={KEY_PASSWORD}", "ssl.principal.mapping.rules=RULE:^CN=(.*$/$1/")
