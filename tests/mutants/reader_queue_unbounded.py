# MUTANT: a reader thread appends to an unbounded queue that a writer thread drains | expect: FLOW-001
"""The threaded echo server (tests/mutants/_kit.py) with a reader and a writer thread per
connection and an unbounded queue between them: the reader never waits, so a client that does
not read has its echo piled up in memory.

    python3 tests/mutants/reader_queue_unbounded.py PORT
"""

import queue
import socket
import threading

from _kit import READ_SIZE, ThreadedEcho


def writer(conn, pending):
    try:
        while (data := pending.get()) is not None:
            conn.sendall(data)
    except OSError:
        pass


class ReaderQueueUnbounded(ThreadedEcho):
    def serve(self, conn: socket.socket) -> None:
        pending = queue.Queue()  # the bug: no maxsize, so no backpressure on the reader
        sender = threading.Thread(target=writer, args=(conn, pending), daemon=True)
        sender.start()
        with conn:
            try:
                while data := conn.recv(READ_SIZE):
                    pending.put(data)
            except OSError:
                pass
            pending.put(None)
            sender.join()


ReaderQueueUnbounded().main()
