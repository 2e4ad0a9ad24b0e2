"""The probe made from inside a container's network namespace: one small script, and its answer.

The same script runs wherever the diagnosis gets in -- with the container's own python3, with a
helper container's, or with this machine's under ``nsenter`` -- so every way in reports alike.
"""

from __future__ import annotations

import json

PROBE_PATH = "/api"  # what the inside probe asks for, whatever the host probe's --path; said with its replies
PROBE_TIMEOUT_S = 8.0  # the whole script: every connection at once, 1.5 s to connect, 1.5 s to answer

# Runs with python3 inside the namespace (the container's own, the helper's, or this machine's
# under nsenter): connects to every target at once, sends GET /api, and reports what came back.
# GET /api tells Jupyter ({"version": ...}) from any HTTP server from a service that is not HTTP.
INSIDE_PROBE = r"""
import json, socket, sys, threading
REQUEST = b"GET @PATH@ HTTP/1.0\r\nHost: localhost\r\nUser-Agent: portbinding-diagnose\r\n\r\n"
def literal(host):
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
            return True
        except OSError:
            pass
    return False
def probe(target, out):
    host, _, port = target.rpartition(":")
    host = host.strip("[]")
    resolved = ""
    if not literal(host):  # a name: looked up with this namespace's own resolver
        try:
            found = socket.getaddrinfo(host, int(port), 0, socket.SOCK_STREAM)
        except socket.gaierror as exc:
            out[target] = {"outcome": "unresolved", "detail": str(exc.strerror)[:200]}
            return
        found.sort(key=lambda item: item[0] != socket.AF_INET)
        host = resolved = found[0][4][0]
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(1.5)
    try:
        sock.connect((host, int(port)))
    except socket.timeout:
        out[target] = {"outcome": "timeout", "resolved": resolved}
        return sock.close()
    except ConnectionRefusedError:
        out[target] = {"outcome": "refused", "resolved": resolved}
        return sock.close()
    except OSError as exc:
        # 97 EAFNOSUPPORT, 99 EADDRNOTAVAIL, 101 ENETUNREACH: no such address in this namespace
        gone = exc.errno in (97, 99, 101)
        out[target] = {"outcome": "no_address" if gone else "error", "detail": str(exc)[:200]}
        return sock.close()
    data, outcome = b"", "closed"
    try:
        sock.sendall(REQUEST)
        sock.settimeout(1.5)  # a busy server (Jupyter on two cores) may take a while to answer
        while len(data) < 4096:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            sizes = [h[15:] for h in head.lower().split(b"\r\n") if h.startswith(b"content-length:")]
            if sizes and sizes[0].strip().isdigit() and len(body) >= int(sizes[0]):
                break  # a complete HTTP reply: the server need not close for us to know
            sock.settimeout(0.15)  # the rest of a reply follows at once; an echo never closes
    except socket.timeout:
        outcome = "silent"
    except OSError:
        outcome = "reset"
    finally:
        sock.close()
    out[target] = {"outcome": "reply" if data else outcome, "reply": data[:600].decode("utf-8", "replace")}
    out[target]["resolved"] = resolved
out = {}
threads = [threading.Thread(target=probe, args=(t, out), daemon=True) for t in sys.argv[1:]]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join(4)
print(json.dumps(out))
""".replace("@PATH@", PROBE_PATH)


def parse_replies(output: str) -> dict[str, object]:
    lines = output.strip().splitlines()
    try:
        found = json.loads(lines[-1]) if lines else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}
