# MUTANT: keeps every connection's 64 KiB session buffer after the close (a registry never pruned) | expect: LEAK-003
"""The threaded echo server (tests/mutants/_kit.py) keeping a session record per client "for
statistics".

Each connection gets a session with its own 64 KiB receive buffer, registered under the
client's address. Nothing removes a session when its connection ends: descriptors and
threads are released, so the counts look clean, but the memory grows by 64 KiB per client
served, for ever.

    python3 tests/mutants/keeps_session_buffers.py PORT
"""

import socket

from _kit import ThreadedEcho

SESSIONS = {}  # the bug: filled on connect, never emptied on close


class Session:
    def __init__(self, peer):
        self.peer = peer
        self.buffer = bytearray(65536)
        self.echoed = 0


class KeepsSessionBuffers(ThreadedEcho):
    def serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                peer = conn.getpeername()
                session = SESSIONS[peer] = Session(peer)
                view = memoryview(session.buffer)
                while n := conn.recv_into(view):
                    conn.sendall(view[:n])
                    session.echoed += n
            except OSError:
                pass


KeepsSessionBuffers().main()
