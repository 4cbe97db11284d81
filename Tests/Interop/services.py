"""The HTTP services as processes: `user-stats run`, `user-events serve`, `assistance serve|listen`,
started from the binaries `make test` names (USER_EVENTS, USER_STATS, ASSISTANCE: release builds) on
free loopback ports, waited for on /health, stopped with a signal and checked to exit 0."""

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from broker import free_port


def binary(variable):
    path = os.environ.get(variable)
    if not path:
        pytest.fail(f"{variable} is not set: run the interop tests via `make test`.")
    return path


class Process:
    """One service process with its log file."""

    def __init__(self, args, log_path, env=None):
        self.args = args
        self.log_path = str(log_path)
        self.proc = subprocess.Popen(args, stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})

    def log(self):
        return open(self.log_path, errors="replace").read()

    def wait_for_log(self, text, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            assert self.proc.poll() is None, f"{self.args[0]} exited {self.proc.returncode}: {self.log()[-3000:]}"
            time.sleep(0.1)
        pytest.fail(f"'{text}' not in the log of {self.args[:2]} within {timeout}s: {self.log()[-3000:]}")

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signals the process and asserts a clean exit (0) within the timeout."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(f"{self.args[:2]} ignored {signal.Signals(sig).name} for {timeout}s: {self.log()[-3000:]}")
        assert code == 0, f"{self.args[:2]} exited {code} after {signal.Signals(sig).name}: {self.log()[-3000:]}"

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class HTTPService(Process):
    def __init__(self, args, log_path, env=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(args + ["--http-port", str(self.port)], log_path, env)
        self.wait_healthy()

    def wait_healthy(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"{self.args[:2]} exited {self.proc.returncode}: {self.log()[-3000:]}"
            try:
                if request("GET", self.url + "/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        pytest.fail(f"{self.args[:2]} did not answer /health within {timeout}s: {self.log()[-3000:]}")


def request(method, url, body=None, content_type="application/json", timeout=30):
    """(status, headers, parsed JSON or text) of one HTTP exchange; 4xx/5xx are answers, not errors."""
    data = body if isinstance(body, (bytes, type(None))) else (body if isinstance(body, str) else json.dumps(body)).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            status, headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, headers, raw = error.code, error.headers, error.read()
    kind = headers.get("Content-Type", "")
    return status, headers, json.loads(raw) if "json" in kind else raw.decode(errors="replace")


def assert_problem(answer, status):
    """The answer is the JSON problem of `status` (RFC 9457)."""
    code, headers, body = answer
    assert code == status, (code, body)
    assert headers.get("Content-Type", "").startswith("application/problem+json"), headers.get("Content-Type")
    assert body["status"] == status and body["title"] and body.get("detail"), body
    return body


def user_stats(broker, topic, db, log_dir, group="user-stats"):
    return HTTPService([binary("USER_STATS"), "run", "--bootstrap-server", broker.bootstrap, "--topic", topic, "--group", group,
                        "--db", str(db), "--report-interval", "1"], log_dir / f"user-stats-{topic}.log")


def user_events_api(bootstrap, topic, stats_url, log_dir, *extra):
    return HTTPService([binary("USER_EVENTS"), "serve", "--topic", topic, "--stats-url", stats_url, *extra],
                       log_dir / f"user-events-{topic}.log", env={"KAFKA_BOOTSTRAP_SERVERS": bootstrap})


def assistance(bootstrap, log_dir, *extra):
    return HTTPService([binary("ASSISTANCE"), "serve", "--bootstrap-server", bootstrap, *extra], log_dir / "assistance.log")


def poll_submission(api, location, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _, body = request("GET", api.url + location)
        assert status == 200, body
        if body["state"] != "running":
            return body
        time.sleep(0.1)
    pytest.fail(f"submission {location} still running after {timeout}s")
