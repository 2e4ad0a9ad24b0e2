"""A process-engine container's network, seen from the engine: its addresses and sockets.

Each container N gets ``127.42.0.N`` (its eth0: the publisher forwards there) and
``127.42.1.N`` (its own 127.0.0.1). The kernel's /proc/net/tcp lists every socket of the host;
the rows on a container's two addresses are that container's, which is how the engine shows
``cat /proc/net/tcp`` from inside it: the rows rewritten back to the addresses and ports the
server asked for (``0.0.0.0``/``127.0.0.1``, port 8888 even where the port map moved it).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from portbinding.process.shim.sitecustomize import listening, read_port_map

ETH_NET = "127.42.0"
LO_NET = "127.42.1"
MAX_CONTAINERS = 254
_LISTEN = "0A"
TCP_HEADER = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
)
TCP6_HEADER = (
    "  sl  local_address                         remote_address                        st tx_queue "
    "rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
)


def hex_address(address: str) -> str:
    """An IPv4 address as /proc/net/tcp prints it (little-endian hex)."""
    return f"{int.from_bytes(socket.inet_aton(address), 'little'):08X}"


@dataclass(frozen=True)
class ContainerNet:
    """The addresses of container number ``index`` and the file where its moved ports are kept."""

    index: int
    ports_file: Path

    @property
    def eth(self) -> str:
        return f"{ETH_NET}.{self.index}"

    @property
    def lo(self) -> str:
        return f"{LO_NET}.{self.index}"

    def env(self) -> dict[str, str]:
        """What the shim reads (see ``shim/sitecustomize.py``)."""
        return {
            "PORTBINDING_PROCESS_ETH": self.eth,
            "PORTBINDING_PROCESS_LO": self.lo,
            "PORTBINDING_PROCESS_PORTS": str(self.ports_file),
        }

    def port_map(self) -> dict[str, int]:
        """``{"eth:8888": 41234}``: ports the shim had to move because the host held them."""
        return read_port_map(str(self.ports_file))

    def real_eth_port(self, port: int) -> int:
        return self.port_map().get(f"eth:{port}", port)

    def listens_on_eth(self, port: int) -> bool:
        """Whether the container's eth0 has a listener on ``port`` -- what docker-proxy reaches."""
        return listening(self.eth, self.real_eth_port(port))

    def proc_net_tcp(self) -> str:
        """The container's own /proc/net/tcp and (empty) /proc/net/tcp6, as ``cat`` prints them."""
        eth, lo = hex_address(self.eth), hex_address(self.lo)
        reverse = {(key.split(":")[0], real): int(key.split(":")[1]) for key, real in self.port_map().items()}
        lines: list[str] = []
        for row in _rows():
            address, _, port_hex = row[1].partition(":")
            kind = "eth" if address == eth else "lo" if address == lo else None
            if kind is None:
                continue
            port = reverse.get((kind, int(port_hex, 16)), int(port_hex, 16))
            if kind == "lo":
                shown = hex_address("127.0.0.1")
            else:  # a listener on eth0 is the server's 0.0.0.0; a connection keeps the real address
                shown = hex_address("0.0.0.0") if row[3] == _LISTEN else address
            lines.append(" ".join([f"{len(lines)}:", f"{shown}:{port:04X}", *row[2:]]) + "\n")
        return TCP_HEADER + "".join(f"  {line}" for line in lines) + TCP6_HEADER


def _rows() -> list[list[str]]:
    try:
        text = Path("/proc/net/tcp").read_text(encoding="ascii")
    except OSError:
        return []
    return [line.split() for line in text.splitlines()[1:] if line.strip()]


def host_addresses() -> list[str]:
    """This machine's IPv4 addresses: where a port published on "every address" listens.

    The publisher binds each of them rather than 0.0.0.0, because a wildcard listener on port P
    would also take P on the containers' loopback addresses.
    """
    found = ["127.0.0.1"]
    try:
        text = Path("/proc/net/fib_trie").read_text(encoding="ascii")
    except OSError:
        return found
    previous = ""
    for line in text.splitlines():
        stripped = line.strip()
        if (
            stripped.startswith("/32 host LOCAL")
            and previous[:4] not in ("", "127.")
            and previous not in found
        ):
            found.append(previous)
        if stripped.startswith(("|--", "+--")):
            previous = stripped.split()[1]
    return found
