"""inetd keeps running when the echo port is taken (LIFE-006), and says nothing on stderr.

inetd is a super-server: a service it cannot bind is set aside (and retried later), and inetd
goes on running, for the services it might still have. Asked to serve echo on a port another
socket holds, it neither exits nor serves, and its stderr (debug mode) names no error: whoever
started it sees a running process and no echo. Control: on a
free port the same command accepts and echoes.

    python3 tests/evidence/inetd_life_006.py     # exit status 0: reproduced
"""

from __future__ import annotations

import socket
import subprocess
import sys

from _evidence import TIMEOUT_S, connect_when_ready, free_port, verdict
from _inetd_life import inetd

STILL_RUNNING_AFTER_S = 3.0


def runs_on_busy_port() -> tuple[bool, str]:
    with socket.create_server(("127.0.0.1", 0)) as holder:
        port = holder.getsockname()[1]
        with inetd(port) as server:
            try:
                server.wait(timeout=STILL_RUNNING_AFTER_S)
            except subprocess.TimeoutExpired:
                server.kill()
                assert server.stderr is not None
                return True, server.stderr.read(4096).decode(errors="replace")
            return False, f"exited with {server.returncode}"


def echoes_on_free_port() -> bool:
    port = free_port()
    with inetd(port), connect_when_ready(port) as sock:
        sock.settimeout(TIMEOUT_S)
        sock.sendall(b"hello")
        return sock.recv(5) == b"hello"


def main() -> int:
    running, said = runs_on_busy_port()
    print(f"inetd on a taken port, {STILL_RUNNING_AFTER_S} s later: {'still running' if running else said}")
    print("  its stderr:\n    " + "\n    ".join(said.strip().splitlines()[-5:]))
    error_named = "in use" in said.lower()
    control = echoes_on_free_port()
    print(f"control: on a free port it echoes: {control}")
    reproduced = running and not error_named and control
    return verdict(reproduced, "inetd waits on a busy port instead of failing")


if __name__ == "__main__":
    sys.exit(main())
