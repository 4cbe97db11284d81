"""Test certificates made here with openssl (nothing secret is committed), and a MiniBroker with four
listeners: PLAINTEXT on ``port`` (where the harness waits), SSL with ssl.client.auth=requested, MTLS (an
SSL listener requiring a client certificate) and SASL_SSL with the PLAIN and SCRAM users of
``sasl_broker``. The broker's key is encrypted (ssl.key.password); client certificates map to principals
by ssl.principal.mapping.rules (``CN=alice,OU=Eng,...`` is ``User:alice``)."""
import os
import subprocess
import tempfile

from broker import HOST, Broker, free_port
from sasl_broker import PLAIN_JAAS, SCRAM_USERS

KEY_PASSWORD = "keystore-secret"
MAPPING_RULES = "RULE:^CN=([a-zA-Z]+),OU=Eng,.*$/$1/L,DEFAULT"
# Without DEFAULT: a subject outside OU=Eng has no principal and its connection is refused.
STRICT_MAPPING_RULES = "RULE:^CN=([a-zA-Z]+),OU=Eng,.*$/$1/L"


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class Certificates:
    """A CA, the broker's certificate (127.0.0.1 and localhost), client certificates signed by the CA,
    and one signed by a CA nobody trusts. Paths are attributes; EC P-256 keys keep it fast."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="minibroker-tls-")
        d = self.dir
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=MiniBroker Test CA", cwd=d)
        _openssl("req", "-x509", *ec, "-keyout", "rogue-ca.key", "-out", "rogue-ca.pem", "-days", "2", "-subj", "/CN=Rogue CA", cwd=d)
        self.ca = os.path.join(d, "ca.pem")
        self.rogue_ca = os.path.join(d, "rogue-ca.pem")
        # The broker: its key encrypted (PKCS#8, as Kafka's PEM keystores want), key and chain in one file.
        self._leaf("server", "/CN=minibroker", "subjectAltName=IP:127.0.0.1,DNS:localhost")
        _openssl("pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", "server.key", "-out", "server-enc.key",
                 "-passout", f"pass:{KEY_PASSWORD}", cwd=d)
        self.keystore = os.path.join(d, "server-keystore.pem")
        with open(self.keystore, "w") as f:
            f.write(open(os.path.join(d, "server-enc.key")).read() + open(os.path.join(d, "server.pem")).read())
        # A broker certificate naming another host: hostname verification must refuse it.
        self._leaf("wronghost", "/CN=elsewhere", "subjectAltName=DNS:elsewhere.example")
        self.wronghost_keystore = os.path.join(d, "wronghost-keystore.pem")
        with open(self.wronghost_keystore, "w") as f:
            f.write(open(os.path.join(d, "wronghost.key")).read() + open(os.path.join(d, "wronghost.pem")).read())
        self.alice_cert, self.alice_key = self._leaf("alice", "/C=US/O=Example/OU=Eng/CN=Alice", "extendedKeyUsage=clientAuth")
        self.carol_cert, self.carol_key = self._leaf("carol", "/O=Example/OU=Ops/CN=carol", "extendedKeyUsage=clientAuth")
        self.mallory_cert, self.mallory_key = self._leaf("mallory", "/O=Example/OU=Eng/CN=mallory", "extendedKeyUsage=clientAuth",
                                                         ca="rogue-ca")

    def _leaf(self, name, subject, extension, ca="ca"):
        d = self.dir
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", f"{name}.key",
                 "-out", f"{name}.csr", "-subj", subject, cwd=d)
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(extension + "\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)
        return os.path.join(d, f"{name}.pem"), os.path.join(d, f"{name}.key")


class TlsBroker(Broker):
    def __init__(self, certs, overrides=None, name="tls", scram=SCRAM_USERS, keystore=None, key_password=KEY_PASSWORD):
        super().__init__(overrides=overrides, name=name)
        self.certs = certs
        self.keystore = keystore or certs.keystore
        self.key_password = key_password
        self.ssl_port, self.mtls_port, self.sasl_ssl_port = free_port(), free_port(), free_port()
        self.scram = list(scram)

    def command(self):
        settings = {
            "listeners": f"PLAINTEXT://{HOST}:{self.port},SSL://{HOST}:{self.ssl_port},MTLS://{HOST}:{self.mtls_port},"
                         f"SASL_SSL://{HOST}:{self.sasl_ssl_port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SSL:SSL,MTLS:SSL,SASL_SSL:SASL_SSL",
            "ssl.keystore.location": self.keystore,
            "ssl.truststore.location": self.certs.ca,
            "ssl.client.auth": "requested",
            "listener.name.mtls.ssl.client.auth": "required",
            # KIP-684: SASL_SSL asks for certificates only by its own key; the principal stays SASL's.
            "listener.name.sasl_ssl.ssl.client.auth": "requested",
            "ssl.principal.mapping.rules": MAPPING_RULES,
            "listener.name.sasl_ssl.plain.sasl.jaas.config": PLAIN_JAAS,
        }
        if self.key_password:
            settings["ssl.key.password"] = self.key_password
        settings.update(self.overrides)
        cmd = [self.binary, "--data-dir", self.data_dir]
        for key, value in settings.items():
            cmd += ["--override", f"{key}={value}"]
        for user in self.scram:
            cmd += ["--add-scram", user]
        return cmd

    def address(self, listener):
        return f"{HOST}:{ {'SSL': self.ssl_port, 'MTLS': self.mtls_port, 'SASL_SSL': self.sasl_ssl_port}[listener] }"


def ssl_conf(broker, listener="SSL", cert=None, key=None, ca=True, **extra):
    """librdkafka settings for an SSL listener, with a client certificate if given."""
    conf = {"bootstrap.servers": broker.address(listener), "security.protocol": "SSL"}
    if ca:
        conf["ssl.ca.location"] = broker.certs.ca if ca is True else ca
    if cert:
        conf.update({"ssl.certificate.location": cert, "ssl.key.location": key})
    conf.update(extra)
    return conf


def sasl_ssl_conf(broker, mechanism, user, password, **extra):
    conf = {"bootstrap.servers": broker.address("SASL_SSL"), "security.protocol": "SASL_SSL",
            "ssl.ca.location": broker.certs.ca, "sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password}
    conf.update(extra)
    return conf
