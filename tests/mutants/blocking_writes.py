# MUTANT: one selectors loop for all clients, but it writes the echo with blocking sendall() | expect: CONC-004
"""The correct selectors server (tests/correct/selectors_echo.py) that reads non-blocking but
writes the echo with a blocking sendall() instead of queueing what send() did not take: one
client that stops reading freezes the loop, and every other client with it.

    python3 tests/mutants/blocking_writes.py PORT
"""

from _kit import READ_SIZE, Connection, EchoLoop, main


class BlockingWrites(EchoLoop):
    def read(self, conn: Connection) -> None:
        data = conn.sock.recv(READ_SIZE)
        if not data:
            conn.eof = True
            return
        conn.sock.setblocking(True)  # "sendall() on a non-blocking socket loses data"
        conn.sock.sendall(data)  # the bug: blocks the whole loop until this client reads
        conn.sock.setblocking(False)


main(BlockingWrites)
