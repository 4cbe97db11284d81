"""The KafkaWire check tool (Sources/KafkaWireCheck) as a long-lived process speaking JSON lines."""

import json
import os
import queue
import subprocess
import tempfile
import threading

import pytest

TOOL_TIMEOUT = 300  # seconds per answer


def tool_path():
    path = os.environ.get("KAFKAWIRE_CHECK")
    if not path:
        pytest.fail("KAFKAWIRE_CHECK is not set: run the interop tests via `make test`, "
                    "which builds the check tool and points KAFKAWIRE_CHECK at it.")
    return path


class CheckTool:
    """The check tool as one long-lived process with line-based JSON I/O."""

    def __init__(self, path):
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            [path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._stderr, text=True, encoding="utf-8", bufsize=1)
        # A reader thread lets us time out instead of hanging on a stuck tool,
        # and keeps its stdout drained while we are still writing.
        self._lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self._proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _answer(self, request):
        request = json.dumps(request)[:300]
        try:
            line = self._lines.get(timeout=TOOL_TIMEOUT)
        except queue.Empty:
            pytest.fail("check tool gave no answer within %ds to %s%s"
                        % (TOOL_TIMEOUT, request, self.stderr_tail()))
        if line is None:
            try:
                status = "status %s" % self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                status = "stdout closed"
            pytest.fail("check tool exited (%s) before answering %s%s"
                        % (status, request, self.stderr_tail()))
        try:
            return json.loads(line)
        except ValueError:
            pytest.fail("check tool answered %s with non-JSON %r" % (request, line))

    def ask(self, request):
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        return self._answer(request)

    def ask_all(self, requests):
        # Write from a thread: answers for big batches would otherwise fill
        # the tool's stdout pipe while we still block writing its stdin.
        def write():
            try:
                for request in requests:
                    self._proc.stdin.write(json.dumps(request) + "\n")
                self._proc.stdin.close()
            except (OSError, ValueError):
                pass  # the tool died or we gave up; _answer reports it
        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        answers = [self._answer(request) for request in requests]
        writer.join()
        return answers

    def stderr_tail(self):
        self._stderr.seek(0)
        text = self._stderr.read().decode("utf-8", "replace")[-2000:]
        return "\ntool stderr:\n" + text if text else ""

    def close(self):
        try:
            self._proc.stdin.close()
        except (OSError, ValueError):
            pass  # already gone; the real failure is reported elsewhere
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._stderr.close()
