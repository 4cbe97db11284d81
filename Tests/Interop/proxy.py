"""A TCP proxy between clients and a broker on 127.0.0.1, for tests that watch or disturb the traffic.
Clients reach it when the broker advertises the proxy's port (advertised.listeners)."""

import socket
import threading

from broker import HOST


class Proxy:
    """Forwards every accepted connection to the broker. Subclasses look at the bytes as they pass:
    `on_request` for client-to-broker chunks, `on_answer` for broker-to-client ones, each with a dict
    private to that connection; returning False drops the chunk and cuts both sides."""

    def __init__(self, port, target_port):
        self.target_port = target_port
        self.lock = threading.Lock()
        self.listener = socket.create_server((HOST, port))
        threading.Thread(target=self._accept, daemon=True).start()

    def on_request(self, data: bytes, state: dict) -> bool:
        return True

    def on_answer(self, data: bytes, state: dict) -> bool:
        return True

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection((HOST, self.target_port))
            state = {}
            threading.Thread(target=self._pipe, args=(client, upstream, self.on_request, state), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, self.on_answer, state), daemon=True).start()

    def _pipe(self, source, destination, look, state):
        try:
            while data := source.recv(65536):
                if not look(data, state):
                    break
                destination.sendall(data)
        except OSError:
            pass
        for s in (source, destination):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self):
        self.listener.close()
