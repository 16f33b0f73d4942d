# MUTANT: a reader thread appends to an unbounded queue that a writer thread drains | expect: FLOW-001
"""An echo server with a reader and a writer thread per connection and an unbounded queue between
them: the reader never waits, so a client that does not read has its echo piled up in memory.

    python3 tests/mutants/reader_queue_unbounded.py PORT
"""

import queue
import socket
import sys
import threading


def writer(conn, pending):
    try:
        while (data := pending.get()) is not None:
            conn.sendall(data)
    except OSError:
        pass


def serve(conn):
    pending = queue.Queue()  # the bug: no maxsize, so no backpressure on the reader
    sender = threading.Thread(target=writer, args=(conn, pending), daemon=True)
    sender.start()
    with conn:
        try:
            while data := conn.recv(65536):
                pending.put(data)
        except OSError:
            pass
        pending.put(None)
        sender.join()


def main():
    with socket.create_server(("127.0.0.1", int(sys.argv[1]))) as listener:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()


main()
