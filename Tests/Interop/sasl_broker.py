"""A MiniBroker with a PLAINTEXT and a SASL_PLAINTEXT listener, its PLAIN users from the listener's JAAS
config and SCRAM users from --add-scram, and the librdkafka settings to reach it as a user."""
from broker import HOST, Broker, free_port

PLAIN_JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
              'user_alice="alice-secret" user_admin="admin-secret";')
SCRAM_USERS = ["SCRAM-SHA-256=[name=bob,password=bob-secret]",
               "SCRAM-SHA-512=[name=bob,password=bob-secret,iterations=8192]"]


class SaslBroker(Broker):
    """MiniBroker with PLAINTEXT on ``port`` (where the harness waits) and SASL_PLAINTEXT on ``sasl_port``."""

    def __init__(self, overrides=None, name="sasl", scram=SCRAM_USERS):
        super().__init__(overrides=overrides, name=name)
        self.sasl_port = free_port()
        self.scram = list(scram)

    def command(self):
        cmd = [self.binary, "--data-dir", self.data_dir, "--override",
               f"listeners=PLAINTEXT://{HOST}:{self.port},SASL_PLAINTEXT://{HOST}:{self.sasl_port}",
               "--override", f"listener.name.sasl_plaintext.plain.sasl.jaas.config={PLAIN_JAAS}"]
        for key, value in self.overrides.items():
            cmd += ["--override", f"{key}={value}"]
        for user in self.scram:
            cmd += ["--add-scram", user]
        return cmd

    @property
    def sasl_bootstrap(self):
        return f"{HOST}:{self.sasl_port}"


def sasl_conf(broker, mechanism, user, password, **extra):
    conf = {"bootstrap.servers": broker.sasl_bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password}
    conf.update(extra)
    return conf
