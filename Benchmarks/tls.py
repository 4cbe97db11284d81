#!/usr/bin/env python3
"""Produce and consume throughput over TLS against plaintext: one MiniBroker with a PLAINTEXT and an SSL
listener, the same kafka-bench loads (our Swift clients; acks=1, no idempotence, 1 MB batches) through each,
taking turns, each round on fresh topics.

    python3 Benchmarks/tls.py --minibroker .build/release/minibroker --kafka-bench .build/release/kafka-bench --rounds 3

The certificates (EC P-256, TLS 1.3 is what both sides pick) are made with openssl in a temporary directory.
Prints, as markdown, the median records/s and MB/s of each load per listener, the ratio TLS/plaintext, and the
broker's CPU seconds per GB moved.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import tempfile

from ab import LOADS, bench, cpu_seconds, free_port, run_broker


def make_certificates(directory):
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=bench CA")
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=minibroker")
    with open(os.path.join(directory, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem",
            "-days", "2", "-extfile", "server.ext")
    keystore = os.path.join(directory, "keystore.pem")
    with open(keystore, "w") as f:
        f.write(open(os.path.join(directory, "server.key")).read() + open(os.path.join(directory, "server.pem")).read())
    return keystore, os.path.join(directory, "ca.pem")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minibroker", default=".build/release/minibroker")
    parser.add_argument("--kafka-bench", default=".build/release/kafka-bench")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=float, default=0.4, help="times ab.py's record counts (5 M x 100 B, 100,000 x 10 KB)")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="tls-bench-")
    keystore, ca = make_certificates(work)
    port, ssl_port = free_port(), free_port()
    broker = run_broker(args.minibroker, port, os.path.join(work, "data"), [
        f"listeners=PLAINTEXT://127.0.0.1:{port},SSL://127.0.0.1:{ssl_port}", f"ssl.keystore.location={keystore}"], set_port=False)
    listeners = {"PLAINTEXT": (port, {}), "SSL": (ssl_port, {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_LOCATION": ca})}
    results = {}  # (load, mode, listener) -> [(records/s, MB/s, cpu s/GB)]
    try:
        for round_number in range(args.rounds):
            order = list(listeners) if round_number % 2 == 0 else list(reversed(listeners))
            for label, size, count in LOADS:
                count = max(int(count * args.scale), 1)
                for listener in order:
                    listener_port, env = listeners[listener]
                    topic = f"tls-{round_number}-{size}-{listener.lower()}"
                    for mode in ("produce", "consume"):
                        before = cpu_seconds(broker.pid)
                        saved = {key: os.environ.get(key) for key in env}
                        os.environ.update(env)
                        try:
                            measured = bench(args.kafka_bench, listener_port, mode, topic, size, count)
                        finally:
                            for key, value in saved.items():
                                if value is None:
                                    os.environ.pop(key, None)
                                else:
                                    os.environ[key] = value
                        cpu = cpu_seconds(broker.pid) - before
                        gigabytes = count * size / 1e9
                        results.setdefault((label, mode, listener), []).append(
                            (measured["recordsPerSecond"], measured["megabytesPerSecond"], cpu / gigabytes))
    finally:
        broker.terminate()
        broker.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    print("| load | PLAINTEXT records/s | SSL records/s | PLAINTEXT MB/s | SSL MB/s | SSL / PLAINTEXT | broker CPU s/GB PLAINTEXT | SSL |")
    print("|---|---|---|---|---|---|---|---|")
    for label, _, _ in LOADS:
        for mode in ("produce", "consume"):
            plain = [statistics.median(v) for v in zip(*results[(label, mode, "PLAINTEXT")])]
            tls = [statistics.median(v) for v in zip(*results[(label, mode, "SSL")])]
            print(f"| {mode} {label} | {plain[0]:,.0f} | {tls[0]:,.0f} | {plain[1]:,.1f} | {tls[1]:,.1f} | {tls[0] / plain[0]:.2f} | "
                  f"{plain[2]:.2f} | {tls[2]:.2f} |")


if __name__ == "__main__":
    main()
