"""N clients of the board's live stream (/events), each on its own connection, for a duration.

Each records, for every event, its id, name, when the board applied it (the stream's
`: applied MS` comment) and when this client read it (ms since the epoch, the same clock: the
same machine). Prints one JSON object: {"events": {id: [name, applied_ms]}, "samples": [[name, applied_ms,
latency_ms], ...]} over all clients.

Usage: python3 sse_clients.py HOST PORT CLIENTS SECONDS
"""
import json
import socket
import sys
import threading
import time


def client(host, port, seconds, out, lock, index):
    sock = socket.create_connection((host, port))
    sock.sendall(f"GET /events HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode())
    sock.settimeout(1.0)
    deadline = time.time() + seconds
    buffer = b""
    event = {}
    mine = []
    while time.time() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        now = time.time() * 1000.0
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            line = line.rstrip(b"\r").decode("utf-8", "replace")
            if line.startswith(": applied "):
                event["applied"] = int(line[len(": applied "):])
            elif line.startswith("event: "):
                event["name"] = line[7:]
            elif line.startswith("id: "):
                event["id"] = int(line[4:])
            elif line == "" and "id" in event and "applied" in event:
                mine.append((event["id"], event.get("name", "message"), event["applied"], now))
                event = {}
            elif line == "":
                event = {}
    sock.close()
    with lock:
        out[index] = mine


def main():
    host, port, clients, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    out = [None] * clients
    lock = threading.Lock()
    threads = [threading.Thread(target=client, args=(host, port, seconds, out, lock, i)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = {}
    samples = []
    for mine in out:
        for (id_, name, applied, seen) in mine or []:
            events[id_] = [name, applied]
            samples.append([name, applied, round(seen - applied, 1)])
    print(json.dumps({"clients": clients, "events": events, "samples": samples}))


if __name__ == "__main__":
    main()
