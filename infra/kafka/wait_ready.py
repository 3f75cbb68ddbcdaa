"""Wait until a Kafka broker answers a Metadata request that lists at least one broker.

Stdlib only, so the broker script works before any virtualenv exists. An open port is not
enough: a KRaft broker accepts connections before it has registered and can serve metadata.
"""

from __future__ import annotations

import socket
import struct
import sys
import time

METADATA_API_KEY = 3
METADATA_VERSION = 4  # oldest non-flexible version Kafka 4.x still accepts


def _metadata_request(correlation_id: int) -> bytes:
    client_id = b"parcelflow-wait-ready"
    header = struct.pack(">hhih", METADATA_API_KEY, METADATA_VERSION, correlation_id, len(client_id))
    body = struct.pack(">i?", -1, False)  # all topics, no auto-creation
    payload = header + client_id + body
    return struct.pack(">i", len(payload)) + payload


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        data += chunk
    return data


def broker_count(host: str, port: int, timeout: float = 2.0) -> int:
    """Return how many brokers the cluster metadata lists (raises if the broker is not up)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(_metadata_request(7))
        (size,) = struct.unpack(">i", _recv_exact(sock, 4))
        response = _recv_exact(sock, size)
    correlation_id, _throttle, brokers = struct.unpack(">iii", response[:12])
    if correlation_id != 7:
        raise ConnectionError("unexpected correlation id")
    return int(brokers)


def main() -> int:
    """Poll ``host:port`` until it serves metadata or the timeout (seconds) passes."""
    host, port_text = sys.argv[1].rsplit(":", 1)
    deadline = time.monotonic() + float(sys.argv[2]) if len(sys.argv) > 2 else time.monotonic() + 60
    last_error = "no answer"
    while time.monotonic() < deadline:
        try:
            if broker_count(host, int(port_text)) >= 1:
                return 0
            last_error = "metadata lists no broker yet"
        except (OSError, struct.error) as exc:
            last_error = str(exc) or type(exc).__name__
        time.sleep(0.25)
    print(f"broker at {host}:{port_text} not ready: {last_error}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
